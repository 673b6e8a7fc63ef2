"""The server's one interceptor: metrics, the log line, authentication and limits fused.

It does, call for call, what the chain ``MetricsInterceptor → LoggingInterceptor →
AuthInterceptor → LimitsInterceptor`` does (:mod:`~service.grpc.metrics`,
:mod:`~service.grpc.request_log`, :mod:`~service.grpc.auth`, :mod:`~service.grpc.limits`: the
rules live there), with the work that depends on the method alone done once per method instead
of once per call: the short name, the service, the permission, the metric series, the handlers
that refuse an unauthenticated or unauthorised call. A unary call then costs one small object
(its tenant and its concurrency slot) and one handler tuple; the chain built four closures, four
handlers and a ``weakref.finalize`` per call.

Streams (MonitorTrip, reflection) and the other kinds are rare and long: they go through the
chain itself, unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from service.grpc import metrics, request_log
from service.grpc.auth import TENANT, AuthInterceptor, permission_for
from service.grpc.limits import DEADLINE, LimitsInterceptor, Slots
from service.grpc.metrics import Behaviour, MetricsInterceptor, rpc_code, short_method
from service.grpc.request_log import _CALL, REQUEST_ID_KEY, CallInfo, LoggingInterceptor, request_id_from

Continuation = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None]


class MethodInfo:
    """What a method's calls share: names, permission, metric series (here and in
    :mod:`service.grpc.aio_calls`)."""

    def __init__(self, full_method: str) -> None:
        self.service, _, _ = full_method.lstrip("/").rpartition("/")
        self.method = short_method(full_method)
        self.needed = permission_for(full_method)
        self.duration = metrics.RPC_DURATION.labels(self.method)
        self.counters: dict[str, Any] = {}

    def count(self, code: str) -> None:
        counter = self.counters.get(code)
        if counter is None:
            counter = self.counters[code] = metrics.RPCS.labels(self.method, code)
        counter.inc()


class _Method(MethodInfo):
    """What a unary method's calls share on the thread server: :class:`MethodInfo` and the refusals."""

    def __init__(self, full_method: str, owner: CallInterceptor) -> None:
        super().__init__(full_method)
        self.owner = owner
        # the refusals of the authentication layer: handlers without (de)serialisers, as it returns them
        self.unauthenticated = self._refusal(
            grpc.StatusCode.UNAUTHENTICATED, "a valid API key is required (authorization: Bearer)"
        )
        self.denied = self._refusal(
            grpc.StatusCode.PERMISSION_DENIED, f"this API key lacks the {self.needed!r} permission"
        )

    def _refusal(self, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
        def abort(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, message)

        call = _Call(self, abort, None, None, False)  # holds nothing per call: shared by every refused call
        return grpc.unary_unary_rpc_method_handler(call)


class _Call:
    """One unary call's behaviour: the log context, the tenant, the limits, the handler, then the
    log line and the metrics, in the order the chain nests them. Holds the call's concurrency slot
    until the call ran, or until gRPC drops the handler of a call cancelled before a thread took it."""

    __slots__ = ("_behaviour", "_limited", "_method", "_slots", "_tenant")

    def __init__(
        self,
        method: _Method,
        behaviour: Behaviour,
        tenant: str | None,
        slots: Slots | None,
        limited: bool,
    ) -> None:
        self._method = method
        self._behaviour = behaviour
        self._tenant = tenant
        self._slots = slots
        self._limited = limited

    def __del__(self) -> None:
        self._release()

    def _release(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()

    def __call__(self, request: Any, context: grpc.ServicerContext) -> Any:
        method = self._method
        start = time.perf_counter()
        call = CallInfo(request_id_from(context.invocation_metadata()), method.method, tenant_var=TENANT)
        token = _CALL.set(call)
        raised: BaseException | None = None
        try:
            tenant = self._tenant
            if tenant is None:
                return self._run(request, context)
            tenant_token = TENANT.set(tenant)
            call.tenant = tenant  # request_log.set_tenant
            try:
                return self._run(request, context)
            finally:
                TENANT.reset(tenant_token)
        except BaseException as exc:
            raised = exc
            raise
        finally:
            finish(context, call, method, start, raised, token)

    def _run(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._limited:
            return self._behaviour(request, context)
        try:
            limits = self._method.owner.limits
            limited = limits.rate_refusal(TENANT.get())
            if limited is not None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, limited)
            token = DEADLINE.set(time.monotonic() + limits.budget(context.time_remaining()))
            try:
                return self._behaviour(request, context)
            finally:
                DEADLINE.reset(token)
        finally:
            self._release()


def finish(
    context: grpc.ServicerContext,
    call: CallInfo,
    method: MethodInfo,
    start: float,
    raised: BaseException | None,
    token: contextvars.Token[CallInfo | None],
) -> None:
    """The request id as trailing metadata, the log line, then the metrics (as the chain ends a call)."""
    code = rpc_code(context, raised)
    try:
        try:
            try:
                request_log._add_trailing(context, REQUEST_ID_KEY, call.request_id)
            finally:
                log = request_log.log
                if log.isEnabledFor(logging.INFO):  # what log.info checks first: no fields built for nothing
                    duration_ms = round((time.perf_counter() - start) * 1000, 3)
                    fields = {
                        "service": method.service,
                        "method": call.method,
                        "code": code,
                        "duration_ms": duration_ms,
                    }
                    log.info("rpc", extra={**fields, "request_id": call.request_id, "tenant": call.current_tenant()})
        finally:
            _CALL.reset(token)
    except BaseException as exc:  # the log line failed: the metrics see that exception, as in the chain
        method.duration.observe(time.perf_counter() - start)
        method.count(rpc_code(context, exc))
        raise
    method.duration.observe(time.perf_counter() - start)
    method.count(code)


class CallInterceptor(grpc.ServerInterceptor):
    """Metrics, request log, authentication and limits as one interceptor (see the module doc)."""

    def __init__(self, auth: AuthInterceptor, limits: LimitsInterceptor) -> None:
        self.auth = auth
        self.limits = limits
        self._metrics = MetricsInterceptor()
        self._logging = LoggingInterceptor(tenant_var=TENANT)
        self._methods: dict[str, _Method] = {}

    def _method(self, full_method: str) -> _Method:
        found = self._methods.get(full_method)
        if found is None:  # only methods with a handler get here: the table stays as small as the API
            found = self._methods[full_method] = _Method(full_method, self)
        return found

    def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        if handler.request_streaming or handler.response_streaming or handler.unary_unary is None:
            return self._chain(handler, details)
        method = self._method(details.method)
        needed = method.needed
        if needed is None:  # an open method (health, reflection): observed and logged only
            return handler._replace(unary_unary=_Call(method, handler.unary_unary, None, None, False))
        tenant = None
        if self.auth._keys:
            key = self.auth.presented_key(details)
            if key is None:
                return method.unauthenticated
            if needed not in key.permissions:
                return method.denied
            tenant = key.tenant
        slots = self.limits._slots
        if slots is not None and not slots.try_acquire():  # admitted as the call arrives
            return handler._replace(unary_unary=_Call(method, self.limits._busy, tenant, None, False))
        return handler._replace(unary_unary=_Call(method, handler.unary_unary, tenant, slots, True))

    def _chain(self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails) -> Any:
        """Streams and other kinds: through the four interceptors, in the server's order."""

        def found(_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return handler

        def limits(d: grpc.HandlerCallDetails) -> Any:
            return self.limits.intercept_service(found, d)

        def auth(d: grpc.HandlerCallDetails) -> Any:
            return self.auth.intercept_service(limits, d)

        def logging_(d: grpc.HandlerCallDetails) -> Any:
            return self._logging.intercept_service(auth, d)

        return self._metrics.intercept_service(logging_, details)
