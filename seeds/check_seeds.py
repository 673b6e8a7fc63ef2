"""Consistency checks of the seed data: ``python -m seeds.check_seeds`` (exit 1 on failure).

Checks: CSV columns; every commercial port within 3 km of the boundary line; each
cross-border demo route meets the boundary exactly once and the nearest commercial port to
that crossing is the intended one; the domestic route does not meet it; corridors and
corridor state codes line up; wait profiles have 168 values per lane for every port.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point, shape

from seeds import (
    BOUNDARY_GEOJSON,
    CORRIDORS_GEOJSON,
    DEMO_ROUTES,
    INCIDENT_TYPES,
    INCIDENTS_COLUMNS,
    INCIDENTS_CSV,
    PORTS_COLUMNS,
    PORTS_CSV,
    WAIT_PROFILES_JSON,
)

KM_PER_DEG = 111.195
PORT_MAX_KM = 3.0
EXPECTED_CROSSING = {"mexico-city_laredo": "230404", "tijuana_otay-mesa": "250602", "ciudad-juarez_el-paso": "240201"}
CROSSING_MAX_KM = 2.0
US_ZONES = {"America/Los_Angeles", "America/Phoenix", "America/Denver", "America/Chicago"}


def km_from(line: LineString, lng: float, lat: float) -> float:
    """Distance in km from (lng, lat) to a line, in a local equirectangular frame."""
    k = math.cos(math.radians(lat))
    flat = shapely.transform(line, lambda c: c * np.array([k, 1.0]))
    return float(flat.distance(Point(lng * k, lat))) * KM_PER_DEG


def load_ports() -> list[dict[str, str]]:
    with PORTS_CSV.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == PORTS_COLUMNS, f"ports columns: {reader.fieldnames}"
        return list(reader)


def load_line(path: Path) -> LineString:
    obj = json.loads(path.read_text(encoding="utf-8"))
    return shape(obj["geometry"])


def nearest_port(ports: list[dict[str, str]], lng: float, lat: float) -> tuple[str, float]:
    """(port_number, km) of the commercial port nearest to a point."""
    best = min(ports, key=lambda p: _km(lng, lat, float(p["longitude"]), float(p["latitude"])))
    return best["port_number"], _km(lng, lat, float(best["longitude"]), float(best["latitude"]))


def _km(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    k = math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lng1 - lng2) * k, lat1 - lat2) * KM_PER_DEG


def run() -> list[str]:
    """All checks; returns the failures (and prints a short report)."""
    errors: list[str] = []
    ports = load_ports()
    boundary = load_line(BOUNDARY_GEOJSON)
    print(f"ports: {len(ports)}; boundary vertices: {len(boundary.coords)}")
    if len(boundary.coords) < 150:
        errors.append("boundary has fewer than 150 vertices")
    if len({p["port_number"] for p in ports}) != len(ports):
        errors.append("duplicate port_number")
    for p in ports:
        if p["time_zone"] not in US_ZONES:
            errors.append(f"{p['port_number']}: time_zone {p['time_zone']} is not a US border zone")
        if len(p["port_number"]) != 6:
            errors.append(f"{p['port_number']}: port_number must have 6 characters")
        d = km_from(boundary, float(p["longitude"]), float(p["latitude"]))
        if d > PORT_MAX_KM:
            errors.append(f"port {p['port_number']} {p['port_name']} {p['crossing_name']} is {d:.2f} km from boundary")

    for key, path in DEMO_ROUTES.items():
        route = load_line(path)
        hit = route.intersection(boundary)
        pts = [] if hit.is_empty else [hit] if hit.geom_type == "Point" else list(getattr(hit, "geoms", [hit]))
        want = EXPECTED_CROSSING.get(key)
        if want is None:
            if pts:
                errors.append(f"route {key} should stay in Mexico but meets the boundary {len(pts)} time(s)")
            print(f"route {key}: no crossing")
            continue
        if len(pts) != 1 or pts[0].geom_type != "Point":
            errors.append(f"route {key} meets the boundary {len(pts)} times (want 1)")
            continue
        x, y = pts[0].x, pts[0].y
        got, km = nearest_port(ports, x, y)
        print(f"route {key}: crosses at ({y:.4f}, {x:.4f}); nearest port {got} at {km:.2f} km")
        if got != want or km > CROSSING_MAX_KM:
            errors.append(f"route {key}: crossing nearest port {got} ({km:.2f} km), want {want} within 2 km")

    corridors = json.loads(CORRIDORS_GEOJSON.read_text(encoding="utf-8"))["features"]
    for f in corridors:
        n = len(f["geometry"]["coordinates"])
        codes = f["properties"]["cve_ent"]
        if len(codes) != n or not all(isinstance(c, str) and len(c) == 2 for c in codes):
            errors.append(f"corridor {f['properties']['name']}: cve_ent not aligned with coordinates")
    print(f"corridors: {len(corridors)}")

    profiles = json.loads(WAIT_PROFILES_JSON.read_text(encoding="utf-8"))
    for p in ports:
        lanes = profiles["ports"].get(p["port_number"])
        if not lanes or any(len(lanes.get(k, [])) != 168 for k in ("standard", "fast")):
            errors.append(f"wait profile of {p['port_number']} missing or not 168 values per lane")

    with INCIDENTS_CSV.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != INCIDENTS_COLUMNS:
            errors.append(f"incident columns: {reader.fieldnames}")
        rows = list(reader)
    bad = [r["id"] for r in rows if r["type"] not in INCIDENT_TYPES or r["violent"] not in ("true", "false")]
    if bad:
        errors.append(f"{len(bad)} incidents with a bad type/violent value")
    print(f"incidents: {len(rows)}")
    return errors


def main() -> None:
    """Run the checks and exit non-zero on any failure."""
    errors = run()
    for e in errors:
        print("FAIL:", e)
    print("OK" if not errors else f"{len(errors)} failure(s)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
