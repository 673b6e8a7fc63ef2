"""One place that turns domain errors into gRPC status codes.

A caller's mistake is ``INVALID_ARGUMENT`` with a ``google.rpc.BadRequest``
naming each field; nothing a caller sends may surface as ``UNKNOWN`` or
``INTERNAL``. Unexpected failures are logged (without request data) and
reported as ``INTERNAL``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from geodata.errors import InputError
from service.grpc.limits import DeadlineExceededError
from service.store.serving import NotReadyError
from service.usecases.errors import NotFoundError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def bad_request_status(error: InputError) -> status_pb2.Status:
    """A ``google.rpc.Status`` carrying a ``BadRequest`` with every field violation."""
    details = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(details)
    return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(error)[:1000], details=[packed])


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
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


def grpc_errors(method: F) -> F:
    """Decorate a servicer method: domain errors become their status codes."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except (InputError, NotFoundError, NotReadyError, DeadlineExceededError) as exc:
            context.abort_with_status(rpc_status.to_status(status_for(exc)))
        except Exception:
            log.exception("unhandled error", extra={"rpc": method.__name__})
            context.abort_with_status(rpc_status.to_status(status_for(RuntimeError())))

    return cast(F, wrapper)  # same signature as ``method``: functools.wraps keeps it


def grpc_stream_errors(method: F) -> F:
    """:func:`grpc_errors` for a response-streaming method (a generator): errors raised while
    the stream runs, after some responses went out, end it with their status code."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except (InputError, NotFoundError, NotReadyError, DeadlineExceededError) as exc:
            context.abort_with_status(rpc_status.to_status(status_for(exc)))
        except Exception:
            if not context.is_active():  # the client went away mid-stream: nothing to report
                return
            log.exception("unhandled error", extra={"rpc": method.__name__})
            context.abort_with_status(rpc_status.to_status(status_for(RuntimeError())))

    return cast(F, wrapper)  # same signature as ``method``: functools.wraps keeps it
