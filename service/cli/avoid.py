"""``routerisk avoid``: the riskiest areas of a box, ready to hand to a routing engine.

The chosen form (GeoJSON, a Valhalla ``exclude_polygons`` fragment or a GraphHopper custom model)
goes to stdout or ``--out``; how much of the engine's limit it uses goes to stderr.
"""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    CliError,
    Server,
    Timeout,
    channel_to,
    reports_errors,
)
from service.cli.times import read_time, say, zone_here


class Level(StrEnum):
    moderate = "moderate"
    high = "high"
    severe = "severe"
    critical = "critical"


class AvoidFormat(StrEnum):
    geojson = "geojson"
    valhalla = "valhalla"
    graphhopper = "graphhopper"


def parse_bbox(text: str) -> pb.BoundingBox:
    """'WEST,SOUTH,EAST,NORTH' in degrees (the server checks the ranges)."""
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise CliError(f"--bbox {text!r} is not WEST,SOUTH,EAST,NORTH in degrees", EXIT_BAD_INPUT) from None
    return pb.BoundingBox(west=west, south=south, east=east, north=north)


@reports_errors
def avoid(
    bbox: Annotated[str, typer.Option(help="west, south, east and north edges in degrees, e.g. -101,18.5,-97.5,21")],
    threshold: Annotated[Level, typer.Option(help="lowest risk level to avoid")] = Level.high,
    output_format: Annotated[AvoidFormat, typer.Option("--format", help="what to write")] = AvoidFormat.geojson,
    at: Annotated[
        str | None,
        typer.Option(
            "--time", help="ISO 8601 hour of the risk (default weekly mean); no offset: local at the box centre"
        ),
    ] = None,
    valhalla_max_perimeter: Annotated[
        float, typer.Option(help="metres: your Valhalla's limit on exclude polygon perimeters (see README)")
    ] = 10_000.0,
    graphhopper_max_vertices: Annotated[int, typer.Option(min=1, help="vertex budget of the custom model")] = 5_000,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    server: Server = DEFAULT_SERVER,
    timeout: Timeout = 60.0,
) -> None:
    """Hotspot cells of a box merged into polygons: GeoJSON, Valhalla exclude_polygons or a GraphHopper custom model."""
    request = pb.ExportAvoidAreasRequest(
        bounds=parse_bbox(bbox),
        min_level=cast("pb.RiskLevel", pb.RiskLevel.Value(f"RISK_LEVEL_{threshold.value.upper()}")),
        valhalla_max_perimeter_meters=valhalla_max_perimeter,
        graphhopper_max_vertices=graphhopper_max_vertices,
    )
    if at is not None:
        bounds = request.bounds
        centre = zone_here((bounds.south + bounds.north) / 2, (bounds.west + bounds.east) / 2)
        read = read_time(at, "--time", centre, "the centre of the box")
        if read.note is not None:
            _one_clock(bounds, read.utc, at)
        say([read.note])
        request.time.FromDatetime(read.utc)
    with channel_to(server) as channel:
        response = pb_grpc.RouteRiskServiceStub(channel).ExportAvoidAreas(request, timeout=timeout)
    text = getattr(response, output_format.value) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    print(_summary(response, output_format), file=sys.stderr)


def _one_clock(bounds: pb.BoundingBox, instant: datetime, text: str) -> None:
    """A wall time is one instant only where the box keeps one clock: a box whose corners are in
    zones with other offsets at that instant (Baja California and Sonora, say) is refused instead
    of guessing which clock was meant."""
    corners = [(lat, lng) for lat in (bounds.south, bounds.north) for lng in (bounds.west, bounds.east)]
    # a corner at sea has a zone by longitude only (Etc/GMT+N): no one's clock, not counted
    zones = {z for z in (zone_here(lat, lng) for lat, lng in corners) if not z.key.startswith("Etc/")}
    offsets = {instant.astimezone(zone).utcoffset() for zone in zones}
    if len(offsets) > 1:
        names = ", ".join(sorted(zone.key for zone in zones))
        raise CliError(
            f"--time {text!r} has no offset and the box spans clocks ({names}): give one, e.g. {text}-06:00",
            EXIT_BAD_INPUT,
        )


def _summary(response: pb.ExportAvoidAreasResponse, output_format: AvoidFormat) -> str:
    head = f"{response.cell_count} cells in {len(response.areas)} areas (layer {response.layer_version})"
    if output_format is AvoidFormat.valhalla:
        b = response.valhalla_budget
        used = f"{b.used:,.0f} of {b.limit:,.0f} m of perimeter"
        return f"{head}; Valhalla: {b.included} rings, {used}, {b.left_out} left out"
    if output_format is AvoidFormat.graphhopper:
        b = response.graphhopper_budget
        return (
            f"{head}; GraphHopper: {b.included} areas, {b.used:,.0f} of {b.limit:,.0f} vertices, {b.left_out} left out"
        )
    return head
