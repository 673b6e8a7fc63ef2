"""The gRPC servicer of RouteRiskService: convert the request → call a use case (or the scoring
handler, for anything that scores a route) → convert the response. No proto is built here
(:mod:`service.grpc.convert`), no model logic lives here (:mod:`service.usecases`)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Executor

import grpc

from geodata.errors import InputError, InvalidRequestError, Violation
from geodata.timezones import zone_at
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc import convert, monitor_stream, trip_report
from service.grpc.errors import grpc_async_stream_errors, grpc_errors, grpc_stream_errors, status_for
from service.grpc.limits import check_deadline
from service.grpc.scoring_handler import ScoreHandler
from service.store.cache import Cache
from service.store.serving import ServingState, Snapshot
from service.usecases import avoid_areas, cells, compare, crossings, departures, hotspots
from service.usecases.scoring import ModelOptions
from service.usecases.trip_monitor import Environment, TripStore


class RouteRiskServicer(pb_grpc.RouteRiskServiceServicer):
    """Implements routerisk.v1.RouteRiskService over a :class:`ServingState`."""

    def __init__(
        self,
        state: ServingState,
        settings: Settings,
        cache: Cache,
        trips: TripStore | None = None,
        trip_pool: Executor | None = None,
    ) -> None:
        self._state = state
        # the threads MonitorTrip's positions are answered on (asyncio server; None: the loop's default)
        self._trip_pool = trip_pool
        self._settings = settings
        self._options = ModelOptions(
            resolution=settings.h3_resolution,
            live_max_age_s=int(settings.border_live_max_age_minutes * 60),
            crossing_match_km=settings.crossing_match_km,
        )
        self._scoring = ScoreHandler(settings, cache, self._options)
        # trip states for resuming: this replica's, shared through Redis when the server passes such a store
        self._trips = (
            trips if trips is not None else TripStore(settings.trip_store_max_trips, settings.trip_store_ttl_seconds)
        )

    def _snapshot(self) -> Snapshot:
        return self._state.current()

    def _score(self, request: pb.ScoreRouteRequest, snapshot: Snapshot, now_s: int) -> pb.ScoreRouteResponse:
        return self._scoring.score(request, snapshot, now_s)

    @grpc_errors
    def ScoreRoute(self, request: pb.ScoreRouteRequest, context: grpc.ServicerContext) -> pb.ScoreRouteResponse:
        return self._score(request, self._snapshot(), int(time.time()))

    def _score_route_wire(
        self, request: pb.ScoreRouteRequest, context: grpc.ServicerContext
    ) -> bytes | pb.ScoreRouteResponse:
        return self._scoring.score_wire(request, self._snapshot(), int(time.time()))

    def score_route_memorised(self, request: pb.ScoreRouteRequest) -> bytes | None:
        """ScoreRoute's answer when it is in memory already (``ScoreHandler.memorised``), else None;
        never raises for a caller's mistake (the full path reports it)."""
        snapshot = self._state.snapshot
        if snapshot is None:
            return None
        return self._scoring.memorised(request, snapshot, int(time.time()))

    _score_route_wire.__name__ = "ScoreRoute"  # its errors are logged as ScoreRoute's
    # ScoreRoute as the server registers it (:func:`service.grpc.server.service_handlers`): the same
    # answer, a cached one possibly already serialized (see ``ScoreHandler.score_wire``)
    score_route_wire = grpc_errors(_score_route_wire)

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

    @grpc_errors
    def GetCellRisk(self, request: pb.GetCellRiskRequest, context: grpc.ServicerContext) -> pb.GetCellRiskResponse:
        layer = self._snapshot().layer
        cell = convert.target_cell(request, layer.resolution)
        at = convert.lookup_time(request.time, "time") if request.HasField("time") else None
        return convert.cell_risk_response(cells.cell_risk(layer, cell, at))

    @grpc_errors
    def ListHotspots(self, request: pb.ListHotspotsRequest, context: grpc.ServicerContext) -> pb.ListHotspotsResponse:
        layer = self._snapshot().layer
        box = request.bounds
        at = convert.lookup_time(request.time, "time") if request.HasField("time") else None
        query = hotspots.validate_query(box.west, box.south, box.east, box.north, request.top, request.page_size, at)
        return convert.hotspots_response(layer, hotspots.page(layer, query, request.page_token))

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
        ranking = compare.rank([convert.option(r) for r in results], weight)
        return convert.compare_response(results, ranking, weight)

    @grpc_stream_errors
    def MonitorTrip(
        self, request_iterator: Iterator[pb.MonitorTripRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.MonitorTripResponse]:
        self._snapshot()  # UNAVAILABLE before any position is read when no data is loaded yet
        yield from monitor_stream.monitor(
            request_iterator, self._environment, self._trips, self._settings.max_route_points
        )

    @grpc_async_stream_errors
    async def monitor_trip_async(
        self, request_iterator: AsyncIterator[pb.MonitorTripRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.MonitorTripResponse]:
        """MonitorTrip on the asyncio server (:func:`service.grpc.server.service_handlers`): the same
        answers; between positions the stream holds no thread, each position takes one of the
        trip pool's threads while it is answered."""
        self._snapshot()
        loop = asyncio.get_running_loop()

        def run(answer: Callable[[], pb.MonitorTripResponse]) -> Awaitable[pb.MonitorTripResponse]:
            # the copied context carries the tenant (trips are kept per tenant) and the call's log context
            return loop.run_in_executor(self._trip_pool, contextvars.copy_context().run, answer)

        async for response in monitor_stream.monitor_async(
            request_iterator, self._environment, self._trips, self._settings.max_route_points, run
        ):
            yield response

    def _environment(self) -> Environment:
        snapshot = self._snapshot()  # per position: a layer activated mid-trip applies at once
        return Environment(snapshot.layer, snapshot.border, self._options.live_max_age_s)

    @grpc_errors
    def SuggestDepartures(
        self, request: pb.SuggestDeparturesRequest, context: grpc.ServicerContext
    ) -> pb.SuggestDeparturesResponse:
        window_s, step_s, weight = departures.check_request(
            convert.seconds(request.window) if request.HasField("window") else None,
            convert.seconds(request.step) if request.HasField("step") else None,
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
            try:
                results.append(self._score(convert.departure_candidate(trip, departure_s), snapshot, now_s))
            except InputError as exc:
                raise compare.prefixed(exc, "trip.") from None
        zone = zone_at(float(start.lat[0]), float(start.lng[0]))
        ranking = compare.rank([convert.option(r) for r in results], weight, [departures.label(t, zone) for t in times])
        return convert.departures_response(results, ranking, weight)

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
        at = convert.lookup_time(request.time, "time") if request.HasField("time") else None
        return convert.avoid_areas_response(layer, avoid_areas.export(layer, box, level, at, perimeter, vertices))

    @grpc_errors
    def ListBorderCrossings(
        self, request: pb.ListBorderCrossingsRequest, context: grpc.ServicerContext
    ) -> pb.ListBorderCrossingsResponse:
        border = self._snapshot().border
        ports = crossings.select_ports(border, request.port_number)
        at = convert.lookup_time(request.time, "time") if request.HasField("time") else int(time.time())
        waits = crossings.lane_waits(border, ports, at, self._options.live_max_age_s)
        return convert.crossings_response(waits, at, border.version)

    @grpc_errors
    def ReportTripPositions(
        self, request: pb.ReportTripPositionsRequest, context: grpc.ServicerContext
    ) -> pb.ReportTripPositionsResponse:
        """MonitorTrip in batches, on the same trips (issue 17: :mod:`service.grpc.trip_report`)."""

        def environment() -> Environment:
            snapshot = self._snapshot()
            return Environment(snapshot.layer, snapshot.border, self._options.live_max_age_s)

        settings = self._settings
        return trip_report.report(request, environment, self._trips, settings.max_route_points, settings.max_batch_size)
