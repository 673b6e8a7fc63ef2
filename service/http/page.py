"""The dispatcher page: ``GET /`` serves it (one self-contained HTML file: no CDN, tiles or fonts),
and ``POST /ui/map`` draws the map it shows, from the ScoreRouteRequest it scored, with the renderer
of ``routerisk map`` (:mod:`service.render`), in the server: the same ScoreRoute and the same cell
look-ups (the servicer's own bodies), under the same keys and limits as any API call.

The page itself calls the API with ``fetch`` and JSON (GetCellRisk for the origin's time zone,
ScoreRoute); only the drawing, which needs the route's H3 cells, is done here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError

from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc import convert
from service.grpc.auth import TENANT, AuthInterceptor
from service.grpc.servicer import RouteRiskServicer
from service.http.calls import Runner
from service.http.codec import StrictJSONCodec
from service.http.errors import from_exception, grpc_name
from service.http.services import body_of
from service.render import gather, trip_map

log = logging.getLogger(__name__)

PAGE = (Path(__file__).parent / "dispatcher.html").read_bytes()
MAP_PATH = "/ui/map"
HTML = "text/html; charset=utf-8"


class MapDrawer:
    """``POST /ui/map``: a ScoreRouteRequest (proto3 JSON) in, the trip map's HTML page out."""

    def __init__(
        self, servicer: RouteRiskServicer, max_points: int, auth: AuthInterceptor, enabled: bool, runner: Runner
    ) -> None:
        self._score = body_of(servicer, "ScoreRoute")
        self._cell = body_of(servicer, "GetCellRisk")
        self._auth = auth
        self._enabled = enabled
        self._runner = runner
        self._max_points = max_points

    async def draw(self, body: Callable[[], Awaitable[bytes]], authorization: str) -> str:
        """The map's page; raises :class:`ConnectError` (a bad request, no key, the limits). The key
        is checked before ``body`` is read: a caller without one cannot make the server buffer it."""
        tenant = self._tenant(authorization)
        request = StrictJSONCodec().decode(await body(), pb.ScoreRouteRequest)
        token = TENANT.set(tenant)
        try:
            return await self._runner.run(partial(self._trip_page, request), "DispatcherMap", None)
        finally:
            TENANT.reset(token)

    def _tenant(self, authorization: str) -> str:
        """The caller's tenant, as ScoreRoute would take it (its ``score`` permission)."""
        if not self._enabled:
            return TENANT.get()
        key = self._auth.presented_key(_Metadata(authorization))
        if key is None:
            raise ConnectError(Code.UNAUTHENTICATED, "a valid API key is required (authorization: Bearer)")
        if "score" not in key.permissions:
            raise ConnectError(Code.PERMISSION_DENIED, "this API key lacks the 'score' permission")
        return key.tenant

    def _trip_page(self, request: pb.ScoreRouteRequest) -> str:
        path = convert.parse_route(request.route, self._max_points)
        trip = gather.trip_of(self._score, self._cell_risks, request, path, request.reference or "route")
        return trip_map.to_html(trip)

    def _cell_risks(self, cells: list[str], times: list[int]) -> list[pb.GetCellRiskResponse]:
        answers = []
        for cell, at in zip(cells, times, strict=True):
            request = pb.GetCellRiskRequest(cell=cell)
            request.time.FromSeconds(at)
            answers.append(self._cell(request))
        return answers


class _Metadata:
    """What :meth:`AuthInterceptor.presented_key` reads of a gRPC call, from an HTTP header."""

    def __init__(self, authorization: str) -> None:
        self.invocation_metadata = [("authorization", authorization)]


async def logged(method: str, work: Callable[[], Any]) -> Any:
    """One ``rpc`` line for a page call, like the API's (never its content)."""
    start, code = time.perf_counter(), "OK"
    try:
        return await work()
    except ConnectError as exc:
        code = grpc_name(exc.code)
        raise
    except Exception as exc:
        error = from_exception(exc, method)
        code = grpc_name(error.code)
        raise error from None
    finally:
        duration_ms = round((time.perf_counter() - start) * 1000, 3)
        log.info(
            "rpc",
            extra={"service": "ui", "method": method, "code": code, "transport": "page", "duration_ms": duration_ms},
        )
