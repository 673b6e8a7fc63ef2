"""Proto ⇄ domain for RouteRiskService: validate requests into domain queries, render results as
responses. Every proto message the servicer returns is built here (MonitorTrip's in
:mod:`service.grpc.monitor_convert`, the admin service's in :mod:`service.grpc.admin_convert`).

Every violation found in a request is reported at once, with the proto field path
(index included) and the value, so a TMS engineer can fix a payload in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import h3.api.basic_int as h3i
import numpy as np
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from geodata import polyline_check
from geodata import route as routes
from geodata.errors import InputError, InvalidRequestError, Violation
from geodata.layers import RiskLayer
from routerisk.v1 import route_risk_service_pb2 as pb
from service.usecases import avoid_areas, cells, compare, crossings, hotspots
from service.usecases.scoring import (
    NOT_COVERED,
    CrossingResult,
    HotspotResult,
    RouteScore,
    ScoreQuery,
    SegmentResult,
    Stop,
    UncoveredStretch,
    level_of_rate,
)

EARLIEST_DEPARTURE_S = 946_684_800  # 2000-01-01T00:00:00Z
MAX_FUTURE_S = 366 * 86_400
MAX_SPEED_KMH = 150.0
MAX_DWELL_S = 7 * 86_400
T = TypeVar("T")
LANES: dict[int, str] = {
    pb.CROSSING_LANE_UNSPECIFIED: "standard",
    pb.CROSSING_LANE_STANDARD: "standard",
    pb.CROSSING_LANE_FAST: "fast",
}
LANE_ENUM = {"standard": pb.CROSSING_LANE_STANDARD, "fast": pb.CROSSING_LANE_FAST}
LEVEL_ENUM = {
    "low": pb.RISK_LEVEL_LOW,
    "moderate": pb.RISK_LEVEL_MODERATE,
    "high": pb.RISK_LEVEL_HIGH,
    "severe": pb.RISK_LEVEL_SEVERE,
    "critical": pb.RISK_LEVEL_CRITICAL,
}
LEVEL_NAME = {number: name for name, number in LEVEL_ENUM.items()}
# a route's level may also be "not covered" (never a cell's, nor a threshold)
ROUTE_LEVEL_ENUM = {**LEVEL_ENUM, NOT_COVERED: pb.RISK_LEVEL_NOT_COVERED}
WAIT_SOURCE_ENUM = {
    "live": pb.WAIT_SOURCE_LIVE,
    "historical": pb.WAIT_SOURCE_HISTORICAL,
    "default": pb.WAIT_SOURCE_DEFAULT,
}
# encoded polyline fields: their precision, and the field a polyline of the other precision belongs in
POLYLINES = {"encoded_polyline": (5, "encoded_polyline6"), "encoded_polyline6": (6, "encoded_polyline")}
DIRECTION_ENUM = {"northbound": pb.CROSSING_DIRECTION_NORTHBOUND, "southbound": pb.CROSSING_DIRECTION_SOUTHBOUND}


def parse_route(route: pb.Route, max_points: int, coverage: np.ndarray | None = None) -> routes.RoutePath:
    """Decode whichever geometry the request carries; an encoded polyline plainly of the other
    precision (out of range, or outside ``coverage`` where the other lies inside) is refused."""
    kind = route.WhichOneof("geometry")
    if kind == "line":
        points = route.line.points
        lats = [p.latitude for p in points]
        lngs = [p.longitude for p in points]
        return routes.from_points(lats, lngs, field="route.line.points", max_points=max_points)
    if kind in POLYLINES:
        precision, other = POLYLINES[kind]
        return polyline_check.decode(
            getattr(route, kind),
            precision=precision,
            field=f"route.{kind}",
            other_field=other,
            max_points=max_points,
            coverage=coverage,
        )
    if kind == "geojson":
        return routes.from_geojson(route.geojson, max_points=max_points)
    raise InputError(
        Violation("route", "a route is required: set line, encoded_polyline, encoded_polyline6 or geojson")
    )


@dataclass(frozen=True)
class ScoreIdentity:
    """The one canonical form of a ScoreRouteRequest, computed once per call from its scalar
    fields (no route decoding): it keys the result cache and the alias of a request seen before."""

    departure_s: int  # the request's own departure (now when unset)
    scored_departure_s: int  # the departure it is scored at: the start of its bucket
    speed_kmh: float  # defaults resolved
    lane: str
    # the request without its echo-only reference, defaults resolved, at the scored departure
    canonical: bytes
    # its route, serialized once: the part of ``canonical`` the geometry cache is keyed by
    route: bytes


def score_identity(
    request: pb.ScoreRouteRequest, *, now_s: int, default_speed_kmh: float, bucket_s: int
) -> ScoreIdentity:
    """The request's :class:`ScoreIdentity`; raises :class:`InputError` at a bad departure, speed
    or lane (:func:`parse_score_request` then reports every bad field together)."""
    departure_s = departure_of(request, now_s)
    speed = _speed(request.average_speed_kmh, default_speed_kmh)
    lane = _lane(request.crossing_lane)
    scored_s = departure_s - departure_s % bucket_s if bucket_s else departure_s
    rest = pb.ScoreRouteRequest(average_speed_kmh=speed, crossing_lane=LANE_ENUM[lane], stops=request.stops)
    rest.departure_time.FromSeconds(scored_s)
    route = request.route.SerializeToString(deterministic=True)
    # ``route`` is field 1 and deterministic serialization writes fields in number order, so this
    # is the whole request serialized (less its reference and any unknown fields), with the route's
    # bytes kept for the geometry cache instead of serializing the route a second time
    head = _ROUTE_TAG + _varint(len(route)) + route if request.HasField("route") else b""
    return ScoreIdentity(departure_s, scored_s, speed, lane, head + rest.SerializeToString(deterministic=True), route)


_ROUTE_TAG = bytes([(pb.ScoreRouteRequest.ROUTE_FIELD_NUMBER << 3) | 2])  # length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def parse_score_request(
    request: pb.ScoreRouteRequest,
    *,
    now_s: int,
    default_speed_kmh: float,
    max_points: int,
    identity: ScoreIdentity | None = None,
    coverage: np.ndarray | None = None,
) -> ScoreQuery:
    """Validate a request into a :class:`ScoreQuery`, reporting every bad field together; the
    scalar fields come from ``identity`` when it was computed already; ``coverage`` (the layer's)
    catches a polyline of the wrong precision."""
    violations: list[Violation] = []
    path = _collect(violations, lambda: parse_route(request.route, max_points, coverage))
    if identity is not None:
        departure_s: int | None = identity.departure_s
        speed: float | None = identity.speed_kmh
        lane: str | None = identity.lane
    else:
        departure_s = _collect(violations, lambda: departure_of(request, now_s))
        speed = _collect(violations, lambda: _speed(request.average_speed_kmh, default_speed_kmh))
        lane = _collect(violations, lambda: _lane(request.crossing_lane))
    stops = _collect(violations, lambda: _stops(request.stops))
    if violations:
        raise InputError(violations)
    # without violations every part was parsed
    assert path is not None and departure_s is not None and speed is not None and lane is not None
    assert stops is not None
    return ScoreQuery(path=path, departure_s=departure_s, speed_kmh=speed, lane=lane, stops=stops)


def _collect(violations: list[Violation], parse: Callable[[], T]) -> T | None:
    """The parsed value, or None with its violations added to ``violations``."""
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
    if seconds < EARLIEST_DEPARTURE_S:
        value = _timestamp_text(request.departure_time)
        raise InvalidRequestError(Violation("departure_time", f"departure {value} is before 2000-01-01"))
    if seconds > now_s + MAX_FUTURE_S:
        value = _timestamp_text(request.departure_time)
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


def _stops(stops: Sequence[pb.PlannedStop]) -> tuple[Stop, ...]:
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


def timestamp(epoch_s: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(epoch_s * 1e9))
    return stamp


def duration(hours: float) -> Duration:
    span = Duration()
    span.FromNanoseconds(round(hours * 3600 * 1e9))
    return span


def seconds(span: Duration) -> float:
    """A proto Duration in seconds (nanoseconds as the fraction)."""
    return span.seconds + span.nanos / 1e9


def latlng(lat: float, lng: float) -> pb.LatLng:
    return pb.LatLng(latitude=lat, longitude=lng)


def score_response(result: RouteScore) -> pb.ScoreRouteResponse:
    """Render a :class:`RouteScore` as the API response."""
    return pb.ScoreRouteResponse(
        score=round(result.score, 6),
        level=ROUTE_LEVEL_ENUM[result.level],
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
        covered_fraction=result.covered_fraction,
        uncovered_stretches=[_stretch(u) for u in result.uncovered],
    )


def _stretch(u: UncoveredStretch) -> pb.UncoveredStretch:
    return pb.UncoveredStretch(start_km=u.start_km, end_km=u.end_km, start=latlng(*u.start), end=latlng(*u.end))


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
        hours_source=port.hours.source,
    )
    if c.observed_at_s:
        message.observed_at.CopyFrom(timestamp(c.observed_at_s))
    if c.closed and c.opens_at_s:
        message.lanes_open_time.CopyFrom(timestamp(c.opens_at_s))
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


# --------------------------------------------------------------------------- look-ups

# Times a lookup accepts: wide enough for audits and planning, narrow enough for every time zone rule.
EARLIEST_LOOKUP_S = 0
LATEST_LOOKUP_S = 4_102_444_800  # 2100-01-01


def lookup_time(stamp: Timestamp, field: str) -> int:
    """The UTC second of a look-up's ``time`` (GetCellRisk, ListHotspots, ...), within 1970..2100."""
    seconds = stamp.seconds
    if not EARLIEST_LOOKUP_S <= seconds < LATEST_LOOKUP_S:
        raise InvalidRequestError(Violation(field, f"time {seconds}s is outside 1970-01-01..2100-01-01"))
    return int(seconds)


def target_cell(request: pb.GetCellRiskRequest, resolution: int) -> int:
    """The layer-resolution cell a request names (a finer cell maps to its parent)."""
    kind = request.WhichOneof("target")
    if kind == "location":
        lat, lng = request.location.latitude, request.location.longitude
        bad = [
            Violation(f"location.{name}", f"{name} {value} is out of range [-{limit:g}, {limit:g}]")
            for name, value, limit in (("latitude", lat, 90.0), ("longitude", lng, 180.0))
            if not math.isfinite(value) or abs(value) > limit
        ]
        if bad:
            raise InvalidRequestError(bad)
        return int(h3i.latlng_to_cell(lat, lng, resolution))
    if kind == "cell":
        try:
            cell = h3i.str_to_int(request.cell)
        except (ValueError, TypeError, OverflowError):  # OverflowError: hex beyond 64 bits
            cell = 0
        if not cell or not h3i.is_valid_cell(cell):
            raise InvalidRequestError(Violation("cell", f"{request.cell[:40]!r} is not a valid H3 cell index"))
        cell_res = h3i.get_resolution(cell)
        if cell_res < resolution:
            raise InvalidRequestError(
                Violation(
                    "cell", f"cell {request.cell} has resolution {cell_res}; the layer needs {resolution} or finer"
                )
            )
        return int(h3i.cell_to_parent(cell, resolution) if cell_res > resolution else cell)
    raise InvalidRequestError(Violation("target", "set location or cell"))


def cell_risk_response(risk: cells.CellRisk) -> pb.GetCellRiskResponse:
    response = pb.GetCellRiskResponse(
        cell=h3i.int_to_str(risk.cell),
        center=latlng(risk.lat, risk.lng),
        resolution=risk.resolution,
        risk=risk.risk,
        level=LEVEL_ENUM[risk.level],
        layer_version=risk.layer_version,
        time_zone=risk.time_zone,
        hour_of_week=risk.hour_of_week,
        hour_of_week_risk=risk.hourly.tolist(),
        layer_synthetic=risk.layer_synthetic,
    )
    if risk.stats is not None:
        _fill_cell_stats(response, risk.stats)
    return response


def hotspots_response(layer: RiskLayer, result: hotspots.HotspotPage) -> pb.ListHotspotsResponse:
    lat, lng = layer.centers
    items = []
    for row, risk, scale in zip(result.rows.tolist(), result.risk.tolist(), result.scale.tolist(), strict=True):
        item = pb.CellHotspot(
            cell=h3i.int_to_str(int(layer.cells[row])),
            center=latlng(float(lat[row]), float(lng[row])),
            risk=risk,
            level=LEVEL_ENUM[level_of_rate(risk)],
        )
        _fill_cell_stats(item, cells.cell_stats(layer, row, scale))
        items.append(item)
    return pb.ListHotspotsResponse(
        hotspots=items,
        next_page_token=result.next_token,
        layer_version=layer.version,
        total_size=result.total,
        layer_synthetic=layer.synthetic,
    )


def _fill_cell_stats(message: pb.GetCellRiskResponse | pb.CellHotspot, stats: cells.CellStats) -> None:
    message.incident_count = stats.incident_count
    if stats.violent_count is not None:
        message.violent_incident_count = stats.violent_count
    if stats.risk_lower is not None and stats.risk_upper is not None:
        message.risk_lower = stats.risk_lower
        message.risk_upper = stats.risk_upper
    if stats.last_incident_s:
        message.last_incident_time.CopyFrom(timestamp(stats.last_incident_s))
    message.recent_share = stats.recent_share
    if stats.recent_since_s:
        message.recent_activity = True
        message.recent_since.CopyFrom(timestamp(stats.recent_since_s))


def avoid_areas_response(layer: RiskLayer, result: avoid_areas.AvoidExport) -> pb.ExportAvoidAreasResponse:
    in_graphhopper = {a.id for a in result.graphhopper_areas}
    return pb.ExportAvoidAreasResponse(
        areas=[
            pb.AvoidArea(
                id=a.id,
                level=LEVEL_ENUM[a.level],
                cell_count=len(a.shape.cells),
                risk=a.risk,
                vertex_count=a.shape.vertex_count,
                hole_count=len(a.shape.rings) - 1,
                perimeter_meters=a.shape.outer_perimeter_m,
                in_graphhopper=a.id in in_graphhopper,
            )
            for a in result.areas
        ],
        geojson=avoid_areas.geojson(result.areas),
        valhalla=avoid_areas.valhalla(result.valhalla_rings),
        graphhopper=avoid_areas.graphhopper(result.graphhopper_areas),
        valhalla_budget=_budget(result.valhalla_budget),
        graphhopper_budget=_budget(result.graphhopper_budget),
        cell_count=result.cell_count,
        layer_version=layer.version,
        layer_synthetic=layer.synthetic,
    )


def _budget(budget: avoid_areas.Budget) -> pb.AvoidAreaBudget:
    return pb.AvoidAreaBudget(included=budget.included, left_out=budget.left_out, used=budget.used, limit=budget.limit)


def crossings_response(
    ports: list[crossings.PortWaits], at_s: int, border_version: str
) -> pb.ListBorderCrossingsResponse:
    out = []
    for item in ports:
        port = item.port
        waits = []
        for lane, estimate in item.waits:
            wait = pb.LaneWait(
                lane=LANE_ENUM[lane],
                expected_wait_minutes=estimate.minutes,
                source=WAIT_SOURCE_ENUM[estimate.source],
                operational_status=estimate.operational_status,
                lanes_open=estimate.lanes_open,
                closed=estimate.closed,
            )
            if estimate.observed_at_s:
                wait.observed_at.CopyFrom(timestamp(estimate.observed_at_s))
                wait.age.CopyFrom(duration((at_s - estimate.observed_at_s) / 3600))
            if estimate.closed and estimate.opens_at_s:
                wait.lanes_open_time.CopyFrom(timestamp(estimate.opens_at_s))
            waits.append(wait)
        out.append(
            pb.BorderCrossing(
                port_number=port.port_number,
                port_name=port.port_name,
                crossing_name=port.crossing_name,
                mexican_city=port.mx_city,
                us_state=port.us_state,
                location=latlng(port.lat, port.lng),
                time_zone=port.time_zone,
                commercial_lanes=port.commercial_lanes,
                fast_lanes=port.fast_lanes,
                lane_waits=waits,
                commercial_hours=port.hours.text,
                hours_source=port.hours.source,
            )
        )
    return pb.ListBorderCrossingsResponse(crossings=out, border_data_version=border_version)


# --------------------------------------------------------------------------- rankings


def option(response: pb.ScoreRouteResponse) -> compare.Option:
    """A scored route as an alternative to rank: its score, duration (h) and 'via <port>'."""
    return compare.Option(
        response.score,
        response.duration.ToTimedelta().total_seconds() / 3600,
        _via(response),
        covered=response.level != pb.RISK_LEVEL_NOT_COVERED,
    )


def _via(response: pb.ScoreRouteResponse) -> str:
    """'via Laredo (World Trade Bridge)' for a route that crosses, else ''."""
    if not response.crossings:
        return ""
    first = response.crossings[0]
    return f"via {first.port_name}" + (f" ({first.crossing_name})" if first.crossing_name else "")


def compare_response(
    results: list[pb.ScoreRouteResponse], ranking: compare.Ranking, weight: float
) -> pb.CompareRoutesResponse:
    ranked = [
        pb.RankedRoute(index=i, rank=position + 1, cost=ranking.costs[i], result=results[i])
        for position, i in enumerate(ranking.order)
    ]
    return pb.CompareRoutesResponse(
        ranked=ranked, recommended_index=ranking.order[0], reason=ranking.reason, risk_weight=weight
    )


def departures_response(
    results: list[pb.ScoreRouteResponse], ranking: compare.Ranking, weight: float
) -> pb.SuggestDeparturesResponse:
    ranked = [
        pb.RankedDeparture(rank=position + 1, cost=ranking.costs[i], result=results[i])
        for position, i in enumerate(ranking.order)
    ]
    return pb.SuggestDeparturesResponse(departures=ranked, reason=ranking.reason, risk_weight=weight)


def departure_candidate(trip: pb.ScoreRouteRequest, departure_s: int) -> pb.ScoreRouteRequest:
    """The trip at another departure."""
    candidate = pb.ScoreRouteRequest()
    candidate.CopyFrom(trip)
    candidate.departure_time.FromSeconds(departure_s)
    return candidate
