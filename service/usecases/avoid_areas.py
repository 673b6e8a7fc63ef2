"""ExportAvoidAreas: the riskiest cells of a box merged into polygons a routing engine can avoid.

Three forms of the same areas:
- GeoJSON: one Polygon (holes kept) per connected group of cells of one level.
- Valhalla ``exclude_polygons``: outer rings only (Valhalla takes no holes, so a hole is avoided
  too), cells of every level merged so the rings are as short as they can be, riskiest first,
  while the rings' total perimeter stays within ``service_limits.max_exclude_polygons_length``
  (10,000 m by default; Valhalla rejects a request over it).
- GraphHopper custom model: the per-level polygons as ``areas`` and one ``priority`` statement each,
  multiplying by a factor per level (0 blocks CRITICAL areas; HIGH ones are only made costly, so a
  destination inside one stays reachable), riskiest first within a vertex budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from geodata.areas import CellArea, merge_cells
from geodata.errors import InvalidRequestError, Violation
from geodata.layers import RiskLayer
from service.usecases import hotspots
from service.usecases.scoring import LEVELS, level_of_rate

DEFAULT_MIN_LEVEL = "high"
VALHALLA_DEFAULT_PERIMETER_M = 10_000.0
GRAPHHOPPER_DEFAULT_VERTICES = 5_000
MAX_GRAPHHOPPER_VERTICES = 100_000
# GraphHopper priority factor per level: lower is avoided harder
PRIORITY = {"moderate": 0.6, "high": 0.3, "severe": 0.1, "critical": 0.0}


@dataclass(frozen=True)
class Area:
    """One exported polygon: its cells at one level (or several, for Valhalla), ranked by risk."""

    id: str
    level: str
    risk: float  # expected incidents per truck-hour, summed over the cells
    shape: CellArea


@dataclass(frozen=True)
class Budget:
    included: int
    left_out: int
    used: float
    limit: float


@dataclass(frozen=True)
class AvoidExport:
    areas: list[Area]  # per level, riskiest first
    valhalla_rings: list[Area]  # all levels merged, those within the perimeter budget
    graphhopper_areas: list[Area]  # per level, those within the vertex budget
    valhalla_budget: Budget
    graphhopper_budget: Budget
    cell_count: int


def check_request(
    bounds: tuple[float, float, float, float],
    min_level: str | None,
    valhalla_max_perimeter_m: float,
    graphhopper_max_vertices: int,
) -> tuple[str, float, int]:
    """(level, perimeter budget, vertex budget) with defaults applied; every problem at once."""
    bad: list[Violation] = []
    try:
        hotspots.validate_query(*bounds, 0, 0, None)
    except InvalidRequestError as exc:
        bad.extend(exc.violations)
    level = min_level or DEFAULT_MIN_LEVEL
    if level not in PRIORITY:
        bad.append(Violation("min_level", f"min_level {level!r} must be one of {', '.join(PRIORITY)}"))
    perimeter = valhalla_max_perimeter_m or VALHALLA_DEFAULT_PERIMETER_M
    if not (math.isfinite(perimeter) and perimeter > 0):
        bad.append(Violation("valhalla_max_perimeter_meters", f"{valhalla_max_perimeter_m} must be a positive number"))
    vertices = graphhopper_max_vertices or GRAPHHOPPER_DEFAULT_VERTICES
    if not 0 < vertices <= MAX_GRAPHHOPPER_VERTICES:
        bad.append(
            Violation(
                "graphhopper_max_vertices", f"{graphhopper_max_vertices} is outside [1, {MAX_GRAPHHOPPER_VERTICES}]"
            )
        )
    if bad:
        raise InvalidRequestError(bad)
    return level, perimeter, vertices


def export(
    layer: RiskLayer,
    bounds: tuple[float, float, float, float],
    min_level: str,
    at_s: int | None,
    valhalla_max_perimeter_m: float,
    graphhopper_max_vertices: int,
) -> AvoidExport:
    """The areas of ``layer`` in ``bounds`` at ``min_level`` or above (risk at ``at_s``, else the weekly mean)."""
    query = hotspots.validate_query(*bounds, 0, 0, at_s)
    rows = hotspots.rows_in_box(layer, query)  # the same box rule as ListHotspots
    risk, _ = hotspots.risk_at(layer, rows, at_s)
    levels = np.array([level_of_rate(float(r)) for r in risk.tolist()], dtype=object)
    keep = np.isin(levels, LEVELS[LEVELS.index(min_level) :])
    cells, risk, levels = layer.cells[rows][keep], risk[keep], levels[keep]
    by_cell = dict(zip(cells.tolist(), risk.tolist(), strict=True))
    areas = []
    for level in LEVELS[LEVELS.index(min_level) :]:
        areas += [_area(shape, level, by_cell) for shape in merge_cells(cells[levels == level])]
    areas = _ranked(areas, "avoid")
    merged = _ranked([_area(shape, "", by_cell) for shape in merge_cells(cells)], "valhalla")
    valhalla, valhalla_budget = _within(merged, lambda a: a.shape.outer_perimeter_m, valhalla_max_perimeter_m)
    graphhopper, graphhopper_budget = _within(areas, lambda a: a.shape.vertex_count, graphhopper_max_vertices)
    return AvoidExport(areas, valhalla, graphhopper, valhalla_budget, graphhopper_budget, len(cells))


def _area(shape: CellArea, level: str, risk_by_cell: dict[int, float]) -> Area:
    return Area("", level, sum(risk_by_cell[c] for c in shape.cells.tolist()), shape)


def _ranked(areas: list[Area], prefix: str) -> list[Area]:
    """Riskiest first (ties by first cell, so the order is stable), numbered in that order."""
    order = sorted(areas, key=lambda a: (-a.risk, int(a.shape.cells.min())))
    return [Area(f"{prefix}_{i + 1}", a.level, a.risk, a.shape) for i, a in enumerate(order)]


def _within(areas: list[Area], size: Callable[[Area], float], limit: float) -> tuple[list[Area], Budget]:
    """The riskiest areas that fit the budget together (a smaller later one may still fit)."""
    chosen, used = [], 0.0
    for area in areas:
        if used + size(area) <= limit:
            chosen.append(area)
            used += size(area)
    return chosen, Budget(len(chosen), len(areas) - len(chosen), used, limit)


def geojson(areas: list[Area]) -> str:
    """A FeatureCollection, one Polygon (outer ring, then holes) per area."""
    features = [
        {
            "type": "Feature",
            "id": a.id,
            "properties": {"level": a.level, "cells": len(a.shape.cells), "risk": a.risk},
            "geometry": {"type": "Polygon", "coordinates": [list(map(list, ring)) for ring in a.shape.rings]},
        }
        for a in areas
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


def valhalla(rings: list[Area]) -> str:
    """The ``exclude_polygons`` member of a Valhalla route request: outer rings, [lon, lat]."""
    return json.dumps({"exclude_polygons": [list(map(list, a.shape.rings[0])) for a in rings]})


def graphhopper(areas: list[Area]) -> str:
    """A GraphHopper custom model: ``areas`` (FeatureCollection) and a ``priority`` statement per area."""
    priority = [{"if": f"in_{a.id}", "multiply_by": str(PRIORITY[a.level])} for a in areas]
    return json.dumps({"priority": priority, "areas": json.loads(geojson(areas))})
