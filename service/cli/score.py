"""``routerisk score``, ``compare`` and ``departures``: score routes against a running server and
show why they are risky (a table, or proto3 JSON with ``--json``)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from geodata.timezones import zone_at
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
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
    read_route,
    reports_errors,
    request_options,
    set_line,
)
from service.render.trip_map import hours_text


@reports_errors
def score(
    route: Annotated[str | None, typer.Argument(help="GeoJSON or GPX file, or - for stdin")] = None,
    polyline: Annotated[str | None, typer.Option("--polyline", help="encoded polyline, precision 5")] = None,
    polyline6: Annotated[str | None, typer.Option("--polyline6", help="encoded polyline, precision 6")] = None,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 30.0,
) -> None:
    """Score one route and show why it is risky."""
    given = [x for x in (route, polyline, polyline6) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of ROUTE (file or -), --polyline or --polyline6", EXIT_BAD_INPUT)
    request = request_options(departure, speed_kmh, lane)
    if polyline is not None:
        request.route.encoded_polyline = polyline
    elif polyline6 is not None:
        request.route.encoded_polyline6 = polyline6
    else:
        set_line(request, read_route(route or "-"))
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(request, timeout=timeout)
    if as_json:
        print_json(response)
    else:
        _print_report(response)


@reports_errors
def compare(
    routes_: Annotated[list[str], typer.Argument(metavar="ROUTE...", help="2 to 10 GeoJSON or GPX files")],
    risk_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of risk against time")] = 0.5,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 60.0,
) -> None:
    """Compare alternative routes for one load: ranked by risk and time, with the reason."""
    request = pb.CompareRoutesRequest(risk_weight=risk_weight)
    for source in routes_:
        alternative = request_options(departure, speed_kmh, lane)
        set_line(alternative, read_route(source))
        alternative.reference = Path(source).name
        request.alternatives.append(alternative)
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).CompareRoutes(request, timeout=timeout)
    if as_json:
        print_json(response)
        return
    table = Table(title="Alternatives, best first")
    for column in ("rank", "route", "score", "level", "duration", "crossing", "wait"):
        table.add_column(column)
    for item in response.ranked:
        r = item.result
        table.add_row(str(item.rank), r.reference, *_result_cells(r))
    Console().print(table)
    print(f"recommended: {response.reason}")


@reports_errors
def departures(
    route: Annotated[str, typer.Argument(help="GeoJSON or GPX file, or - for stdin")],
    window: Annotated[str, typer.Option(help="how long the truck may wait to leave: 24h, 90m, 2d")] = "24h",
    step: Annotated[str, typer.Option(help="time between candidate departures (at least 15m)")] = "1h",
    risk_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="weight of risk against time")] = 0.5,
    departure: Annotated[str | None, typer.Option(help="ISO 8601 start of the window (default now)")] = None,
    top: Annotated[int, typer.Option(min=1, help="departures to show, best first")] = 10,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 60.0,
) -> None:
    """Rank departure times in a window by risk and total duration (border wait at arrival included)."""
    trip = request_options(departure, speed_kmh, lane)
    path = read_route(route)
    set_line(trip, path)
    local = ZoneInfo(zone_at(float(path.lat[0]), float(path.lng[0])))
    request = pb.SuggestDeparturesRequest(trip=trip, risk_weight=risk_weight)
    request.window.FromTimedelta(parse_duration(window, "--window"))
    request.step.FromTimedelta(parse_duration(step, "--step"))
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).SuggestDepartures(request, timeout=timeout)
    if as_json:
        print_json(response)
        return
    table = Table(title=f"Departures, best first ({len(response.departures)} in the window; times {local.key})")
    for column in ("rank", "depart", "arrive", "score", "level", "duration", "crossing", "wait"):
        table.add_column(column)
    for item in response.departures[:top]:
        r = item.result
        depart, arrive = (
            t.ToDatetime(UTC).astimezone(local).strftime("%a %d %H:%M") for t in (r.departure_time, r.arrival_time)
        )
        table.add_row(str(item.rank), depart, arrive, *_result_cells(r))
    Console().print(table)
    print(f"recommended: {response.reason}")


def _result_cells(r: pb.ScoreRouteResponse) -> list[str]:
    """score, level, duration, crossing and wait of one scored trip, as table cells."""
    crossing = r.crossings[0] if r.crossings else None
    return [
        f"{r.score:.1f}",
        pb.RiskLevel.Name(r.level).removeprefix("RISK_LEVEL_"),
        hours_text(r.duration.ToTimedelta().total_seconds()),
        f"{crossing.port_name} ({crossing.crossing_name})" if crossing else "-",
        f"{crossing.expected_wait_minutes:.0f} min" if crossing else "-",
    ]


def _print_report(r: pb.ScoreRouteResponse) -> None:
    out = Console()
    level = pb.RiskLevel.Name(r.level).removeprefix("RISK_LEVEL_")
    summary = Table(show_header=False, box=None)
    summary.add_row("score", f"{r.score:.1f} / 100  ({level})")
    summary.add_row("expected incidents", f"{r.expected_incidents:.2e}  (probability {r.incident_probability:.4%})")
    summary.add_row("distance", f"{r.distance_km:.1f} km")
    summary.add_row("duration", hours_text(r.duration.ToTimedelta().total_seconds()))
    summary.add_row("exposed", hours_text(r.exposed_duration.ToTimedelta().total_seconds()))
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
