"""Write ``seeds/mexico_coverage.geojson``: the area the seed layer's data covers (Mexico).

The seed incidents are calibrated to SESNSP totals of every Mexican state, so the seed layer
covers Mexico. The outline is the seed boundary (``us_mexico_boundary.geojson``, exact to the
vertex: it is what decides "US side") closed by hand-entered coast and southern-border
waypoints (general public knowledge of maps, ±10–20 km; coverage is kept at H3 resolution 7,
so the coast only matters for coastal roads). Deterministic.

Usage: ``python -m seeds.make_coverage``
"""

from __future__ import annotations

import json

import h3
import h3.api.basic_int as h3i
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping

from geodata.border import _us_side
from seeds import BOUNDARY_GEOJSON, COVERAGE_CELLS_JSON, COVERAGE_GEOJSON

# the coast waypoints are rough: the outline is widened by this (degrees, ~5 km) off the coasts,
# never across the boundary
COAST_MARGIN_DEG = 0.05
RESOLUTION = 7

# (lat, lng), from the Rio Grande's mouth on the Gulf round Yucatán, the Belize and Guatemala
# borders, the Pacific coast to the head of the Gulf of California, and round Baja California
# back to the Pacific end of the boundary.
SOUTH_AND_COASTS = [
    (25.60, -97.20), (24.50, -97.70), (23.00, -97.75), (22.20, -97.80), (21.00, -97.30),
    (20.00, -96.50), (19.20, -96.10), (18.60, -95.20), (18.15, -94.40), (18.40, -93.20),
    (18.65, -91.80), (19.30, -90.70), (20.20, -90.50), (21.15, -90.20), (21.35, -89.20),
    (21.60, -88.00), (21.50, -86.80), (20.60, -87.10), (19.50, -87.45), (18.50, -87.80),
    (18.48, -88.30), (17.82, -89.15), (17.82, -90.98), (17.25, -90.98), (17.25, -91.44),
    (16.07, -90.44), (16.07, -91.73), (14.53, -92.23), (15.70, -93.80), (16.20, -95.20),
    (15.86, -97.07), (16.50, -98.70), (16.85, -99.90), (17.60, -101.50), (18.00, -102.20),
    (18.70, -103.70), (19.05, -104.30), (19.60, -105.10), (20.60, -105.30), (21.50, -105.30),
    (22.80, -106.00), (23.20, -106.45), (24.30, -107.50), (25.50, -108.80), (26.60, -109.40),
    (27.90, -110.90), (28.80, -111.90), (29.90, -112.70), (31.30, -113.60), (31.75, -114.70),
    (31.00, -114.85), (29.00, -113.50), (27.34, -112.27), (26.00, -111.34), (24.15, -110.30),
    (22.89, -109.91), (23.50, -110.40), (24.60, -112.10), (25.80, -112.20), (26.70, -113.50),
    (27.85, -115.08), (28.30, -114.10), (29.60, -115.50), (30.40, -116.00), (31.85, -116.62),
]  # fmt: skip


def outline() -> Polygon | MultiPolygon:
    """The boundary (west to east) then the waypoints back west, widened off the coasts."""
    document = json.loads(BOUNDARY_GEOJSON.read_text(encoding="utf-8"))
    boundary = [tuple(point) for point in document["geometry"]["coordinates"]]
    ring = [*boundary, *((lng, lat) for lat, lng in SOUTH_AND_COASTS), boundary[0]]
    polygon = shapely.make_valid(Polygon(ring))
    if not isinstance(polygon, Polygon):
        raise ValueError(f"the outline is a {polygon.geom_type}, not one polygon: check the waypoints")
    wide = polygon.buffer(COAST_MARGIN_DEG).difference(_us_side(LineString(boundary)))
    if not isinstance(wide, Polygon | MultiPolygon):
        raise ValueError(f"the widened outline is a {wide.geom_type}")
    return wide


def coverage_cells(area: Polygon | MultiPolygon) -> list[str]:
    """The compacted H3 cells (resolution 7, centre inside) of the area, sorted, as hex: what the
    seed layer records as its coverage (filling Mexico takes seconds, so it is done here once)."""
    cells = h3i.compact_cells(h3i.h3shape_to_cells(h3.geo_to_h3shape(area), RESOLUTION))
    return [h3i.int_to_str(cell) for cell in sorted(cells)]


def main() -> None:
    """CLI: write mexico_coverage.geojson."""
    feature = {
        "type": "Feature",
        "properties": {"name": "Mexico", "source": "seeds/make_coverage.py (boundary + hand-entered coasts)"},
        "geometry": mapping(outline()),
    }
    COVERAGE_GEOJSON.write_text(json.dumps(feature, separators=(",", ":")) + "\n", encoding="utf-8")
    cells = coverage_cells(outline())
    document = {"name": "Mexico", "resolution": RESOLUTION, "source": feature["properties"]["source"], "cells": cells}
    COVERAGE_CELLS_JSON.write_text(json.dumps(document, indent=0) + "\n", encoding="utf-8")
    print(f"{COVERAGE_CELLS_JSON.name}: {len(cells)} compacted cells at resolution {RESOLUTION}")


if __name__ == "__main__":
    main()
