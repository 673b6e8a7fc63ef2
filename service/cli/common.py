"""What every ``routerisk`` command shares: exit codes, one-line errors, server calls,
route files, times and JSON output. Data goes to stdout, messages to stderr."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from geodata import route as routes
from geodata.errors import InputError
from routerisk.v1 import route_risk_service_pb2 as pb

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3

T = TypeVar("T")

Server = Annotated[str, typer.Option(envvar="ROUTERISK_SERVER", help="routerisk server host:port")]
Timeout = Annotated[float, typer.Option(help="seconds to wait for the server")]
AsJson = Annotated[bool, typer.Option("--json", help="print proto3 JSON only")]
DEFAULT_SERVER = "localhost:50051"


class Lane(StrEnum):
    standard = "standard"
    fast = "fast"


Departure = Annotated[
    str | None,
    typer.Option(help="ISO 8601 departure (default now); without a UTC offset: local time at the route's origin"),
]
SpeedKmh = Annotated[float | None, typer.Option("--speed-kmh", help="average speed, km/h")]
LaneOption = Annotated[Lane, typer.Option(help="commercial lane at the border")]


class CliError(Exception):
    """An error shown as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def reports_errors(command: Callable[..., T]) -> Callable[..., T]:
    """Turn a :class:`CliError` raised by a command into one stderr line and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.code) from None

    return wrapper


class _BearerAuth(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer <key>`` to every call (unary and streaming)."""

    def __init__(self, key: str) -> None:
        self._metadata = ("authorization", f"Bearer {key}")

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), self._metadata]
        return continuation(details._replace(metadata=metadata), request)

    def intercept_stream_stream(
        self, continuation: Callable[[Any, Any], Any], details: grpc.ClientCallDetails, request_iterator: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), self._metadata]
        return continuation(details._replace(metadata=metadata), request_iterator)


def _open_channel(server: str) -> grpc.Channel:
    """Plaintext, or TLS with ROUTERISK_TLS_CA (plus a client certificate for mutual TLS)."""
    ca = os.environ.get("ROUTERISK_TLS_CA")
    if not ca:
        return grpc.insecure_channel(server)
    cert, key = os.environ.get("ROUTERISK_TLS_CLIENT_CERT"), os.environ.get("ROUTERISK_TLS_CLIENT_KEY")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )
    return grpc.secure_channel(server, credentials)


@contextmanager
def channel_to(server: str) -> Iterator[grpc.Channel]:
    """A channel (API key from ROUTERISK_API_KEY, TLS from ROUTERISK_TLS_*) whose RPC errors
    become :class:`CliError` with the right exit code."""
    try:
        channel = _open_channel(server)
    except OSError as exc:
        raise CliError(f"TLS files: {exc}", EXIT_BAD_INPUT) from None
    with channel:
        key = os.environ.get("ROUTERISK_API_KEY")
        intercepted = grpc.intercept_channel(channel, _BearerAuth(key)) if key else channel
        try:
            yield intercepted
        except grpc.RpcError as exc:
            raise rpc_error(exc, server) from None


def rpc_error(exc: grpc.RpcError, server: str) -> CliError:
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return CliError(_option_hint(violations(exc) or exc.details() or ""), EXIT_BAD_INPUT)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CliError(f"server {server} is unreachable or not ready ({code.name}): {exc.details()}", EXIT_UNAVAILABLE)
    if code == grpc.StatusCode.NOT_FOUND:
        return CliError(exc.details() or "not found", EXIT_BAD_INPUT)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return CliError(f"{exc.details()} (set ROUTERISK_API_KEY)", EXIT_BAD_INPUT)
    return CliError(f"server {server} answered {code.name}: {exc.details()}")


# the server's hint for a polyline of the wrong precision names the request field; here, the option
_OPTION_HINTS = {
    "did you mean encoded_polyline6": "did you mean --polyline6",
    "did you mean encoded_polyline": "did you mean --polyline",
}


