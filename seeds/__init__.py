"""Embedded default data the service starts with (see ``seeds/README.md``).

The files are package data, so ``importlib.resources.files("seeds") / "ports_of_entry.csv"``
works as well as these ``Path`` constants (which assume an unzipped install).

* ``incidents_synthetic.csv`` is SYNTHETIC: generated, not real incidents.
* ``wait_profiles.json`` holds default profiles, not measurements.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

SEEDS_DIR: Path = Path(__file__).resolve().parent
PORTS_CSV: Path = SEEDS_DIR / "ports_of_entry.csv"
BOUNDARY_GEOJSON: Path = SEEDS_DIR / "us_mexico_boundary.geojson"
CORRIDORS_GEOJSON: Path = SEEDS_DIR / "corridors.geojson"
INCIDENTS_CSV: Path = SEEDS_DIR / "incidents_synthetic.csv"
WAIT_PROFILES_JSON: Path = SEEDS_DIR / "wait_profiles.json"
# each port's commercial hours (weekday, Saturday, Sunday), local time
PORT_HOURS_CSV: Path = SEEDS_DIR / "port_hours.csv"
# the area the seed layer covers (Mexico): the outline and its compacted H3 cells
COVERAGE_GEOJSON: Path = SEEDS_DIR / "mexico_coverage.geojson"
COVERAGE_CELLS_JSON: Path = SEEDS_DIR / "mexico_coverage_cells.json"
ROUTES_DIR: Path = SEEDS_DIR / "routes"
DEMO_ROUTES: dict[str, Path] = {
    "mexico-city_laredo": ROUTES_DIR / "mexico-city_nuevo-laredo_laredo.geojson",
    "manzanillo_guadalajara": ROUTES_DIR / "manzanillo_guadalajara.geojson",
    "tijuana_otay-mesa": ROUTES_DIR / "tijuana_otay-mesa.geojson",
    "ciudad-juarez_el-paso": ROUTES_DIR / "ciudad-juarez_el-paso.geojson",
}

PORTS_COLUMNS: tuple[str, ...] = (
    "port_number", "port_name", "crossing_name", "mx_city", "mx_state", "us_state",
    "latitude", "longitude", "time_zone", "commercial_lanes", "fast_lanes", "source",
)  # fmt: skip
INCIDENTS_COLUMNS: tuple[str, ...] = ("id", "occurred_at", "latitude", "longitude", "type", "violent", "source")
INCIDENT_TYPES: tuple[str, ...] = ("hijacking", "theft_from_parked", "cargo_theft", "attempt", "other")

__all__ = [
    "BOUNDARY_GEOJSON",
    "CORRIDORS_GEOJSON",
    "COVERAGE_CELLS_JSON",
    "COVERAGE_GEOJSON",
    "DEMO_ROUTES",
    "INCIDENTS_COLUMNS",
    "INCIDENTS_CSV",
    "INCIDENT_TYPES",
    "PORTS_COLUMNS",
    "PORTS_CSV",
    "PORT_HOURS_CSV",
    "ROUTES_DIR",
    "SEEDS_DIR",
    "WAIT_PROFILES_JSON",
    "port_zones",
]  # fmt: skip


def port_zones() -> dict[str, str]:
    """Port number → IANA zone of the commercial ports in ``ports_of_entry.csv`` (a fresh copy)."""
    return dict(_port_zones())


@functools.lru_cache(maxsize=1)
def _port_zones() -> tuple[tuple[str, str], ...]:
    with open(PORTS_CSV, newline="", encoding="utf-8") as handle:
        return tuple((row["port_number"], row["time_zone"]) for row in csv.DictReader(handle))
