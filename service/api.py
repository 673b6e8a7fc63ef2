"""The gRPC servicer: proto in, domain use case, proto out."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import replace

import grpc
import h3.api.basic_int as h3i
import numpy as np

from geodata.border import detect_crossings
from geodata.cells import CellChain, chain_from_bytes, chain_to_bytes, route_to_cells
from geodata.errors import InputError, InvalidRequestError, Violation
from geodata.layers import RiskLayer
from geodata.timezones import hour_of_week, utc_offset_seconds, zone_at
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service import avoid_areas, compare, convert, departures, hotspots, monitor_api
from service.cache import Cache, InProcessCache, ResultCache
from service.config import Settings
from service.errors import NotFoundError, NotReadyError, grpc_errors, grpc_stream_errors, status_for
from service.limits import check_deadline
from service.scoring import ModelOptions, ScoreQuery, level_of_rate, score_route
from service.state import ServingState, Snapshot
from service.trip_monitor import Environment, TripStore

log = logging.getLogger(__name__)

CACHE_KEY_VERSION = b"score-v1"
ALIAS_KEY_VERSION = b"alias-v1"


class RouteRiskServicer(pb_grpc.RouteRiskServiceServicer):
    """Implements routerisk.v1.RouteRiskService over a :class:`ServingState`."""

    def __init__(self, state: ServingState, settings: Settings, cache: Cache) -> None:
        self._state = state
        self._settings = settings
        self._cache = cache
        self._results = ResultCache(cache, settings.cache_ttl_seconds)
        # request identity → cache key of requests answered before: a repeated request skips route
        # decoding, validation and crossing detection (most of a cached answer's cost); in-process only
        self._aliases = InProcessCache(settings.cache_max_entries) if settings.cache_max_entries > 0 else None
        self._options = ModelOptions(
            resolution=settings.h3_resolution,
            live_max_age_s=int(settings.border_live_max_age_minutes * 60),
            crossing_match_km=settings.crossing_match_km,
        )
        self._trips = TripStore(settings.trip_store_max_trips, settings.trip_store_ttl_seconds)

    def _snapshot(self) -> Snapshot:
        snapshot = self._state.snapshot
        if snapshot is None:
            raise NotReadyError("risk layers are still loading; retry shortly")
        return snapshot

    @grpc_errors
    def ScoreRoute(self, request: pb.ScoreRouteRequest, context: grpc.ServicerContext) -> pb.ScoreRouteResponse:
        return self._score(request, self._snapshot(), int(time.time()))

    @grpc_errors
    def BatchScoreRoutes(
        self, request: pb.BatchScoreRoutesRequest, context: grpc.ServicerContext
    ) -> pb.BatchScoreRoutesResponse:
        count = len(request.requests)
        if count > self._settings.max_batch_size:
            limit = self._settings.max_batch_size
            raise InvalidRequestError(Violation("requests", f"{count} requests exceed the batch limit of {limit}"))
        snapshot, now_s = self._snapshot(), int(time.time())
        results = []
        for item in request.requests:
            check_deadline()
            try:
                results.append(pb.ScoreRouteResult(response=self._score(item, snapshot, now_s)))
            except InputError as exc:
                results.append(pb.ScoreRouteResult(error=status_for(exc)))
        return pb.BatchScoreRoutesResponse(results=results)

    def _score(self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int) -> pb.ScoreRouteResponse:
        """Validate, then serve from the result cache or compute once; times are the request's."""
        known = self._known_answer(request, snapshot, now_s)
        if known is not None:
            return known
        query = convert.parse_score_request(
            request,
            now_s=now_s,
            default_speed_kmh=self._settings.default_speed_kmh,
            max_points=self._settings.max_route_points,
        )
        scored = replace(query, departure_s=self._bucketed(query.departure_s))
        crossings = detect_crossings(query.path, snapshot.border, self._options.crossing_match_km)
        key = self._cache_key(convert.normalized_request(request, scored), snapshot, bool(crossings))

        def compute() -> bytes:
            chain = self._chain(request.route, query, snapshot.layer.resolution)
            result = score_route(
                scored, snapshot.layer, snapshot.border, self._options, chain=chain, crossings=crossings
            )
            return convert.score_response(result).SerializeToString()

        data, cached = self._results.get_or_compute(key, compute)
        if self._aliases is not None:
            self._aliases.set(self._alias(request, snapshot, query.departure_s), key.encode(), self._results.ttl())
        return _response(data, cached, request, query.departure_s - scored.departure_s)

    def _bucketed(self, departure_s: int) -> int:
        """The departure a request is scored at: the start of its bucket (the exact time when 0)."""
        bucket = self._settings.departure_bucket_seconds
        return departure_s - departure_s % bucket if bucket else departure_s

    def _known_answer(
        self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int
    ) -> pb.ScoreRouteResponse | None:
        """The cached answer of a request seen before, without decoding its route again.

        Safe because validation depends on the request alone, except the departure's distance
        from now, which is checked again here; anything unusual falls back to the full path."""
        if self._aliases is None:
            return None
        try:
            departure_s = convert.departure_of(request, now_s)
        except InputError:
            return None
        key = self._aliases.get(self._alias(request, snapshot, departure_s))
        data = self._results.get(key.decode()) if key is not None else None
        if data is None:
            return None
        return _response(data, True, request, departure_s - self._bucketed(departure_s))

    def _alias(self, request: pb.ScoreRouteRequest, snapshot: Snapshot, departure_s: int) -> str:
        """The request as sent, without its echo-only reference and with its departure bucketed,
        under the layer and border versions it is answered with."""
        canonical = pb.ScoreRouteRequest()
        canonical.CopyFrom(request)
        canonical.ClearField("reference")
        canonical.departure_time.FromSeconds(self._bucketed(departure_s))
        digest = hashlib.sha256(ALIAS_KEY_VERSION)
        digest.update(f"|{snapshot.layer.version}|{snapshot.border.version}|".encode())
        digest.update(canonical.SerializeToString(deterministic=True))
        return digest.hexdigest()

    def _chain(self, route: pb.Route, query: ScoreQuery, resolution: int) -> CellChain:
        """The route's cell chain from the geometry cache (layer-independent), else computed."""
        key = "geom:" + hashlib.sha256(route.SerializeToString(deterministic=True) + bytes([resolution])).hexdigest()
        data = self._cache.get(key)
        if data is not None:
            try:
                return chain_from_bytes(data)
            except ValueError:
                log.warning("undecodable cached cell chain; recomputing")
        chain = route_to_cells(query.path, resolution)
        self._cache.set(key, chain_to_bytes(chain), self._results.ttl())
        return chain

    def _cache_key(self, normalized: bytes, snapshot: Snapshot, crosses: bool) -> str:
        """Request identity + layer version (+ border version when the route crosses)."""
        digest = hashlib.sha256(CACHE_KEY_VERSION)
        border = snapshot.border.version if crosses else "-"
        digest.update(f"|{snapshot.layer.version}|{border}|{self._options}|".encode())
        digest.update(normalized)
        return "score:" + digest.hexdigest()

    @grpc_errors
    def GetCellRisk(self, request: pb.GetCellRiskRequest, context: grpc.ServicerContext) -> pb.GetCellRiskResponse:
        layer = self._snapshot().layer
        cell = _target_cell(request, layer.resolution)
        lat, lng = h3i.cell_to_latlng(cell)
        zone = zone_at(lat, lng)
        rows, found = layer.index(np.array([cell], dtype=np.uint64))
        row, present = int(rows[0]), bool(found[0])
        hourly = layer.intensity[row].astype(np.float64) if present else np.zeros(168)
        how = -1
        risk = float(hourly.mean())
        if request.HasField("time"):
            at = _checked_time(request.time.seconds, "time")
            how = int(hour_of_week(np.array([at + utc_offset_seconds(zone, at)]))[0])
            risk = float(hourly[how])
        scale = risk / float(hourly.mean()) if present and hourly.mean() > 0 else 0.0
        response = pb.GetCellRiskResponse(
            cell=h3i.int_to_str(cell),
            center=convert.latlng(lat, lng),
            resolution=layer.resolution,
            risk=risk,
            level=convert.LEVEL_ENUM[level_of_rate(risk)],
            layer_version=layer.version,
            time_zone=zone,
            hour_of_week=how,
            hour_of_week_risk=hourly.tolist(),
            layer_synthetic=layer.synthetic,
        )
        if present:
            _fill_cell_stats(response, layer, row, scale)
        return response

    @grpc_errors
    def ListHotspots(self, request: pb.ListHotspotsRequest, context: grpc.ServicerContext) -> pb.ListHotspotsResponse:
        layer = self._snapshot().layer
        box = request.bounds
        at = _checked_time(request.time.seconds, "time") if request.HasField("time") else None
        query = hotspots.validate_query(box.west, box.south, box.east, box.north, request.top, request.page_size, at)
        result = hotspots.page(layer, query, request.page_token)
        lat, lng = layer.centers
        items = []
        for row, risk, scale in zip(result.rows.tolist(), result.risk.tolist(), result.scale.tolist(), strict=True):
            item = pb.CellHotspot(
                cell=h3i.int_to_str(int(layer.cells[row])),
                center=convert.latlng(float(lat[row]), float(lng[row])),
                risk=risk,
                level=convert.LEVEL_ENUM[level_of_rate(risk)],
            )
            _fill_cell_stats(item, layer, row, scale)
            items.append(item)
        return pb.ListHotspotsResponse(
            hotspots=items,
            next_page_token=result.next_token,
            layer_version=layer.version,
            total_size=result.total,
            layer_synthetic=layer.synthetic,
        )

    @grpc_errors
    def CompareRoutes(
        self, request: pb.CompareRoutesRequest, context: grpc.ServicerContext
    ) -> pb.CompareRoutesResponse:
        weight = compare.check_request(
            len(request.alternatives), request.risk_weight if request.HasField("risk_weight") else None
        )
        snapshot, now_s = self._snapshot(), int(time.time())
        results = []
        for i, item in enumerate(request.alternatives):
            check_deadline()
            try:
                results.append(self._score(item, snapshot, now_s))
            except InputError as exc:
                raise compare.prefixed(exc, f"alternatives[{i}].") from None
        options = [compare.Option(r.score, r.duration.ToTimedelta().total_seconds() / 3600, _via(r)) for r in results]
        ranking = compare.rank(options, weight)
        ranked = [
            pb.RankedRoute(index=i, rank=position + 1, cost=ranking.costs[i], result=results[i])
            for position, i in enumerate(ranking.order)
        ]
        return pb.CompareRoutesResponse(
            ranked=ranked, recommended_index=ranking.order[0], reason=ranking.reason, risk_weight=weight
        )

    @grpc_stream_errors
    def MonitorTrip(
        self, request_iterator: Iterator[pb.MonitorTripRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.MonitorTripResponse]:
        self._snapshot()  # UNAVAILABLE before any position is read when no data is loaded yet

        def environment() -> Environment:
            snapshot = self._snapshot()  # per position: a layer activated mid-trip applies at once
            return Environment(snapshot.layer, snapshot.border, self._options.live_max_age_s)

        yield from monitor_api.monitor(request_iterator, environment, self._trips, self._settings.max_route_points)

    @grpc_errors
    def SuggestDepartures(
        self, request: pb.SuggestDeparturesRequest, context: grpc.ServicerContext
    ) -> pb.SuggestDeparturesResponse:
        window_s, step_s, weight = departures.check_request(
            request.window if request.HasField("window") else None,
            request.step if request.HasField("step") else None,
            request.risk_weight if request.HasField("risk_weight") else None,
        )
        snapshot, now_s = self._snapshot(), int(time.time())
        trip = request.trip
        try:
            start = convert.parse_route(trip.route, self._settings.max_route_points)
            times = departures.candidates(convert.departure_of(trip, now_s), window_s, step_s)
        except InputError as exc:
            raise compare.prefixed(exc, "trip.") from None
        results = []
        for departure_s in times:
            check_deadline()
            candidate = pb.ScoreRouteRequest()
            candidate.CopyFrom(trip)
            candidate.departure_time.FromSeconds(departure_s)
            try:
                results.append(self._score(candidate, snapshot, now_s))
            except InputError as exc:
                raise compare.prefixed(exc, "trip.") from None
        options = [compare.Option(r.score, r.duration.ToTimedelta().total_seconds() / 3600, _via(r)) for r in results]
        zone = zone_at(float(start.lat[0]), float(start.lng[0]))
        ranking = compare.rank(options, weight, [departures.label(t, zone) for t in times])
        ranked = [
            pb.RankedDeparture(rank=position + 1, cost=ranking.costs[i], result=results[i])
            for position, i in enumerate(ranking.order)
        ]
        return pb.SuggestDeparturesResponse(departures=ranked, reason=ranking.reason, risk_weight=weight)

    @grpc_errors
    def ExportAvoidAreas(
        self, request: pb.ExportAvoidAreasRequest, context: grpc.ServicerContext
    ) -> pb.ExportAvoidAreasResponse:
        layer = self._snapshot().layer
        box = (request.bounds.west, request.bounds.south, request.bounds.east, request.bounds.north)
        named = convert.LEVEL_NAME.get(request.min_level, str(request.min_level)) if request.min_level else None
        level, perimeter, vertices = avoid_areas.check_request(
            box, named, request.valhalla_max_perimeter_meters, request.graphhopper_max_vertices
        )
        at = _checked_time(request.time.seconds, "time") if request.HasField("time") else None
        result = avoid_areas.export(layer, box, level, at, perimeter, vertices)
        in_graphhopper = {a.id for a in result.graphhopper_areas}
        return pb.ExportAvoidAreasResponse(
            areas=[
                pb.AvoidArea(
                    id=a.id,
                    level=convert.LEVEL_ENUM[a.level],
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

    @grpc_errors
    def ListBorderCrossings(
        self, request: pb.ListBorderCrossingsRequest, context: grpc.ServicerContext
    ) -> pb.ListBorderCrossingsResponse:
        border = self._snapshot().border
        ports = border.ports
        if request.port_number:
            ports = tuple(p for p in ports if p.port_number == request.port_number)
            if not ports:
                raise NotFoundError(f"no commercial port of entry with port_number {request.port_number!r}")
        at = _checked_time(request.time.seconds, "time") if request.HasField("time") else int(time.time())
        max_age = self._options.live_max_age_s
        crossings = []
        for port in ports:
            waits = []
            for lane in ("standard", "fast"):
                estimate = border.expected_wait(port, lane, at, max_age)
                wait = pb.LaneWait(
                    lane=convert.LANE_ENUM[lane],
                    expected_wait_minutes=estimate.minutes,
                    source=convert.WAIT_SOURCE_ENUM[estimate.source],
                    operational_status=estimate.operational_status,
                    lanes_open=estimate.lanes_open,
                    closed=estimate.closed,
                )
                if estimate.observed_at_s:
                    wait.observed_at.CopyFrom(convert.timestamp(estimate.observed_at_s))
                    wait.age.CopyFrom(convert.duration((at - estimate.observed_at_s) / 3600))
                waits.append(wait)
            crossings.append(
                pb.BorderCrossing(
                    port_number=port.port_number,
                    port_name=port.port_name,
                    crossing_name=port.crossing_name,
                    mexican_city=port.mx_city,
                    us_state=port.us_state,
                    location=convert.latlng(port.lat, port.lng),
                    time_zone=port.time_zone,
                    commercial_lanes=port.commercial_lanes,
                    fast_lanes=port.fast_lanes,
                    lane_waits=waits,
                )
            )
        return pb.ListBorderCrossingsResponse(crossings=crossings, border_data_version=border.version)


def _budget(budget: avoid_areas.Budget) -> pb.AvoidAreaBudget:
    return pb.AvoidAreaBudget(included=budget.included, left_out=budget.left_out, used=budget.used, limit=budget.limit)


def _via(response: pb.ScoreRouteResponse) -> str:
    """'via Laredo (World Trade Bridge)' for a route that crosses, else ''."""
    if not response.crossings:
        return ""
    first = response.crossings[0]
    return f"via {first.port_name}" + (f" ({first.crossing_name})" if first.crossing_name else "")


# Times a lookup accepts: wide enough for audits and planning, narrow enough for every time zone rule.
EARLIEST_LOOKUP_S = 0
LATEST_LOOKUP_S = 4_102_444_800  # 2100-01-01


def _checked_time(seconds: int, field: str) -> int:
    if not EARLIEST_LOOKUP_S <= seconds < LATEST_LOOKUP_S:
        raise InvalidRequestError(Violation(field, f"time {seconds}s is outside 1970-01-01..2100-01-01"))
    return int(seconds)


def _fill_cell_stats(
    message: pb.GetCellRiskResponse | pb.CellHotspot, layer: RiskLayer, row: int, scale: float
) -> None:
    """Counts, last incident and bounds (scaled from the weekly mean to the asked hour)."""
    message.incident_count = int(layer.incident_count[row])
    if layer.violent_count is not None:
        message.violent_incident_count = int(layer.violent_count[row])
    if layer.lower is not None and layer.upper is not None:
        message.risk_lower = float(layer.lower[row]) * scale
        message.risk_upper = float(layer.upper[row]) * scale
    if layer.last_incident_s[row]:
        message.last_incident_time.CopyFrom(convert.timestamp(int(layer.last_incident_s[row])))
    elevated, share, since = layer.recent_activity(np.array([row]))
    message.recent_share = float(share[0])
    if elevated[0]:
        message.recent_activity = True
        message.recent_since.CopyFrom(convert.timestamp(int(since[0])))


def _response(data: bytes, cached: bool, request: pb.ScoreRouteRequest, shift_s: int) -> pb.ScoreRouteResponse:
    """A stored answer for this request: its times moved to the request's own departure, its reference."""
    response = pb.ScoreRouteResponse.FromString(data)
    response.cached = cached
    convert.shift_times(response, shift_s)
    response.reference = request.reference
    return response


def _target_cell(request: pb.GetCellRiskRequest, resolution: int) -> int:
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
        return h3i.latlng_to_cell(lat, lng, resolution)
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
        return h3i.cell_to_parent(cell, resolution) if cell_res > resolution else cell
    raise InvalidRequestError(Violation("target", "set location or cell"))
