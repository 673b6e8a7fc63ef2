"""``routerisk map``: draw a scored route as a self-contained HTML page or as GeoJSON.

Uses the scoring API as it is: ``ScoreRoute`` for the score, hotspots and crossings, the route's
H3 chain computed here (``geodata.cells``, at the resolution the response names), and
``GetCellRisk`` for each cell at the hour the truck passes it (:func:`service.render.gather.trip_of`).
Rendering is ``service.render.trip_map``, which the HTTP port's dispatcher page draws with too.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import grpc
import typer

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli import coverage_text
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    CliError,
    Departure,
    Lane,
    LaneOption,
    Server,
    SpeedKmh,
    Timeout,
    channel_to,
    reports_errors,
    request_options,
    set_route,
)
from service.cli.times import DATE_CLOCK, end_zone, local_text, origin_zone, say, set_departure
from service.render import gather, trip_map

# GetCellRisk calls in flight at once: enough to hide the round trip, far below the server's workers
CELL_CALLS_IN_FLIGHT = 8


class MapFormat(StrEnum):
    html = "html"
    geojson = "geojson"


def cell_risks(
    stub: pb_grpc.RouteRiskServiceStub, cells: list[str], times: list[int], timeout: float
) -> list[pb.GetCellRiskResponse]:
    """GetCellRisk for each cell at its time, a few calls in flight at once, answers in order."""
    answers: list[pb.GetCellRiskResponse] = []
    flying: deque[grpc.Future] = deque()
    for cell, at in zip(cells, times, strict=True):
        request = pb.GetCellRiskRequest(cell=cell)
        request.time.FromSeconds(at)
        flying.append(stub.GetCellRisk.future(request, timeout=timeout))
        if len(flying) >= CELL_CALLS_IN_FLIGHT:
            answers.append(flying.popleft().result())
    answers.extend(future.result() for future in flying)
    return answers


@reports_errors
def map_route(
    route: Annotated[str | None, typer.Argument(help="GeoJSON or GPX file, or - for stdin")] = None,
    polyline: Annotated[str | None, typer.Option("--polyline", help="encoded polyline, precision 5")] = None,
    polyline6: Annotated[str | None, typer.Option("--polyline6", help="encoded polyline, precision 6")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="file to write (default stdout)")] = None,
    output_format: Annotated[
        MapFormat | None, typer.Option("--format", help="default: geojson for a .geojson/.json --out, else html")
    ] = None,
    title: Annotated[str | None, typer.Option(help="title of the map (default: the file name)")] = None,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    timeout: Timeout = 60.0,
) -> None:
    """Draw a route's risk: cells coloured by level, hotspots, the crossing and its wait, a legend.
    The HTML page is self-contained (opens without network); --format geojson for GIS tools."""
    request = request_options(speed_kmh, lane)
    path = set_route(request, route, polyline, polyline6, strict=True)
    assert path is not None  # strict: a route that does not decode was refused
    say([set_departure(request, departure, path)])
    if output_format is None:
        suffix = out.suffix.lower() if out else ""
        output_format = MapFormat.geojson if suffix in (".geojson", ".json") else MapFormat.html
    name = title or (Path(route).stem if route and route != "-" else "route")
    with channel_to(server) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)

        def score(scored: pb.ScoreRouteRequest) -> pb.ScoreRouteResponse:
            answer: pb.ScoreRouteResponse = stub.ScoreRoute(scored, timeout=timeout)
            coverage_text.warn_coverage(answer)  # a stretch outside the data is said, not only drawn
            return answer

        trip = gather.trip_of(
            score,
            lambda cells, times: cell_risks(stub, cells, times, timeout),
            request,
            path,
            name,
            # departure and arrival in the local time of the origin and of the end, as every command says them
            lambda answer: (
                local_text(answer.departure_time, origin_zone(path), DATE_CLOCK),
                local_text(answer.arrival_time, end_zone(path), DATE_CLOCK),
            ),
        )
    if output_format is MapFormat.geojson:
        text = json.dumps(trip_map.to_geojson(trip)) + "\n"
    else:
        text = trip_map.to_html(trip)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{out}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    print(f"map of {len(trip.cells)} cells written to {out}", file=sys.stderr)
