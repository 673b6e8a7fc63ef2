"""What every HTTP call goes through, the rules of the gRPC server's interceptor applied to it:
a request id, one log line and the metrics (:class:`CallLog`), the API key and its permission
(:class:`Authenticate`), then the concurrency slot, the tenant's rate and the deadline around the
handler, which runs on a thread of its own (:class:`Runner`).

The rules themselves are not restated: keys are checked by :class:`service.grpc.auth.AuthInterceptor`,
permissions come from :func:`service.grpc.auth.permission_for`, and the slots and token buckets are
those of the gRPC server's :class:`service.grpc.limits.LimitsInterceptor`, shared, so a tenant's
rate and the server's concurrency cap count calls over both transports together.

Authentication runs before the body is read (a Connect metadata interceptor), so a caller without
a key learns nothing about its request; the slot is taken once the body is in, so a slow body holds
no slot (and, on the event loop, no thread). The handler's thread is given back when the handler
returns, even when the caller stopped waiting (a deadline, a disconnect): the slot stays taken
until then, as on the gRPC side, so the cap bounds the work actually running.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from prometheus_client import Counter, Histogram

from service.grpc import request_log
from service.grpc.auth import TENANT, AuthInterceptor, permission_for
from service.grpc.limits import DEADLINE, CallSlots, LimitsInterceptor
from service.grpc.metrics import DURATION_BUCKETS
from service.grpc.request_log import _CALL, REQUEST_ID_KEY, CallInfo, request_id_from
from service.http.errors import from_exception, grpc_name

log = logging.getLogger(__name__)

T = TypeVar("T")

# the gRPC server's routerisk_rpcs_total / routerisk_rpc_duration_seconds, for the HTTP port, by transport
HTTP_RPCS = Counter(
    "routerisk_http_rpcs",
    "API calls handled on the HTTP port, by method, status code and transport (connect, grpc-web, grpc)",
    ["method", "code", "transport"],
)
HTTP_RPC_DURATION = Histogram(
    "routerisk_http_rpc_duration_seconds",
    "Time spent handling an API call on the HTTP port",
    ["method", "transport"],
    buckets=DURATION_BUCKETS,
)
UNAUTHENTICATED = "a valid API key is required (authorization: Bearer)"


def transport_of(content_type: str) -> str:
    """``connect`` (unary JSON or binary, and Connect streams), ``grpc-web`` or ``grpc``."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("application/grpc-web"):
        return "grpc-web"
    if kind.startswith("application/grpc"):
        return "grpc"
    return "connect"


def full_method(ctx: RequestContext[Any, Any]) -> str:
    """``/routerisk.v1.RouteRiskService/ScoreRoute``, as gRPC names the method."""
    return f"/{ctx.method.service_name}/{ctx.method.name}"


@dataclass
class _Started:
    call: CallInfo
    start: float
    transport: str
    token: contextvars.Token[CallInfo | None]


class CallLog:
    """Request id, the call's one ``rpc`` log line and its metrics, whatever the outcome: put first,
    it sees the refusals of authentication too. Never logs the request, the response or the key."""

    async def on_start(self, ctx: RequestContext[Any, Any]) -> _Started:
        headers = ctx.request_headers
        call = CallInfo(
            request_id_from([(REQUEST_ID_KEY, headers.get(REQUEST_ID_KEY, ""))]), ctx.method.name, tenant_var=TENANT
        )
        ctx.response_headers[REQUEST_ID_KEY] = call.request_id
        transport = transport_of(headers.get("content-type", ""))
        return _Started(call, time.perf_counter(), transport, _CALL.set(call))

    async def on_end(self, started: _Started, ctx: RequestContext[Any, Any], error: Exception | None) -> None:
        elapsed = time.perf_counter() - started.start
        code = "OK" if error is None else grpc_name(error.code if isinstance(error, ConnectError) else Code.UNKNOWN)
        call = started.call
        fields = {"service": ctx.method.service_name, "method": call.method, "code": code}
        log.info(
            "rpc",
            extra={
                **fields,
                "transport": started.transport,
                "duration_ms": round(elapsed * 1000, 3),
                "request_id": call.request_id,
                "tenant": call.current_tenant(),
            },
        )
        HTTP_RPCS.labels(call.method, code, started.transport).inc()
        HTTP_RPC_DURATION.labels(call.method, started.transport).observe(elapsed)
        _CALL.reset(started.token)


class Authenticate:
    """``authorization: Bearer <key>`` checked as the gRPC server checks it: ``unauthenticated``
    (HTTP 401) without a valid key, ``permission_denied`` (403) without the method's permission."""

    def __init__(self, auth: AuthInterceptor, enabled: bool) -> None:
        self._auth = auth
        self._enabled = enabled

    async def on_start(self, ctx: RequestContext[Any, Any]) -> contextvars.Token[str] | None:
        needed = permission_for(full_method(ctx))
        if not self._enabled or needed is None:
            return None
        header = ctx.request_headers.get("authorization", "")
        key = self._auth.presented_key(SimpleNamespace(invocation_metadata=[("authorization", header)]))
        if key is None:
            raise ConnectError(Code.UNAUTHENTICATED, UNAUTHENTICATED)
        if needed not in key.permissions:
            raise ConnectError(Code.PERMISSION_DENIED, f"this API key lacks the {needed!r} permission")
        request_log.set_tenant(key.tenant)
        return TENANT.set(key.tenant)

    async def on_end(
        self, token: contextvars.Token[str] | None, ctx: RequestContext[Any, Any], error: Exception | None
    ) -> None:
        if token is not None:
            TENANT.reset(token)


class Runner:
    """Runs handlers on a pool of threads under the shared limits: a slot of the server's cap
    (``resource_exhausted``, HTTP 429, when none is free), a token of the tenant's bucket, and
    the deadline (the caller's ``connect-timeout-ms``, capped by the server's) that long loops
    check. Handler errors become Connect errors (:func:`service.http.errors.from_exception`)."""

    def __init__(self, limits: LimitsInterceptor, slots: CallSlots, threads: int) -> None:
        self._limits = limits
        self._slots = slots  # the gRPC server's: one global and per-tenant cap for both transports
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="routerisk-http")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def run(self, handler: Callable[[], T], method: str, timeout_ms: float | None) -> T:
        """``handler`` on a thread under the limits; ``timeout_ms``: what remains of the caller's deadline."""
        limits, slots, tenant = self._limits, self._slots, TENANT.get()
        busy = slots.take(tenant)
        if busy is not None:
            raise ConnectError(Code.RESOURCE_EXHAUSTED, busy)
        try:
            limited = limits.rate_refusal(tenant)
            if limited is not None:
                raise ConnectError(Code.RESOURCE_EXHAUSTED, limited)
            deadline = time.monotonic() + limits.budget(None if timeout_ms is None else timeout_ms / 1000)
            future = self._pool.submit(contextvars.copy_context().run, _with_deadline, handler, deadline)
        except BaseException:
            slots.give_back(tenant)
            raise
        # given back when the handler ends, or when it is cancelled before it started
        future.add_done_callback(lambda _done: slots.give_back(tenant))
        return await _result(future, method)


def _with_deadline(handler: Callable[[], T], deadline: float) -> T:
    DEADLINE.set(deadline)  # in the copied context of this call only
    return handler()


async def _result(future: Future[T], method: str) -> T:
    try:
        return await asyncio.wrap_future(future)
    except Exception as exc:
        raise from_exception(exc, method) from None