def _option_hint(text: str) -> str:
    for field, option in _OPTION_HINTS.items():
        if field in text:
            return text.replace(field, option)
    return text


def violations(exc: grpc.RpcError) -> str:
    """The BadRequest field violations of an INVALID_ARGUMENT, on one line."""
    status = rpc_status.from_call(exc)
    if status is None:
        return ""
    parts: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            parts.extend(f"{v.field}: {v.description}" for v in bad.field_violations)
    return "invalid request: " + "; ".join(parts) if parts else ""


# a spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A text cell for a CSV a spreadsheet may open: one that a spreadsheet would take for a formula
    gets a leading single quote (OWASP's advice), so that it shows as the text it is. Apply it to
    text cells only (ids, names, errors): numbers such as a negative longitude stay numbers."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def read_route(source: str) -> routes.RoutePath:
    """Decode a route file (GeoJSON or GPX) or stdin; file errors are the caller's."""
    try:
        if source == "-":
            text = sys.stdin.read()
            return routes.from_gpx(text) if text.lstrip().startswith("<") else routes.from_geojson(text)
        return routes.from_file(Path(source))
    except InputError as exc:
        raise CliError(str(exc) if source != "-" else f"stdin: {exc}", EXIT_BAD_INPUT) from None
    except OSError as exc:
        raise CliError(f"{source}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|min|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}


def parse_duration(text: str, option: str) -> timedelta:
    """'24h', '90m', '2d', '1h30m', '45min': a length of time."""
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise CliError(f"{option} {text!r} is not a duration like 24h, 90m or 2d", EXIT_BAD_INPUT)
    return timedelta(seconds=sum(float(n) * _UNIT_S[unit.lower()] for n, unit in parts))


def print_json(message: Message) -> None:
    """Exactly the message, in the canonical proto3 JSON mapping, on stdout."""
    sys.stdout.write(json_format.MessageToJson(message, indent=2, always_print_fields_with_no_presence=True) + "\n")


def request_options(speed_kmh: float | None, lane: Lane) -> pb.ScoreRouteRequest:
    """A ScoreRouteRequest with the trip options every scoring command shares (no route or
    departure yet: a departure is read at the route's origin, :func:`service.cli.times.set_departure`)."""
    request = pb.ScoreRouteRequest(
        crossing_lane=pb.CROSSING_LANE_FAST if lane is Lane.fast else pb.CROSSING_LANE_STANDARD
    )
    if speed_kmh is not None:
        request.average_speed_kmh = speed_kmh
    return request


def set_route(
    request: pb.ScoreRouteRequest,
    route: str | None,
    polyline: str | None,
    polyline6: str | None,
    *,
    strict: bool = False,
) -> routes.RoutePath | None:
    """Exactly one of a route file (or - for stdin), --polyline or --polyline6 into the request;
    the decoded path is returned (its origin is where a departure's local time is read). A
    polyline that does not decode goes to the server all the same (None: the server names the
    field, and counts the call), unless ``strict`` (a command that draws the path needs it)."""
    given = [x for x in (route, polyline, polyline6) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of ROUTE (file or -), --polyline or --polyline6", EXIT_BAD_INPUT)
    if polyline is None and polyline6 is None:
        path = read_route(route or "-")
        set_line(request, path)
        return path
    if polyline is not None:
        request.route.encoded_polyline = polyline
    else:
        request.route.encoded_polyline6 = polyline6 or ""
    precision, text = (5, polyline) if polyline is not None else (6, polyline6 or "")
    try:
        return routes.from_polyline(text, precision=precision, field=f"--polyline{'' if precision == 5 else '6'}")
    except InputError as exc:
        if strict:
            raise CliError(str(exc), EXIT_BAD_INPUT) from None
        return None


def set_line(request: pb.ScoreRouteRequest, path: routes.RoutePath) -> None:
    """Put a decoded route into the request as explicit points."""
    points = zip(path.lat.tolist(), path.lng.tolist(), strict=True)
    request.route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in points)
