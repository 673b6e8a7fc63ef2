"""The area a layer's data covers, as compacted H3 cells, and how much of a route lies in it.

A layer with no incidents somewhere is not evidence that the place is safe: outside the area
its inputs describe, the layer simply knows nothing. So every layer records its coverage
(from its inputs: the polygons of aggregated data, a ``--coverage`` polygon, or for point data
the neighbourhood of its incidents) and every score says how much of the route lies inside.

Coverage is a sorted ``uint64`` array of *compacted* H3 cells of resolution at most
:data:`COVERAGE_RESOLUTION` (a country is thousands of cells, not hundreds of thousands). A
route cell is covered when one of its ancestors is in the set, so the answer is exact to the
route's own cells, wherever and however often a route crosses the edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h3
import h3.api.basic_int as h3i
import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geodata import h3x
from geodata.errors import InputError, Violation
from geodata.timezones import parent_cells

# finest resolution of coverage cells (~5 km² each): fine enough for "after the bridge",
# coarse enough that Mexico compacts to ~8,000 cells
COVERAGE_RESOLUTION = 7
# point data: the cells (this resolution, ~250 km² each) holding an incident and the ring around
# them; a place more than ~10–25 km from every recorded incident is outside the data's coverage
POINT_COVERAGE_RESOLUTION = 5
POINT_COVERAGE_RINGS = 1
# a route with less than this share of its length inside coverage gets no risk level
MIN_COVERED_FRACTION = 0.5
# points of a polyline looked at to tell whether it lies inside coverage at all
MAX_SAMPLED_POINTS = 256

_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF) << _RES_SHIFT


def resolution_of(resolution: int) -> int:
    """Coverage resolution for a layer of ``resolution`` (never finer than the layer's cells)."""
    return min(COVERAGE_RESOLUTION, resolution)


def compacted(cells: np.ndarray | list[int]) -> np.ndarray:
    """Cells of one resolution as a sorted, compacted ``uint64`` array."""
    values = np.unique(np.asarray(cells, dtype=np.uint64))
    if len(values) == 0:
        return values
    return np.sort(np.asarray(h3i.compact_cells(values.tolist()), dtype=np.uint64))


def of_geojson(document: Any, resolution: int, where: str = "coverage") -> np.ndarray:
    """Coverage of a GeoJSON Polygon or MultiPolygon (bare, a Feature or a FeatureCollection):
    the cells whose centre is inside, plus the cell of a point inside each part too small for
    any centre (a small municipality still counts)."""
    return of_shapes(_polygons(document, where), resolution)


def of_shapes(parts: list[BaseGeometry], resolution: int) -> np.ndarray:
    """Coverage of polygons (WGS84 longitude/latitude); anything else in ``parts`` is skipped. Each
    polygon of a MultiPolygon counts on its own, so a small island is not lost beside a big part."""
    cells: list[int] = []
    polygons = [p for part in parts for p in shapely.get_parts(part).tolist()]
    for part in polygons:
        if not isinstance(part, shapely.Polygon) or part.is_empty:
            continue
        found = h3i.h3shape_to_cells(h3.geo_to_h3shape(part), resolution)
        if not found:
            inside = shapely.point_on_surface(part)
            found = [h3i.latlng_to_cell(inside.y, inside.x, resolution)]
        cells.extend(found)
    return compacted(cells)


def _polygons(document: Any, where: str) -> list[BaseGeometry]:
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features") or []
        return [p for feature in features for p in _polygons(feature, where)]
    feature = isinstance(document, dict) and document.get("type") == "Feature"
    geometry = document.get("geometry") if feature else document
    try:
        polygon = shape(geometry)
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
        raise InputError(Violation(where, "is not a GeoJSON Polygon or MultiPolygon")) from None
    if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon) or polygon.is_empty:
        raise InputError(Violation(where, f"is a {polygon.geom_type}, not a Polygon or MultiPolygon"))
    return [polygon]


