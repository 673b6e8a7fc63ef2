"""``routerisk score``, ``compare`` and ``departures``: score routes against a running server and
show why they are risky (a table, or proto3 JSON with ``--json``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli import coverage_text
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    AsJson,
    CliError,
    Departure,
    Lane,
    LaneOption,
    Server,
    SpeedKmh,
    Timeout,
    channel_to,
    parse_duration,
    print_json,
    reports_errors,
    request_options,
    set_route,
)
from service.cli.times import end_zone, local_at, local_text, origin_zone, say, set_departure
from service.render.trip_map import hours_text

Polyline = Annotated[str | None, typer.Option("--polyline", help="encoded polyline, precision 5")]
Polyline6 = Annotated[str | None, typer.Option("--polyline6", help="encoded polyline, precision 6")]
MAX_ALTERNATIVES = 10


@reports_errors
def score(
    route: Annotated[str | None, typer.Argument(help="GeoJSON or GPX file, or - for stdin")] = None,
    polyline: Polyline = None,
    polyline6: Polyline6 = None,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 30.0,
) -> None:
    """Score one route and show why it is risky."""
    request = request_options(speed_kmh, lane)
    path = set_route(request, route, polyline, polyline6)
    say([set_departure(request, departure, path)])
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(request, timeout=timeout)
    coverage_text.warn_coverage(response)
    if as_json:
        print_json(response)
    else:
        _print_report(response, path)


@dataclass(frozen=True)
class Alternative:
    """One route of a comparison: its label (file name, or --name) and its path."""

    label: str
    path: RoutePath | None
    request: pb.ScoreRouteRequest


@reports_errors
def compare(
    routes_: Annotated[
        list[str] | None, typer.Argument(metavar="[ROUTE]...", help="GeoJSON or GPX files (2 to 10 routes in all)")
    ] = None,
    polyline: Annotated[list[str] | None, typer.Option("--polyline", help="an alternative as a polyline (5)")] = None,
    polyline6: Annotated[list[str] | None, typer.Option("--polyline6", help="an alternative as a polyline (6)")] = None,
    name: Annotated[
        list[str] | None, typer.Option("--name", help="label per alternative, in order (default: file name)")
    ] = None,
    risk_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of risk against time")] = 0.5,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 60.0,
) -> None:
    """Compare alternative routes for one load: ranked by risk and time, with the reason.

    Alternatives are numbered in order: files, then --polyline, then --polyline6."""
    alternatives = _alternatives(routes_ or [], polyline or [], polyline6 or [], name or [], speed_kmh, lane)
    say(set_departure(a.request, departure, a.path) for a in alternatives)
    request = pb.CompareRoutesRequest(risk_weight=risk_weight, alternatives=[a.request for a in alternatives])
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).CompareRoutes(request, timeout=timeout)
    for item in response.ranked:
        coverage_text.warn_coverage(item.result, item.result.reference)
    if as_json:
        print_json(response)
        return
    table = Table(title="Alternatives, best first")
    for column in ("rank", "#", "route", "score", "level", "coverage", "duration", "crossing", "wait"):
        # the label is how a dispatcher finds the route: wrapped, never cut to an ellipsis
        table.add_column(column, overflow="fold" if column == "route" else "ellipsis")
    for item in response.ranked:
        table.add_row(str(item.rank), str(item.index + 1), alternatives[item.index].label, *_result_cells(item.result))
    Console().print(table)
    print(f"recommended: {recommendation(response, [a.label for a in alternatives])}")


def _alternatives(
    files: list[str],
    polylines: list[str],
    polylines6: list[str],
    names: list[str],
    speed_kmh: float | None,
    lane: Lane,
) -> list[Alternative]:
    """The alternatives in order (files, --polyline, --polyline6), each with its label."""
    sources: list[tuple[str | None, str | None, str | None]] = [(f, None, None) for f in files]
    sources += [(None, p, None) for p in polylines] + [(None, None, p) for p in polylines6]
    if not 2 <= len(sources) <= MAX_ALTERNATIVES:
        raise CliError(f"compare takes 2 to {MAX_ALTERNATIVES} routes; got {len(sources)}", EXIT_BAD_INPUT)
    if names and len(names) != len(sources):
        raise CliError(f"--name given {len(names)} time(s) for {len(sources)} routes: one per route", EXIT_BAD_INPUT)
    out = []
    for i, (file, line, line6) in enumerate(sources):
        request = request_options(speed_kmh, lane)
        path = set_route(request, file, line, line6)
        kind = "polyline" if line is not None else "polyline6"
        label = names[i] if names else (Path(file).name if file is not None else f"{kind} {i + 1}")
        request.reference = label
        out.append(Alternative(label, path, request))
    return out


def recommendation(response: pb.CompareRoutesResponse, labels: list[str]) -> str:
    """The server's reason with the recommended route named as in the table: its number and its
    label (the server knows only positions: "alternative 3")."""
    best = response.recommended_index
    named = f"alternative {best + 1} ({labels[best]})"
    reason, found = re.subn(rf"^alternative {best + 1}\b", named, response.reason)
    return reason if found else f"{named}: {reason}"


@reports_errors
def departures(
    route: Annotated[str | None, typer.Argument(help="GeoJSON or GPX file, or - for stdin")] = None,
    polyline: Polyline = None,
    polyline6: Polyline6 = None,
    window: Annotated[str, typer.Option(help="how long the truck may wait to leave: 24h, 90m, 2d")] = "24h",
    step: Annotated[str, typer.Option(help="time between candidate departures (at least 15m)")] = "1h",
    risk_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of risk against time")] = 0.5,
    departure: Annotated[
        str | None,
        typer.Option(help="ISO 8601 start of the window (default now); without an offset: local at the origin"),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="departures to show, best first")] = 10,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 60.0,
) -> None:
    """Rank departure times in a window by risk and total duration (border wait at arrival included).

    Departures are shown in the origin's local time, arrivals in the destination's."""
    trip = request_options(speed_kmh, lane)
    path = set_route(trip, route, polyline, polyline6)
    say([set_departure(trip, departure, path)])
    request = pb.SuggestDeparturesRequest(trip=trip, risk_weight=risk_weight)
    request.window.FromTimedelta(parse_duration(window, "--window"))
    request.step.FromTimedelta(parse_duration(step, "--step"))
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).SuggestDepartures(request, timeout=timeout)
    if response.departures:
        coverage_text.warn_coverage(response.departures[0].result)
    if as_json:
        print_json(response)
        return
    start, end = origin_zone(path), end_zone(path)
    zones = ", ".join(dict.fromkeys(z.key for z in (start, end) if z is not None)) or "UTC"
    table = Table(title=f"Departures, best first ({len(response.departures)} in the window; times {zones})")
    for column in (
        "rank",
        "depart (origin)",
        "arrive (destination)",
        "score",
        "level",
        "coverage",
        "duration",
        "crossing",
        "wait",
    ):
        table.add_column(column)
    for item in response.departures[:top]:
        r = item.result
        depart, arrive = local_text(r.departure_time, start), local_text(r.arrival_time, end)
        table.add_row(str(item.rank), depart, arrive, *_result_cells(r))
    Console().print(table)
    print(f"recommended: {response.reason}")


def _result_cells(r: pb.ScoreRouteResponse) -> list[str]:
    """score, level, coverage, duration, crossing and wait of one scored trip, as table cells."""
    crossing = r.crossings[0] if r.crossings else None
    return [
        coverage_text.score_cell(r),
        coverage_text.level_text(r),
        coverage_text.coverage_cell(r),
        hours_text(r.duration.ToTimedelta().total_seconds()),
        f"{crossing.port_name} ({crossing.crossing_name})" if crossing else "-",
        coverage_text.wait_text(crossing) if crossing else "-",
    ]


def _print_report(r: pb.ScoreRouteResponse, path: RoutePath | None) -> None:
    """The summary, crossings, riskiest segments and hotspots; each time in the local time of
    the place it refers to (origin, destination, port, segment start, hotspot)."""
    out = Console()
    level = coverage_text.level_text(r)
    summary = Table(show_header=False, box=None)
    if coverage_text.not_covered(r):
        summary.add_row("score", f"n/a  ({level}: the route is mostly outside the layer's data)")
    else:
        summary.add_row("score", f"{r.score:.1f} / 100  ({level})")
    summary.add_row("coverage", f"{coverage_text.coverage_cell(r)} of the route inside the layer's data")
    summary.add_row("expected incidents", f"{r.expected_incidents:.2e}  (probability {r.incident_probability:.4%})")
    summary.add_row("departure", f"{local_text(r.departure_time, origin_zone(path))}  (origin)")
    summary.add_row("arrival", f"{local_text(r.arrival_time, end_zone(path))}  (destination)")
    summary.add_row("distance", f"{r.distance_km:.1f} km")
    summary.add_row("duration", hours_text(r.duration.ToTimedelta().total_seconds()))
    summary.add_row("exposed", hours_text(r.exposed_duration.ToTimedelta().total_seconds()))
    summary.add_row("layer", f"{r.layer_version}{'  (SYNTHETIC seed data)' if r.layer_synthetic else ''}")
    out.print(summary)
    if r.crossings:
        table = Table(title="Border crossings")
        for column in ("port", "crossing", "direction", "lane", "arrive", "wait", "source"):
            table.add_column(column)
        for c in r.crossings:
            table.add_row(
                f"{c.port_name} ({c.port_number})",
                c.crossing_name,
                pb.CrossingDirection.Name(c.direction).removeprefix("CROSSING_DIRECTION_").lower(),
                pb.CrossingLane.Name(c.lane).removeprefix("CROSSING_LANE_").lower(),
                local_at(c.arrival_time, c.location.latitude, c.location.longitude),
                coverage_text.wait_text(c),
                pb.WaitSource.Name(c.wait_source).removeprefix("WAIT_SOURCE_").lower(),
            )
        out.print(table)
    if r.segments:
        table = Table(title="Risky segments")
        for column in ("from km", "to km", "level", "share", "incidents", "enter (local)"):
            table.add_column(column)
        for s in sorted(r.segments, key=lambda s: s.expected_incidents, reverse=True)[:5]:
            table.add_row(
                f"{s.start_km:.0f}",
                f"{s.end_km:.0f}",
                pb.RiskLevel.Name(s.level).removeprefix("RISK_LEVEL_"),
                f"{s.share:.0%}",
                str(s.incident_count),
                local_at(s.enter_time, s.start.latitude, s.start.longitude),
            )
        out.print(table)
    if r.hotspots:
        table = Table(title="Top hotspots")
        for column in ("cell", "risk / truck-h", "incidents", "pass (local)"):
            table.add_column(column)
        for h in r.hotspots[:5]:
            passing = local_at(h.pass_time, h.center.latitude, h.center.longitude)
            table.add_row(h.cell, f"{h.risk:.2e}", str(h.incident_count), passing)
        out.print(table)
