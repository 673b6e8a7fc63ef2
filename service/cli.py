"""The ``routerisk`` command line: serve, and score a route against a running server.

Data goes to stdout, messages to stderr; errors are one line and a non-zero exit:
1 unexpected, 2 bad input (route file, options), 3 server unreachable or not ready.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.table import Table

from geodata import route as routes
from geodata.errors import InputError
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli_layers import layers_app

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3

app = typer.Typer(help="Score freight truck routes for cargo-security risk.", no_args_is_help=True)
app.add_typer(layers_app, name="layers")


class Lane(StrEnum):
    standard = "standard"
    fast = "fast"


class CliError(Exception):
    """An error shown as one line on stderr with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@app.command()
def serve(
    address: Annotated[str | None, typer.Option(help="host:port to listen on [env ROUTERISK_ADDRESS]")] = None,
    layer_dir: Annotated[
        Path | None,
        typer.Option("--layer-dir", help="layer store whose active layer is served [env ROUTERISK_LAYER_DIR]"),
    ] = None,
) -> None:
    """Start the gRPC server (seed layers and in-process cache unless configured)."""
    from service.config import Settings
    from service.server import serve as run

    overrides = {k: v for k, v in (("address", address), ("layer_dir", layer_dir)) if v is not None}
    raise typer.Exit(run(Settings(**overrides)))


@app.command()
def score(
    route: Annotated[str | None, typer.Argument(help="GeoJSON or GPX file, or - for stdin")] = None,
    polyline: Annotated[str | None, typer.Option("--polyline", help="encoded polyline, precision 5")] = None,
    polyline6: Annotated[str | None, typer.Option("--polyline6", help="encoded polyline, precision 6")] = None,
    departure: Annotated[str | None, typer.Option(help="ISO 8601 departure time (default now)")] = None,
    speed_kmh: Annotated[float | None, typer.Option("--speed-kmh", help="average speed, km/h")] = None,
    lane: Annotated[Lane, typer.Option(help="commercial lane at the border")] = Lane.standard,
    server: Annotated[
        str, typer.Option(envvar="ROUTERISK_SERVER", help="routerisk server host:port")
    ] = "localhost:50051",
    as_json: Annotated[bool, typer.Option("--json", help="print the response as proto3 JSON only")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the server")] = 30.0,
) -> None:
    """Score one route and show why it is risky."""
    try:
        request = _request(route, polyline, polyline6, departure, speed_kmh, lane)
        response = _call(server, request, timeout)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.code) from None
    if as_json:
        sys.stdout.write(
            json_format.MessageToJson(response, indent=2, always_print_fields_with_no_presence=True) + "\n"
        )
    else:
        _print_report(response)


def _request(
    route: str | None,
    polyline: str | None,
    polyline6: str | None,
    departure: str | None,
    speed_kmh: float | None,
    lane: Lane,
) -> pb.ScoreRouteRequest:
    given = [x for x in (route, polyline, polyline6) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of ROUTE (file or -), --polyline or --polyline6", EXIT_BAD_INPUT)
    request = pb.ScoreRouteRequest(
        crossing_lane=pb.CROSSING_LANE_FAST if lane is Lane.fast else pb.CROSSING_LANE_STANDARD
    )
    if polyline is not None:
        request.route.encoded_polyline = polyline
    elif polyline6 is not None:
        request.route.encoded_polyline6 = polyline6
    else:
        path = _read_route(route or "-")
        request.route.line.points.extend(
            pb.LatLng(latitude=a, longitude=b) for a, b in zip(path.lat, path.lng, strict=True)
        )
    if departure is not None:
        request.departure_time.FromDatetime(_parse_departure(departure))
    if speed_kmh is not None:
        request.average_speed_kmh = speed_kmh
    return request


def _read_route(source: str) -> routes.RoutePath:
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


def _parse_departure(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--departure {text!r} is not an ISO 8601 time", EXIT_BAD_INPUT) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _call(server: str, request: pb.ScoreRouteRequest, timeout: float) -> pb.ScoreRouteResponse:
    with grpc.insecure_channel(server) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        try:
            return stub.ScoreRoute(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as exc:
            raise _cli_error(exc, server) from None


def _cli_error(exc: grpc.RpcError, server: str) -> CliError:
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return CliError(_violations(exc) or exc.details(), EXIT_BAD_INPUT)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CliError(f"server {server} is unreachable or not ready ({code.name}): {exc.details()}", EXIT_UNAVAILABLE)
    return CliError(f"server {server} answered {code.name}: {exc.details()}", 1)


def _violations(exc: grpc.RpcError) -> str:
    status = rpc_status.from_call(exc)
    if status is None:
        return ""
    parts = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            parts.extend(f"{v.field}: {v.description}" for v in bad.field_violations)
    return "invalid request: " + "; ".join(parts) if parts else ""


def _print_report(r: pb.ScoreRouteResponse) -> None:
    out = Console()
    level = pb.RiskLevel.Name(r.level).removeprefix("RISK_LEVEL_")
    summary = Table(show_header=False, box=None)
    summary.add_row("score", f"{r.score:.1f} / 100  ({level})")
    summary.add_row("expected incidents", f"{r.expected_incidents:.2e}  (probability {r.incident_probability:.4%})")
    summary.add_row("distance", f"{r.distance_km:.1f} km")
    summary.add_row("duration", _hours(r.duration.ToTimedelta().total_seconds()))
    summary.add_row("exposed", _hours(r.exposed_duration.ToTimedelta().total_seconds()))
    summary.add_row("layer", f"{r.layer_version}{'  (SYNTHETIC seed data)' if r.layer_synthetic else ''}")
    out.print(summary)
    if r.crossings:
        table = Table(title="Border crossings")
        for column in ("port", "crossing", "direction", "lane", "wait", "source"):
            table.add_column(column)
        for c in r.crossings:
            table.add_row(
                f"{c.port_name} ({c.port_number})",
                c.crossing_name,
                pb.CrossingDirection.Name(c.direction).removeprefix("CROSSING_DIRECTION_").lower(),
                pb.CrossingLane.Name(c.lane).removeprefix("CROSSING_LANE_").lower(),
                "CLOSED" if c.closed else f"{c.expected_wait_minutes:.0f} min",
                pb.WaitSource.Name(c.wait_source).removeprefix("WAIT_SOURCE_").lower(),
            )
        out.print(table)
    if r.segments:
        table = Table(title="Risky segments")
        for column in ("from km", "to km", "level", "share", "incidents", "enter (UTC)"):
            table.add_column(column)
        for s in sorted(r.segments, key=lambda s: s.expected_incidents, reverse=True)[:5]:
            table.add_row(
                f"{s.start_km:.0f}",
                f"{s.end_km:.0f}",
                pb.RiskLevel.Name(s.level).removeprefix("RISK_LEVEL_"),
                f"{s.share:.0%}",
                str(s.incident_count),
                s.enter_time.ToDatetime().strftime("%a %H:%M"),
            )
        out.print(table)
    if r.hotspots:
        table = Table(title="Top hotspots")
        for column in ("cell", "risk / truck-h", "incidents", "pass (UTC)"):
            table.add_column(column)
        for h in r.hotspots[:5]:
            table.add_row(h.cell, f"{h.risk:.2e}", str(h.incident_count), h.pass_time.ToDatetime().strftime("%a %H:%M"))
        out.print(table)


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def main() -> None:
    """Console-script entry point."""
    app()