def of_points(lat: np.ndarray, lng: np.ndarray, resolution: int = POINT_COVERAGE_RESOLUTION) -> np.ndarray:
    """The documented default for point data: the cells (resolution
    :data:`POINT_COVERAGE_RESOLUTION`, or the layer's when coarser) holding an incident, and the
    ring around each."""
    res = min(POINT_COVERAGE_RESOLUTION, resolution)
    own = {h3i.latlng_to_cell(a, b, res) for a, b in zip(lat.tolist(), lng.tolist(), strict=True)}
    disks = {cell for centre in own for cell in h3i.grid_disk(centre, POINT_COVERAGE_RINGS)}
    return compacted(sorted(disks))


def covered(coverage: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Whether each cell lies inside ``coverage`` (compacted cells no finer than ``cells``)."""
    cells = np.asarray(cells, dtype=np.uint64)
    inside = np.zeros(len(cells), dtype=bool)
    if len(coverage) == 0 or len(cells) == 0:
        return inside
    levels = np.unique((coverage & _RES_MASK) >> _RES_SHIFT)
    for level in levels.tolist():
        inside |= np.isin(parent_cells(cells, int(level)), coverage)
    return inside


@dataclass(frozen=True)
class RouteCoverage:
    """How much of a route lies inside the layer's coverage."""

    fraction: float  # of the route's length
    stretches: tuple[tuple[int, int], ...]  # first and last chain rows of each uncovered run
    recorded: bool = True  # False for a layer built before coverage was recorded (all covered)

    @property
    def mostly_outside(self) -> bool:
        return self.fraction < MIN_COVERED_FRACTION


def of_route(coverage: np.ndarray | None, cells: np.ndarray, length_km: np.ndarray) -> RouteCoverage:
    """The covered share of a cell chain's length and its uncovered runs of rows (in order)."""
    if coverage is None:
        return RouteCoverage(1.0, (), recorded=False)
    inside = covered(coverage, cells)
    total = float(length_km.sum())
    fraction = float(length_km[inside].sum() / total) if total > 0 else float(inside.all())
    edges = np.diff(np.concatenate([[0], (~inside).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return RouteCoverage(fraction, tuple(zip(starts.tolist(), ends.tolist(), strict=True)))


def points_inside(coverage: np.ndarray | None, lat: np.ndarray, lng: np.ndarray) -> float:
    """Share of points inside ``coverage`` (1.0 when none is recorded), from at most
    :data:`MAX_SAMPLED_POINTS` evenly spaced ones (a sanity check, not a measure: it runs on
    every polyline request); points must be valid coordinates."""
    if coverage is None or len(lat) == 0 or len(coverage) == 0:
        return 1.0
    pick = np.unique(np.linspace(0, len(lat) - 1, min(len(lat), MAX_SAMPLED_POINTS)).astype(np.intp))
    res = int(((coverage & _RES_MASK) >> _RES_SHIFT).max())
    sample = zip(lat[pick].tolist(), lng[pick].tolist(), strict=True)
    cells = np.fromiter((h3x.latlng_to_cell(a, b, res) for a, b in sample), np.uint64, len(pick))
    return float(covered(coverage, cells).mean())


def describe(metadata: dict[str, Any]) -> str:
    """One line for ``layers list``: where the coverage comes from and its size."""
    info = metadata.get("coverage")
    if not isinstance(info, dict):
        return "not recorded"
    return f"{info.get('source', '?')} ({info.get('cells', '?')} cells ≤ r{info.get('resolution', '?')})"


def read_cells_json(path: Path, resolution: int) -> np.ndarray:
    """Coverage stored as ``{"cells": [hex, ...]}`` (the seed layer's Mexico, made once by
    ``seeds/make_coverage.py``), coarsened to ``resolution`` when the layer is coarser."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = np.asarray([h3i.str_to_int(text) for text in document["cells"]], dtype=np.uint64)
    return coarsened(cells, resolution)


def coarsened(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Compacted cells with every cell finer than ``resolution`` replaced by its ancestor there."""
    levels = (cells & _RES_MASK) >> _RES_SHIFT
    fine = levels > resolution
    if not fine.any():
        return np.sort(cells)
    merged = np.concatenate([cells[~fine], np.unique(parent_cells(cells[fine], resolution))])
    return np.sort(np.asarray(h3i.compact_cells(_uncompact(merged, resolution)), dtype=np.uint64))


def _uncompact(cells: np.ndarray, resolution: int) -> list[int]:
    return sorted(set(h3i.uncompact_cells(np.unique(cells).tolist(), resolution)))
