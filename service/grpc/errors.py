"""One place that turns domain errors into gRPC status codes.

A caller's mistake is ``INVALID_ARGUMENT`` with a ``google.rpc.BadRequest``
naming each field; nothing a caller sends may surface as ``UNKNOWN`` or
``INTERNAL``. Unexpected failures are logged (without request data) and
reported as ``INTERNAL``.
"""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from geodata.errors import InputError
from service.grpc.limits import DeadlineExceededError
from service.store.serving import NotReadyError
from service.usecases.errors import ConflictError, NotFoundError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# what a BadRequest repeats of a caller's input: never megabytes back. The status travels in the
# trailing metadata (base64), which clients refuse past 8 KiB by default: the whole stays under it.
MAX_DETAIL_CHARS = 200  # of one field path or description
MAX_DETAILS_TOTAL = 4000  # of all the listed field paths and descriptions together
MAX_VIOLATIONS = 100  # listed at most; the rest are counted
MAX_MESSAGE_CHARS = 500

# the errors with a status of their own (status_for); anything else is INTERNAL, logged
DOMAIN_ERRORS = (InputError, NotFoundError, NotReadyError, DeadlineExceededError, ConflictError)


def capped(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def bad_request_status(error: InputError) -> status_pb2.Status:
    """A ``google.rpc.Status`` carrying a ``BadRequest`` with the field violations: each field path
    and description cut to :data:`MAX_DETAIL_CHARS` (with its length said), as many as fit in
    :data:`MAX_DETAILS_TOTAL` characters (at most :data:`MAX_VIOLATIONS`, at least one), the last
    listed saying how many more there were."""
    violations: list[error_details_pb2.BadRequest.FieldViolation] = []
    total = 0
    for v in error.violations:
        field, description = capped(v.field), capped(v.description)
        total += len(field) + len(description)
        if violations and (total > MAX_DETAILS_TOTAL or len(violations) == MAX_VIOLATIONS):
            break
        violations.append(error_details_pb2.BadRequest.FieldViolation(field=field, description=description))
    if len(error.violations) > len(violations):
        violations[-1].description += f" (and {len(error.violations) - len(violations)} more violations not listed)"
    details = error_details_pb2.BadRequest(field_violations=violations)
    packed = any_pb2.Any()
    packed.Pack(details)
    message = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=capped(message, MAX_MESSAGE_CHARS), details=[packed]
    )


def status_for(exc: BaseException) -> status_pb2.Status:
    """The status a domain error maps to."""
    if isinstance(exc, InputError):
        return bad_request_status(exc)
    if isinstance(exc, NotFoundError):
        return status_pb2.Status(code=code_pb2.NOT_FOUND, message=str(exc))
    if isinstance(exc, NotReadyError):
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc))
    if isinstance(exc, DeadlineExceededError):
        return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message=str(exc))
    if isinstance(exc, ConflictError):
        return status_pb2.Status(code=code_pb2.ABORTED, message=str(exc))
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def _fail(context: grpc.ServicerContext | grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    """End the call with ``status`` (its details in the trailing metadata) without raising.

    ``context.abort_with_status`` raises an exception that grpc keeps on the call's state while
    its traceback holds the handler's frames, the request among their locals: a reference cycle
    that keeps every failed request (a 50 MB route, say) alive until the garbage collector
    happens to run. Setting the status and returning frees the request with the call.
    """
    grpc_status = rpc_status.to_status(status)
    context.set_trailing_metadata(grpc_status.trailing_metadata)
    context.set_code(grpc_status.code)
    context.set_details(grpc_status.details)


@functools.cache
def _empty_response(method: Callable[..., Any]) -> Any:
    """An empty message of the type ``method`` answers (grpc sends it with the error code set;
    a client sees only the error), or None when its annotation does not say."""
    try:
        answer = typing.get_type_hints(method).get("return")
    except Exception:  # an annotation that does not resolve: abort as before
        return None
    # a union (ScoreRoute's wire handler answers ``bytes | ScoreRouteResponse``): its message type
    for kind in typing.get_args(answer) or (answer,):
        if isinstance(kind, type) and issubclass(kind, Message):
            return kind()
    return None


def grpc_errors(method: F) -> F:
    """Decorate a servicer method: domain errors become their status codes."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except DOMAIN_ERRORS as exc:
            status = status_for(exc)
        except Exception:
            status = _unexpected(method)
        del request  # nothing of the request outlives the call
        empty = _empty_response(method)
        if empty is None:  # every servicer method is annotated (tests/service/test_bounded_input.py)
            context.abort_with_status(rpc_status.to_status(status))
        _fail(context, status)
        return empty

    return cast(F, wrapper)  # same signature as ``method``: functools.wraps keeps it


def grpc_stream_errors(method: F) -> F:
    """:func:`grpc_errors` for a response-streaming method (a generator): errors raised while
    the stream runs, after some responses went out, end it with their status code."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except Exception as exc:
            _end_stream(context, exc, lambda: not context.is_active(), method)

    return cast(F, wrapper)  # same signature as ``method``: functools.wraps keeps it


def grpc_async_stream_errors(method: F) -> F:
    """:func:`grpc_stream_errors` for an async generator (the asyncio server's streams)."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in method(self, request, context):
                yield response
        except Exception as exc:
            _end_stream(context, exc, context.done, method)

    return cast(F, wrapper)  # same signature as ``method``: functools.wraps keeps it


def _end_stream(
    context: grpc.ServicerContext | grpc.aio.ServicerContext,
    exc: Exception,
    client_gone: Callable[[], bool],
    method: Callable[..., Any],
) -> None:
    """End a stream that raised ``exc`` with its status (call from the ``except`` block); nothing
    to report for an unexpected error when the client went away mid-stream."""
    if isinstance(exc, DOMAIN_ERRORS):
        _fail(context, status_for(exc))
    elif not client_gone():
        _fail(context, _unexpected(method))


def _unexpected(method: Callable[..., Any]) -> status_pb2.Status:
    """INTERNAL for an exception no caller's mistake explains, logged (without request data)."""
    log.exception("unhandled error", extra={"rpc": method.__name__})
    return status_for(RuntimeError())
