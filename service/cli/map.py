"""``routerisk map``: draw a scored route as a self-contained HTML page or as GeoJSON.

Uses the scoring API as it is: ``ScoreRoute`` for the score, hotspots and crossings, the route's
H3 chain computed here (``geodata.cells``, at the resolution the response names), and
``GetCellRisk`` for each cell at the hour the truck passes it. Rendering is ``service.cli.trip_map``.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import grpc
import h3
import numpy as np
import typer

from geodata import route as routes
from geodata.cells import route_to_cells
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli import coverage_text, trip_map
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
    hours_text,
    reports_errors,
    request_options,
    set_route,
)
from service.cli.times import DATE_CLOCK, end_zone, local_text, origin_zone, say, set_departure

# GetCellRisk calls in flight at once: enough to hide the round trip, far below the server's workers
CELL_CALLS_IN_FLIGHT = 8


class MapFormat(StrEnum):
    html = "html"
    geojson = "geojson"


def _level(value: int) -> str:
    return pb.RiskLevel.Name(value).removeprefix("RISK_LEVEL_").lower()


def pass_times(response: pb.ScoreRouteResponse, km: np.ndarray) -> np.ndarray:
    """Epoch seconds at which the truck is at each distance along the route, interpolated between
    the times the response gives (departure, each risky segment's entry and exit, arrival)."""
    anchors = [(0.0, response.departure_time.ToNanoseconds() / 1e9)]
    for s in response.segments:
        anchors.append((s.start_km, s.enter_time.ToNanoseconds() / 1e9))
        anchors.append((s.end_km, s.exit_time.ToNanoseconds() / 1e9))
    anchors.append((response.distance_km, response.arrival_time.ToNanoseconds() / 1e9))
    anchors.sort()
    xs = np.array([a[0] for a in anchors])
    ts = np.maximum.accumulate(np.array([a[1] for a in anchors]))
    return np.interp(km, xs, ts)


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


def build_trip_map(
    stub: pb_grpc.RouteRiskServiceStub,
    request: pb.ScoreRouteRequest,
    path: routes.RoutePath,
    title: str,
    timeout: float,
) -> trip_map.TripMap:
    """Score the route and look up its cells: everything the map shows."""
    response = stub.ScoreRoute(request, timeout=timeout)
    coverage_text.warn_coverage(response)
    chain = route_to_cells(path, response.resolution)
    ids, first = np.unique(chain.cells, return_index=True)
    order = np.argsort(first)
    ids, first = ids[order], first[order]
    mid_km = chain.start_km[first] + chain.length_km[first] / 2
    times = [int(t) for t in pass_times(response, mid_km)]
    names = [h3.int_to_str(int(c)) for c in ids]
    risks = cell_risks(stub, names, times, timeout)
    cells = [
        trip_map.MapCell(cell=name, level=_level(r.level), rate=r.risk, incidents=int(r.incident_count))
        for name, r in zip(names, risks, strict=True)
    ]
    hotspots = [
        trip_map.MapHotspot(h.cell, h.center.latitude, h.center.longitude, h.risk, int(h.incident_count))
        for h in response.hotspots
    ]
    crossings = [
        trip_map.MapCrossing(
            name=f"{c.port_name} ({c.crossing_name})" if c.crossing_name else c.port_name,
            lat=c.location.latitude,
            lng=c.location.longitude,
            wait_minutes=c.expected_wait_minutes,
            wait_source=pb.WaitSource.Name(c.wait_source).removeprefix("WAIT_SOURCE_").lower(),
            closed=c.closed,
            opens=c.lanes_open_time.ToDatetime().strftime("%a %H:%M UTC") if c.HasField("lanes_open_time") else "",
        )
        for c in response.crossings
    ]
    facts = (
        ("distance", f"{response.distance_km:.1f} km"),
        ("duration", hours_text(response.duration.ToTimedelta().total_seconds())),
        ("exposed", hours_text(response.exposed_duration.ToTimedelta().total_seconds())),
        ("departure", local_text(response.departure_time, origin_zone(path), DATE_CLOCK)),
        ("arrival", local_text(response.arrival_time, end_zone(path), DATE_CLOCK)),
        ("expected incidents", f"{response.expected_incidents:.2e}"),
        ("layer", response.layer_version),
    )
    return trip_map.TripMap(
        title=title,
        lat=path.lat.tolist(),
        lng=path.lng.tolist(),
        score=response.score,
        level=_level(response.level),
        cells=cells,
        hotspots=hotspots,
        crossings=crossings,
        facts=facts,
        synthetic=response.layer_synthetic,
        uncovered=[uncovered_points(path, s.start_km, s.end_km) for s in response.uncovered_stretches],
        covered_fraction=response.covered_fraction,
    )


def uncovered_points(path: routes.RoutePath, start_km: float, end_km: float) -> list[tuple[float, float]]:
    """The route's points from ``start_km`` to ``end_km`` (ends interpolated): one uncovered stretch."""
    along = path.along_km
    inner = np.flatnonzero((along > start_km) & (along < end_km))
    km = np.concatenate([[start_km], along[inner], [end_km]])
    lat, lng = np.interp(km, along, path.lat), np.interp(km, along, path.lng)
    return list(zip(lat.tolist(), lng.tolist(), strict=True))


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
        trip = build_trip_map(pb_grpc.RouteRiskServiceStub(channel), request, path, name, timeout)
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
