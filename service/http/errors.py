"""Domain errors as Connect errors: the ``google.rpc.Status`` that :func:`service.grpc.errors.status_for`
gives a domain error, carried over as it is (code, message, ``google.rpc.BadRequest`` details).

Both transports derive their answer from that one status, so a bad request is the same
``INVALID_ARGUMENT`` with the same field violations over gRPC and over HTTP (400, ``invalid_argument``).
Unexpected failures are logged without request data and answered ``internal``.
"""

from __future__ import annotations

import logging

from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from google.rpc import code_pb2, error_details_pb2, status_pb2
from protobuf.wkt import Any as WireAny

from geodata.errors import InputError, InvalidRequestError, Violation
from service.grpc.errors import DOMAIN_ERRORS, bad_request_status, capped, status_for

log = logging.getLogger(__name__)

# gRPC's code names and Connect's differ in one spelling only
_GRPC_NAME = {Code.CANCELED: "CANCELLED"}


def grpc_name(code: Code) -> str:
    """The gRPC name of a Connect code (``invalid_argument`` → ``INVALID_ARGUMENT``): what the log
    line and the metrics say, so the two transports' series and lines read alike."""
    return _GRPC_NAME.get(code, code.name)


def connect_code(grpc_code: int) -> Code:
    """The Connect code of a ``google.rpc.Code`` number."""
    name = code_pb2.Code.Name(grpc_code) if grpc_code in code_pb2.Code.values() else "UNKNOWN"
    return Code.CANCELED if name == "CANCELLED" else Code[name]


def from_status(status: status_pb2.Status) -> ConnectError:
    """A ``google.rpc.Status`` as a Connect error; its details (a ``BadRequest``) travel as they are."""
    details = [ErrorDetail(WireAny(type_url=d.type_url, value=d.value)) for d in status.details]
    return ConnectError(connect_code(status.code), status.message, details)


def from_exception(exc: Exception, method: str) -> ConnectError:
    """What a handler's exception answers: Connect errors as raised, domain errors as their
    status, anything else ``internal`` (logged, as the gRPC side logs it)."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, DOMAIN_ERRORS):
        return from_status(status_for(exc))
    log.error("unhandled error", exc_info=exc, extra={"rpc": method})
    return from_status(status_for(RuntimeError()))


def invalid(field: str, description: str) -> ConnectError:
    """``invalid_argument`` naming one field, built as every other bad request is."""
    error: InputError = InvalidRequestError(Violation(field, capped(description)))
    return from_status(bad_request_status(error))


def violations(error: ConnectError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The field violations a Connect error carries (for tests and clients written in Python)."""
    found: list[error_details_pb2.BadRequest.FieldViolation] = []
    for detail in error.details:
        if detail.type_name == error_details_pb2.BadRequest.DESCRIPTOR.full_name:
            found.extend(error_details_pb2.BadRequest.FromString(detail.message_bytes).field_violations)
    return found
