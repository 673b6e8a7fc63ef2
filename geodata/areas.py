"""Adjacent H3 cells merged into polygons (holes kept), with the sizes routing engines limit.

H3 neighbours always share an edge, so the connected groups of a cell set are exactly the
polygons of its outline; each group becomes one polygon with its holes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import h3
import h3.api.basic_int as h3i
import numpy as np

from geodata.geometry import haversine_km

Ring = tuple[tuple[float, float], ...]  # (lng, lat), closed: the last point repeats the first


@dataclass(frozen=True)
class CellArea:
    """One connected group of cells and its outline: the outer ring first, then the holes."""

    cells: np.ndarray  # uint64
    rings: tuple[Ring, ...]

    @property
    def vertex_count(self) -> int:
        """Distinct vertices over all rings (a closed ring repeats its first point)."""
        return sum(len(ring) - 1 for ring in self.rings)

    @cached_property
    def outer_perimeter_m(self) -> float:
        """Geodesic length of the outer ring in metres (what Valhalla sums over exclude_polygons)."""
        points = np.asarray(self.rings[0])
        return float(haversine_km(points[:-1, 1], points[:-1, 0], points[1:, 1], points[1:, 0]).sum() * 1000.0)


def merge_cells(cells: np.ndarray) -> list[CellArea]:
    """The connected groups of ``cells`` (one resolution) as polygons, in no particular order."""
    return [_outline(group) for group in _groups(np.unique(np.asarray(cells, dtype=np.uint64)))]


def _groups(cells: np.ndarray) -> list[np.ndarray]:
    """Connected components under H3 adjacency (union-find over each cell's ring of neighbours)."""
    index = {int(c): i for i, c in enumerate(cells.tolist())}
    parent = list(range(len(cells)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, cell in enumerate(cells.tolist()):
        for neighbour in h3i.grid_ring(cell, 1):
            j = index.get(neighbour)
            if j is not None:
                parent[root(i)] = root(j)
    roots = np.fromiter((root(i) for i in range(len(cells))), np.int64, len(cells))
    order = np.argsort(roots, kind="stable")
    splits = np.flatnonzero(np.diff(roots[order])) + 1
    return [cells[part] for part in np.split(order, splits)] if len(cells) else []


def _outline(cells: np.ndarray) -> CellArea:
    shape = h3.cells_to_geo([h3i.int_to_str(int(c)) for c in cells.tolist()])
    polygons = shape["coordinates"] if shape["type"] == "MultiPolygon" else [shape["coordinates"]]
    if len(polygons) != 1:  # cannot happen for a connected group; fail loudly rather than drop a part
        raise ValueError(f"a connected group of {len(cells)} cells gave {len(polygons)} polygons")
    rings = tuple(tuple((float(lng), float(lat)) for lng, lat in ring) for ring in polygons[0])
    return CellArea(cells, rings)
