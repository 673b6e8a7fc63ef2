"""One log line per gRPC call, and a request id and tenant on every log record of the call.

:class:`LoggingInterceptor` takes the caller's ``x-request-id`` metadata (or makes a uuid4 hex),
returns it as trailing metadata ``x-request-id`` (on errors too), keeps the call's request id and
tenant in a context variable while the handler runs, and at the end logs one INFO record
``rpc`` (logger ``service.grpc.request_log``) with ``service``, ``method``, ``code``, ``duration_ms``,
``request_id`` and ``tenant``: never the request or response, coordinates, routes or keys.

:class:`RequestContextFilter` (the server installs it through :func:`service.logs.configure`) adds
``request_id`` and ``tenant`` to every record logged during a call, from any logger.

The tenant is the one reported with :func:`set_tenant` during the call (the authentication layer
calls it once the key is known), else the value of the ``tenant_var`` context variable given to
the interceptor, else ``"-"``.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from service.grpc.metrics import Behaviour, rpc_code, short_method, stream_code, wrap_stream, wrap_unary

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
# a caller's id is echoed into logs: only plain tokens, else a fresh one replaces it
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class CallInfo:
    """What every log record of one call is tagged with."""

    request_id: str
    method: str
    tenant: str = "-"
    tenant_var: contextvars.ContextVar[str] | None = field(default=None, repr=False)

    def current_tenant(self) -> str:
        if self.tenant != "-":
            return self.tenant
        return self.tenant_var.get() if self.tenant_var is not None else "-"


_CALL: contextvars.ContextVar[CallInfo | None] = contextvars.ContextVar("routerisk_call", default=None)


def current_call() -> CallInfo | None:
    """The call being handled in this context, if any."""
    return _CALL.get()


def current_request_id() -> str | None:
    call = _CALL.get()
    return call.request_id if call is not None else None


def set_tenant(tenant: str) -> None:
    """Record the caller's tenant on the current call (no-op outside a call)."""
    call = _CALL.get()
    if call is not None:
        call.tenant = tenant


def iterate_with(var: contextvars.ContextVar[Any], value: Any, responses: Iterable[Any]) -> Iterator[Any]:
    """Yield from a stream handler's responses with ``var`` set only while each one is computed.

    Nothing stays set while the stream is suspended, so a stream that grpc abandons (its client
    gone) and that is closed later, from another thread, leaks no value into a pooled thread."""
    iterator = iter(responses)
    while True:
        token = var.set(value)
        try:
            response = next(iterator)
        except StopIteration:
            return
        finally:
            var.reset(token)
        yield response


def request_id_from(metadata: Any) -> str:
    """The caller's ``x-request-id`` when it is a plain token (≤128 of ``A-Za-z0-9._:-``), else a new uuid4 hex."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value
    return new_request_id()


def new_request_id() -> str:
    """A uuid4 in hex (what ``uuid.uuid4().hex`` gives) without building a ``UUID`` object."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``tenant`` to records logged during a call (records outside calls are unchanged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        call = _CALL.get()
        if call is not None:
            if not hasattr(record, "request_id"):
                record.request_id = call.request_id
            if not hasattr(record, "tenant"):
                record.tenant = call.current_tenant()
        return True


def _finish(context: grpc.ServicerContext, call: CallInfo, service: str, start: float, code: str, **more: Any) -> None:
    """Return the request id as trailing metadata and log the call's one line (never its content)."""
    try:
        _add_trailing(context, REQUEST_ID_KEY, call.request_id)
    finally:
        duration_ms = round((time.perf_counter() - start) * 1000, 3)
        fields = {"service": service, "method": call.method, "code": code, "duration_ms": duration_ms, **more}
        log.info("rpc", extra={**fields, "request_id": call.request_id, "tenant": call.current_tenant()})


def _add_trailing(context: grpc.ServicerContext, key: str, value: str) -> None:
    """Append to the trailing metadata already set (``abort_with_status`` puts the status details there)."""
    try:
        existing = tuple(context.trailing_metadata() or ())
    except (AttributeError, NotImplementedError):
        existing = ()
    context.set_trailing_metadata((*(item for item in existing if item[0] != key), (key, value)))


class LoggingInterceptor(grpc.ServerInterceptor):
    """Request ids, per-call log context and one INFO line per unary-unary call, and per
    stream-stream call when it ends (with ``messages``, the responses sent; never their content).

    ``tenant_var``: the authentication layer's tenant context variable (e.g. ``service.grpc.auth.TENANT``),
    read while the handler runs when :func:`set_tenant` was not called. Place this interceptor
    before the authentication interceptor so rejected calls are logged too.
    """

    def __init__(self, tenant_var: contextvars.ContextVar[str] | None = None) -> None:
        self._tenant_var = tenant_var

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        full_method = handler_call_details.method
        service, _, _ = full_method.lstrip("/").rpartition("/")
        method = short_method(full_method)
        tenant_var = self._tenant_var

        def wrap(behaviour: Behaviour) -> Behaviour:
            def logged(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                call = CallInfo(request_id_from(context.invocation_metadata()), method, tenant_var=tenant_var)
                token = _CALL.set(call)
                raised: BaseException | None = None
                try:
                    return behaviour(request, context)
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    try:
                        _finish(context, call, service, start, code=rpc_code(context, raised))
                    finally:
                        _CALL.reset(token)

            return logged

        def wrap_streams(behaviour: Behaviour) -> Behaviour:
            def logged_stream(requests: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                call = CallInfo(request_id_from(context.invocation_metadata()), method, tenant_var=tenant_var)
                raised: BaseException | None = None
                sent = 0
                try:
                    for response in iterate_with(_CALL, call, behaviour(requests, context)):
                        sent += 1
                        yield response
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    _finish(context, call, service, start, code=stream_code(context, raised), messages=sent)

            return logged_stream

        return wrap_stream(wrap_unary(continuation(handler_call_details), wrap), wrap_streams)
