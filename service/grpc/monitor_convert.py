"""Proto ⇄ domain for MonitorTrip: each streamed message into a position (and, on the first, a
planned route and thresholds), an acknowledgement and its alerts into a response.

Bad input names ``positions[i].<field>`` (``i`` counts the messages of the stream from 0); every
bad field of a message is reported together.
"""

from __future__ import annotations

import math
import re

import h3.api.basic_int as h3i

from geodata.errors import InputError, InvalidRequestError, Violation
from geodata.layers import RiskLayer
from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc import convert
from service.usecases.trip_monitor import Acknowledgement, Alert, Position, Thresholds

TRIP_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EARLIEST_S = convert.EARLIEST_DEPARTURE_S
MAX_AHEAD_S = 86_400  # a clock a day fast is a broken clock
MAX_SPEED_KMH = 300.0
KIND_ENUM = {
    "entered_high_risk_cell": pb.TRIP_ALERT_KIND_ENTERED_HIGH_RISK_CELL,
    "stopped_in_high_risk_cell": pb.TRIP_ALERT_KIND_STOPPED_IN_HIGH_RISK_CELL,
    "left_planned_route": pb.TRIP_ALERT_KIND_LEFT_PLANNED_ROUTE,
    "returned_to_route": pb.TRIP_ALERT_KIND_RETURNED_TO_ROUTE,
    "approaching_crossing": pb.TRIP_ALERT_KIND_APPROACHING_CROSSING,
}


def parse_position(request: pb.MonitorTripRequest, index: int, now_s: int) -> Position:
    """The position of one message; every bad field of it reported together."""
    where = f"positions[{index}]"
    bad: list[Violation] = []
    if request.trip_id and not TRIP_ID.fullmatch(request.trip_id):
        bad.append(Violation(f"{where}.trip_id", "up to 128 characters of A-Z a-z 0-9 . _ : -"))
    if not request.HasField("time"):
        bad.append(Violation(f"{where}.time", "a position needs its time"))
    else:
        seconds = request.time.seconds
        if not EARLIEST_S <= seconds <= now_s + MAX_AHEAD_S:
            bad.append(Violation(f"{where}.time", f"time {seconds}s is before 2000-01-01 or more than a day ahead"))
    if not request.HasField("location"):
        bad.append(Violation(f"{where}.location", "a position needs its location"))
    lat, lng = request.location.latitude, request.location.longitude
    for name, value, limit in (("latitude", lat, 90.0), ("longitude", lng, 180.0)):
        if not math.isfinite(value) or abs(value) > limit:
            bad.append(Violation(f"{where}.location.{name}", f"{name} {value} is out of range [-{limit:g}, {limit:g}]"))
    speed = request.speed_kmh if request.HasField("speed_kmh") else None
    if speed is not None and not (math.isfinite(speed) and 0.0 <= speed <= MAX_SPEED_KMH):
        bad.append(Violation(f"{where}.speed_kmh", f"speed {speed} km/h is outside [0, {MAX_SPEED_KMH:g}]"))
    if bad:
        raise InvalidRequestError(bad)
    return Position(request.time.seconds + request.time.nanos / 1e9, lat, lng, speed)


def planned_route(request: pb.MonitorTripRequest, index: int, max_points: int) -> RoutePath | None:
    if not request.HasField("planned_route"):
        return None
    try:
        return convert.parse_route(request.planned_route, max_points)
    except InputError as exc:
        prefix = f"positions[{index}].planned_"
        raise InputError(
            [
                Violation(prefix + (v.field if v.field.startswith("route") else f"route.{v.field}"), v.description)
                for v in exc.violations
            ]
        ) from None


def thresholds(request: pb.MonitorTripRequest, index: int) -> Thresholds | None:
    if not request.HasField("options"):
        return None
    o = request.options
    where = f"positions[{index}].options"
    defaults = Thresholds()
    off = o.off_route_meters if o.HasField("off_route_meters") else defaults.off_route_m
    approach = o.approach_km if o.HasField("approach_km") else defaults.approach_km
    dwell = o.dwell_alert.ToTimedelta().total_seconds() if o.HasField("dwell_alert") else defaults.dwell_s
    bad = []
    if not (math.isfinite(off) and 50.0 <= off <= 100_000.0):
        bad.append(Violation(f"{where}.off_route_meters", f"{off} m is outside [50, 100000]"))
    if not (math.isfinite(approach) and 0.5 <= approach <= 200.0):
        bad.append(Violation(f"{where}.approach_km", f"{approach} km is outside [0.5, 200]"))
    if not 60.0 <= dwell <= 86_400.0:
        bad.append(Violation(f"{where}.dwell_alert", f"{dwell:g}s is outside [60s, 86400s]"))
    if o.crossing_lane not in convert.LANES:
        bad.append(Violation(f"{where}.crossing_lane", f"unknown crossing lane value {o.crossing_lane}"))
    if bad:
        raise InvalidRequestError(bad)
    return Thresholds(off, dwell, approach, convert.LANES[o.crossing_lane])


def response(trip_id: str, ack: Acknowledgement, layer: RiskLayer) -> pb.MonitorTripResponse:
    """The acknowledgement of one position, with the alerts it raised."""
    return pb.MonitorTripResponse(
        trip_id=trip_id,
        acknowledged_time=convert.timestamp(ack.acknowledged_s),
        duplicate=ack.duplicate,
        resumed=ack.resumed,
        alerts=[alert_message(a) for a in ack.alerts],
        positions_processed=ack.processed,
        layer_version=layer.version,
        layer_synthetic=layer.synthetic,
    )


def alert_message(alert: Alert) -> pb.TripAlert:
    """A domain alert as the API message."""
    message = pb.TripAlert(
        kind=KIND_ENUM[alert.kind],
        severity=convert.LEVEL_ENUM[alert.severity],
        reason=alert.reason,
        time=convert.timestamp(alert.time_s),
        location=convert.latlng(alert.lat, alert.lng),
        cell=h3i.int_to_str(alert.cell),
        risk=alert.risk,
        distance_meters=alert.distance_m,
    )
    if alert.dwell_s:
        message.dwell.CopyFrom(convert.duration(alert.dwell_s / 3600))
    if alert.port is not None:
        message.port_number = alert.port.port_number
        message.port_name = alert.port.port_name
        message.crossing_name = alert.port.crossing_name
        message.expected_wait_minutes = alert.wait_minutes
        message.wait_source = convert.WAIT_SOURCE_ENUM[alert.wait_source]
        message.crossing_closed = alert.closed
    return message
