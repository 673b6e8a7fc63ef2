"""RouteRiskService and RouteRiskAdminService as Connect services: each method runs the gRPC
servicer's own method body (the use cases behind it, the scoring handler and its caches) under
the HTTP call's limits (:class:`service.http.calls.Runner`), so the two transports give the same
answers and the same errors by construction, not by a second implementation.

The servicer's bodies are reached under their error decorator (``__wrapped__``): they take a
request and a gRPC context they do not use, and raise domain errors, which the runner maps to
Connect errors from the same ``google.rpc.Status`` as the decorator maps them to gRPC's.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, TypeVar

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from google.protobuf.message import Message

from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_service_pb2 as pb
from service.config import Settings
from service.grpc.admin_servicer import RouteRiskAdminServicer
from service.grpc.servicer import RouteRiskServicer
from service.http.calls import Runner
from service.store.serving import ServingState

R = TypeVar("R", bound=Message)
Ctx = RequestContext[Any, Any]
STREAM_NEEDS_HTTP2 = (
    "MonitorTrip needs a bidirectional stream, which this HTTP/1.1 port cannot carry: "
    "send positions in batches with ReportTripPositions (same trips, same alerts), or use the gRPC port"
)


def body_of(servicer: object, name: str) -> Callable[[Any], Any]:
    """The servicer method ``name`` without its gRPC error decorator, bound, called without a context."""
    method = inspect.unwrap(getattr(type(servicer), name))
    return lambda request: method(servicer, request, None)


class RouteRiskConnect:
    """routerisk.v1.RouteRiskService over Connect (the generated ``RouteRiskService`` protocol)."""

    def __init__(self, servicer: RouteRiskServicer, runner: Runner) -> None:
        self._runner = runner
        self._servicer = servicer

    async def _call(self, name: str, request: Message, ctx: Ctx) -> Any:
        return await self._runner.run(partial(body_of(self._servicer, name), request), ctx.method.name, ctx.timeout_ms)

    async def score_route(self, request: pb.ScoreRouteRequest, ctx: Ctx) -> pb.ScoreRouteResponse:
        return await self._call("ScoreRoute", request, ctx)

    async def batch_score_routes(self, request: pb.BatchScoreRoutesRequest, ctx: Ctx) -> pb.BatchScoreRoutesResponse:
        return await self._call("BatchScoreRoutes", request, ctx)

    async def get_cell_risk(self, request: pb.GetCellRiskRequest, ctx: Ctx) -> pb.GetCellRiskResponse:
        return await self._call("GetCellRisk", request, ctx)

    async def list_border_crossings(
        self, request: pb.ListBorderCrossingsRequest, ctx: Ctx
    ) -> pb.ListBorderCrossingsResponse:
        return await self._call("ListBorderCrossings", request, ctx)

    async def list_hotspots(self, request: pb.ListHotspotsRequest, ctx: Ctx) -> pb.ListHotspotsResponse:
        return await self._call("ListHotspots", request, ctx)

    async def compare_routes(self, request: pb.CompareRoutesRequest, ctx: Ctx) -> pb.CompareRoutesResponse:
        return await self._call("CompareRoutes", request, ctx)

    async def suggest_departures(self, request: pb.SuggestDeparturesRequest, ctx: Ctx) -> pb.SuggestDeparturesResponse:
        return await self._call("SuggestDepartures", request, ctx)

    async def export_avoid_areas(self, request: pb.ExportAvoidAreasRequest, ctx: Ctx) -> pb.ExportAvoidAreasResponse:
        return await self._call("ExportAvoidAreas", request, ctx)

    def monitor_trip(
        self, request: AsyncIterator[pb.MonitorTripRequest], ctx: Ctx
    ) -> AsyncIterator[pb.MonitorTripResponse]:
        raise ConnectError(Code.UNIMPLEMENTED, STREAM_NEEDS_HTTP2)

    async def report_trip_positions(
        self, request: pb.ReportTripPositionsRequest, ctx: Ctx
    ) -> pb.ReportTripPositionsResponse:
        return await self._call("ReportTripPositions", request, ctx)


class RouteRiskAdminConnect:
    """routerisk.v1.RouteRiskAdminService over Connect (admin keys only, as over gRPC)."""

    def __init__(self, state: ServingState, settings: Settings, runner: Runner) -> None:
        self._servicer = RouteRiskAdminServicer(state, settings.border_max_clock_skew_seconds)
        self._runner = runner

    async def load_border_observations(
        self, request: admin_pb.LoadBorderObservationsRequest, ctx: Ctx
    ) -> admin_pb.LoadBorderObservationsResponse:
        body = partial(body_of(self._servicer, "LoadBorderObservations"), request)
        return await self._runner.run(body, ctx.method.name, ctx.timeout_ms)
