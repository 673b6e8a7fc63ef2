"""Proto ⇄ domain: validate requests into domain queries, render results as responses.

Every violation found in a request is reported at once, with the proto field path
(index included) and the value, so a TMS engineer can fix a payload in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import h3.api.basic_int as h3i
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from geodata import route as routes
from geodata.errors import InputError, InvalidRequestError, Violation
from routerisk.v1 import route_risk_service_pb2 as pb
from service.scoring import CrossingResult, HotspotResult, RouteScore, ScoreQuery, SegmentResult, Stop

EARLIEST_DEPARTURE_S = 946_684_800  # 2000-01-01T00:00:00Z
MAX_FUTURE_S = 366 * 86_400
MAX_SPEED_KMH = 150.0
MAX_DWELL_S = 7 * 86_400
LANES = {pb.CROSSING_LANE_UNSPECIFIED: "standard", pb.CROSSING_LANE_STANDARD: "standard", pb.CROSSING_LANE_FAST: "fast"}
LANE_ENUM = {"standard": pb.CROSSING_LANE_STANDARD, "fast": pb.CROSSING_LANE_FAST}
LEVEL_ENUM = {
    "low": pb.RISK_LEVEL_LOW,
    "moderate": pb.RISK_LEVEL_MODERATE,
    "high": pb.RISK_LEVEL_HIGH,
    "severe": pb.RISK_LEVEL_SEVERE,
    "critical": pb.RISK_LEVEL_CRITICAL,
}
LEVEL_NAME = {number: name for name, number in LEVEL_ENUM.items()}
WAIT_SOURCE_ENUM = {
    "live": pb.WAIT_SOURCE_LIVE,
    "historical": pb.WAIT_SOURCE_HISTORICAL,
    "default": pb.WAIT_SOURCE_DEFAULT,
}
DIRECTION_ENUM = {"northbound": pb.CROSSING_DIRECTION_NORTHBOUND, "southbound": pb.CROSSING_DIRECTION_SOUTHBOUND}


def parse_route(route: pb.Route, max_points: int) -> routes.RoutePath:
    """Decode whichever geometry the request carries."""
    kind = route.WhichOneof("geometry")
    if kind == "line":
        points = route.line.points
        lats = [p.latitude for p in points]
        lngs = [p.longitude for p in points]
        return routes.from_points(lats, lngs, field="route.line.points", max_points=max_points)
    if kind == "encoded_polyline":
        return routes.from_polyline(route.encoded_polyline, precision=5, max_points=max_points)
    if kind == "encoded_polyline6":
        return routes.from_polyline(
            route.encoded_polyline6, precision=6, field="route.encoded_polyline6", max_points=max_points
        )
    if kind == "geojson":
        return routes.from_geojson(route.geojson, max_points=max_points)
    raise InputError(
        Violation("route", "a route is required: set line, encoded_polyline, encoded_polyline6 or geojson")
    )


def parse_score_request(
    request: pb.ScoreRouteRequest, *, now_s: int, default_speed_kmh: float, max_points: int
) -> ScoreQuery:
    """Validate a request into a :class:`ScoreQuery`, reporting every bad field together."""
    violations: list[Violation] = []
    path = _collect(violations, lambda: parse_route(request.route, max_points))
    departure_s = _collect(violations, lambda: departure_of(request, now_s))
    speed = _collect(violations, lambda: _speed(request.average_speed_kmh, default_speed_kmh))
    lane = _collect(violations, lambda: _lane(request.crossing_lane))
    stops = _collect(violations, lambda: _stops(request.stops))
    if violations:
        raise InputError(violations)
    return ScoreQuery(path=path, departure_s=departure_s, speed_kmh=speed, lane=lane, stops=stops)


def _collect(violations: list[Violation], parse: Callable[[], object]) -> object:
    try:
        return parse()
    except InputError as exc:
        violations.extend(exc.violations)
        return None


def departure_of(request: pb.ScoreRouteRequest, now_s: int) -> int:
    """The departure in epoch seconds (now when unset); rejects one before 2000 or over a year ahead."""
    if not request.HasField("departure_time"):
        return now_s
    seconds = request.departure_time.seconds
    value = _timestamp_text(request.departure_time)
    if seconds < EARLIEST_DEPARTURE_S:
        raise InvalidRequestError(Violation("departure_time", f"departure {value} is before 2000-01-01"))
    if seconds > now_s + MAX_FUTURE_S:
        raise InvalidRequestError(Violation("departure_time", f"departure {value} is more than a year ahead"))
    return int(seconds)


def _timestamp_text(stamp: Timestamp) -> str:
    try:
        return stamp.ToJsonString()
    except ValueError:
        return f"{stamp.seconds}s"


def _speed(value: float, default: float) -> float:
    if value == 0.0 and not math.copysign(1.0, value) < 0:
        return default
    if not math.isfinite(value) or value <= 0 or value > MAX_SPEED_KMH:
        raise InvalidRequestError(
            Violation("average_speed_kmh", f"speed {value} km/h is outside (0, {MAX_SPEED_KMH:g}]")
        )
    return float(value)


def _lane(value: int) -> str:
    if value not in LANES:
        raise InvalidRequestError(Violation("crossing_lane", f"unknown crossing lane value {value}"))
    return LANES[value]


def _stops(stops: list[pb.PlannedStop]) -> tuple[Stop, ...]:
    violations: list[Violation] = []
    out = []
    for i, stop in enumerate(stops):
        lat, lng = stop.location.latitude, stop.location.longitude
        if not stop.HasField("location"):
            violations.append(Violation(f"stops[{i}].location", "a stop needs a location"))
        for name, value, limit in (("latitude", lat, 90.0), ("longitude", lng, 180.0)):
            if not math.isfinite(value) or abs(value) > limit:
                violations.append(
                    Violation(f"stops[{i}].location.{name}", f"{name} {value} is out of range [-{limit:g}, {limit:g}]")
                )
        dwell_s = stop.dwell.seconds + stop.dwell.nanos / 1e9
        if dwell_s < 0 or dwell_s > MAX_DWELL_S:
            violations.append(Violation(f"stops[{i}].dwell", f"dwell {dwell_s:g}s is outside [0, {MAX_DWELL_S}s]"))
        out.append(Stop(lat, lng, dwell_s))
    if violations:
        raise InvalidRequestError(violations)
    return tuple(out)


def normalized_request(request: pb.ScoreRouteRequest, query: ScoreQuery) -> bytes:
    """The request with defaults resolved and the echo-only reference dropped: the cache identity."""
    canonical = pb.ScoreRouteRequest()
    canonical.CopyFrom(request)
    canonical.ClearField("reference")
    canonical.departure_time.FromSeconds(query.departure_s)
    canonical.average_speed_kmh = query.speed_kmh
    canonical.crossing_lane = LANE_ENUM[query.lane]
    return canonical.SerializeToString(deterministic=True)


def timestamp(epoch_s: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(epoch_s * 1e9))
    return stamp


def duration(hours: float) -> Duration:
    span = Duration()
    span.FromNanoseconds(round(hours * 3600 * 1e9))
    return span


def latlng(lat: float, lng: float) -> pb.LatLng:
    return pb.LatLng(latitude=lat, longitude=lng)


def score_response(result: RouteScore) -> pb.ScoreRouteResponse:
    """Render a :class:`RouteScore` as the API response."""
    return pb.ScoreRouteResponse(
        score=round(result.score, 6),
        level=LEVEL_ENUM[result.level],
        expected_incidents=result.expected,
        incident_probability=result.probability,
        distance_km=result.distance_km,
        duration=duration(result.duration_h),
        segments=[_segment(s) for s in result.segments],
        hotspots=[_hotspot(h) for h in result.hotspots],
        crossings=[_crossing(c) for c in result.crossings],
        layer_version=result.layer_version,
        exposed_duration=duration(result.exposed_h),
        departure_time=timestamp(result.departure_s),
        arrival_time=timestamp(result.departure_s + result.duration_h * 3600),
        resolution=result.resolution,
        cell_count=result.cell_count,
        layer_synthetic=result.layer_synthetic,
        queue_expected_incidents=result.queue_expected,
        border_data_version=result.border_version,
    )


def _segment(s: SegmentResult) -> pb.RouteSegment:
    return pb.RouteSegment(
        start_km=s.start_km,
        end_km=s.end_km,
        start=latlng(*s.start),
        end=latlng(*s.end),
        enter_time=timestamp(s.enter_s),
        exit_time=timestamp(s.exit_s),
        expected_incidents=s.expected,
        share=s.share,
        incident_count=s.incident_count,
        level=LEVEL_ENUM[s.level],
        exposure=duration(s.exposure_h),
    )


def _hotspot(h: HotspotResult) -> pb.Hotspot:
    lat, lng = h3i.cell_to_latlng(h.cell)
    message = pb.Hotspot(
        cell=h3i.int_to_str(h.cell),
        center=latlng(lat, lng),
        risk=h.rate,
        incident_count=h.incident_count,
        expected_incidents=h.expected,
        pass_time=timestamp(h.pass_s),
        recent_share=h.recent_share,
    )
    if h.last_incident_s:
        message.last_incident_time.CopyFrom(timestamp(h.last_incident_s))
    if h.recent_since_s:
        message.recent_activity = True
        message.recent_since.CopyFrom(timestamp(h.recent_since_s))
    return message


def _crossing(c: CrossingResult) -> pb.CrossingPassage:
    port = c.crossing.port
    message = pb.CrossingPassage(
        port_number=port.port_number,
        port_name=port.port_name,
        crossing_name=port.crossing_name,
        lane=LANE_ENUM[c.lane],
        expected_wait_minutes=c.wait_minutes,
        wait_source=WAIT_SOURCE_ENUM[c.wait_source],
        direction=DIRECTION_ENUM[c.crossing.direction],
        location=latlng(port.lat, port.lng),
        arrival_time=timestamp(c.arrival_s),
        closed=c.closed,
        expected_incidents=c.expected,
        operational_status=c.operational_status,
    )
    if c.observed_at_s:
        message.observed_at.CopyFrom(timestamp(c.observed_at_s))
    return message


def shift_times(response: pb.ScoreRouteResponse, delta_s: int) -> None:
    """Move every trip time in ``response`` by ``delta_s`` seconds (observation times stay)."""
    if not delta_s:
        return
    stamps = [response.departure_time, response.arrival_time]
    stamps += [t for s in response.segments for t in (s.enter_time, s.exit_time)]
    stamps += [h.pass_time for h in response.hotspots]
    stamps += [c.arrival_time for c in response.crossings]
    for stamp in stamps:
        stamp.seconds += delta_s
