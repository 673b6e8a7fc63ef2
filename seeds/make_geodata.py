"""Build the seed geometry: ports CSV, US–Mexico boundary, freight corridors, demo routes.

Usage: ``python -m seeds.make_geodata [--data ../shared/data]``

Inputs: the CBP Border Wait Times samples (port numbers, names, lanes), the INEGI state
polygons of Coahuila/Nuevo León/Tamaulipas (the Rio Grande downstream of Big Bend, and the
state codes there), OSM route Saltillo–Monterrey (ODbL), the Edomex road lines, and the
hand-entered waypoints in ``seeds.waypoints``. Output is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, Point, shape
from shapely.ops import linemerge

from seeds import (
    BOUNDARY_GEOJSON,
    CORRIDORS_GEOJSON,
    DEMO_ROUTES,
    PORTS_COLUMNS,
    PORTS_CSV,
    SEEDS_DIR,
)
from seeds import waypoints as wp

DEFAULT_DATA = SEEDS_DIR.parent.parent / "shared" / "data"
EARTH_KM = 6371.0088
Coord = tuple[float, float]


def haversine_km(a: Coord, b: Coord) -> float:
    """Great-circle distance in km between two (lng, lat) points."""
    lng1, lat1, lng2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(h))


def great_circle(a: Coord, b: Coord, step_km: float) -> list[Coord]:
    """Points from a to b (inclusive) along the great circle, about ``step_km`` apart."""
    n = max(1, math.ceil(haversine_km(a, b) / step_km))
    va, vb = (np.array(_xyz(p)) for p in (a, b))
    omega = math.acos(float(np.clip(va @ vb, -1.0, 1.0)))
    out = []
    for t in np.linspace(0.0, 1.0, n + 1):
        v = (math.sin((1 - t) * omega) * va + math.sin(t * omega) * vb) / math.sin(omega)
        out.append((math.degrees(math.atan2(v[1], v[0])), math.degrees(math.asin(v[2] / np.linalg.norm(v)))))
    return out


def _xyz(p: Coord) -> tuple[float, float, float]:
    lng, lat = map(math.radians, p)
    return (math.cos(lat) * math.cos(lng), math.cos(lat) * math.sin(lng), math.sin(lat))


def straight(a: Coord, b: Coord, step_km: float) -> list[Coord]:
    """Points from a to b (inclusive), linear in lng/lat, about ``step_km`` apart."""
    n = max(1, math.ceil(haversine_km(a, b) / step_km))
    return [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for t in np.linspace(0.0, 1.0, n + 1)]


def resample(coords: Sequence[Coord], min_km: float, max_km: float) -> list[float]:
    """Fractional indices into ``coords`` giving vertices about min_km..max_km apart along the path.

    Source vertices less than ``min_km`` (along the path) after the last kept one are dropped,
    and stretches longer than ``max_km`` get evenly spaced interpolated points. Ends are kept.
    """
    cum = np.concatenate([[0.0], np.cumsum([haversine_km(a, b) for a, b in itertools.pairwise(coords)])])
    kept = [0]
    for i in range(1, len(coords)):
        if cum[i] - cum[kept[-1]] >= min_km or i == len(coords) - 1:
            kept.append(i)
    out = [0.0]
    for a, b in itertools.pairwise(kept):
        span = cum[b] - cum[a]
        k = math.ceil(span / max_km)
        for j in range(1, k):
            target = cum[a] + span * j / k
            i = min(int(np.searchsorted(cum, target, side="right")) - 1, len(coords) - 2)
            seg = cum[i + 1] - cum[i]
            out.append(i + ((target - cum[i]) / seg if seg > 0 else 0.0))
        out.append(float(b))
    return out


def at(coords: Sequence[Coord], f: float) -> Coord:
    """The point at fractional index f of a polyline."""
    i = math.floor(f)
    if i >= len(coords) - 1:
        return coords[-1]
    t = f - i
    a, b = coords[i], coords[i + 1]
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def rnd(p: Coord) -> list[float]:
    """[lng, lat] rounded to 5 decimals (about 1 m)."""
    return [round(p[0], 5), round(p[1], 5)]


class Sources:
    """Real geometries from shared/data."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.states = {
            c: shapely.union_all(gpd.read_file(data / "inegi" / f"geom_ent_mun_{c}.geojson").geometry.values)
            for c in ("05", "19", "28")
        }
        for g in self.states.values():
            shapely.prepare(g)
        slt = json.loads((data / "routes" / "slt-mty.geojson").read_text())
        self.slt_mty: list[Coord] = [tuple(c) for c in slt["geometry"]["coordinates"]]
        roads = json.loads((data / "roads" / "edomex_carreteras.geojson").read_text())
        self.edomex = {f["properties"]["fid"]: linemerge(shape(f["geometry"])) for f in roads["features"]}

    def edomex_line(self, fid: int) -> list[Coord]:
        g = self.edomex[fid]
        if g.geom_type != "LineString":
            g = max(g.geoms, key=lambda x: x.length)
        return [tuple(c) for c in g.coords]

    def state_of(self, p: Coord) -> str | None:
        """INEGI code if p is inside Coahuila, Nuevo León or Tamaulipas."""
        pt = Point(p)
        for code, g in self.states.items():
            if g.contains(pt):
                return code
        return None

    def rio_grande_lower(self) -> list[Coord]:
        """Rio Grande from the Chihuahua–Coahuila line to the Gulf, from the state polygons."""
        ring = np.asarray(shapely.union_all(list(self.states.values())).exterior.coords)[:, :2]
        i0 = int(np.hypot(*(ring - wp.CHIHUAHUA_COAHUILA_ON_RIVER).T).argmin())
        i1 = int(np.hypot(*(ring - wp.RIO_GRANDE_MOUTH).T).argmin())
        part = ring[i0 : i1 + 1] if i0 < i1 else ring[i1 : i0 + 1][::-1]
        line = LineString(part).simplify(0.0015, preserve_topology=False)
        return [tuple(c) for c in line.coords]


def build_boundary(src: Sources) -> list[Coord]:
    """The whole US–Mexico boundary, Pacific to Gulf, as one (lng, lat) polyline."""
    pts: list[Coord] = []

    def add(seq: Sequence[Coord]) -> None:
        for p in seq:
            if not pts or haversine_km(pts[-1], p) > 0.01:
                pts.append(p)

    add(great_circle(wp.PACIFIC, wp.COLORADO_NORTH, 10))
    add([wp.COLORADO_NORTH, *wp.COLORADO_RIVER, wp.COLORADO_SOUTH])
    add(great_circle(wp.COLORADO_SOUTH, wp.SONORA_CORNER, 10))
    add(straight(wp.SONORA_CORNER, wp.PARALLEL_EAST, 10))
    add(straight(wp.PARALLEL_EAST, wp.NORTH_CORNER, 10))
    add(straight(wp.NORTH_CORNER, wp.RIO_GRANDE_WEST, 10))
    add(wp.RIO_GRANDE_CHIHUAHUA)
    add(src.rio_grande_lower())
    return pts


def read_cbp(data: Path) -> dict[str, dict]:
    """Commercial Mexican-border crossings of the CBP bwtnew sample, by port number."""
    bwt = json.loads((data / "cbp" / "bwtnew-2022-06-29.json").read_text())
    later = {p["port_number"]: p for p in json.loads((data / "cbp" / "bwtpublicmod-all-2022-06-30.json").read_text())}
    listed = json.loads((data / "cbp" / "crossingslist-2022.json").read_text())["portCrossings"]
    by_id = {c["bwtId"][2:]: c for c in listed if c["border"] == "M"}
    out = {}
    for p in bwt:
        cv = p["commercial_vehicle_lanes"]
        if p["border"] != "Mexican Border" or cv["maximum_lanes"] == "N/A":
            continue
        c = by_id[p["port_number"]]
        assert c["portName"] == p["port_name"] and c["crossingName"] == p["crossing_name"], p["port_number"]
        assert c["covMaximumLanes"] == int(cv["maximum_lanes"]), p["port_number"]
        fast_seen = [q["commercial_vehicle_lanes"]["FAST_lanes"] for q in (p, later.get(p["port_number"], p))]
        fast_open = [int(f["lanes_open"]) for f in fast_seen if f["lanes_open"].isdigit()]
        has_fast = any(f["operational_status"] != "N/A" for f in fast_seen)
        out[p["port_number"]] = {
            "port_name": p["port_name"],
            "crossing_name": p["crossing_name"],
            "lanes": int(cv["maximum_lanes"]),
            "fast": max(fast_open, default=1 if has_fast else 0),
        }
    return out


def write_ports(data: Path) -> list[dict]:
    """Write ports_of_entry.csv (west to east) and return its rows."""
    cbp = read_cbp(data)
    missing = set(cbp) ^ set(wp.PORTS)
    assert not missing, f"port lists differ: {sorted(missing)}"
    rows = []
    for num, (mx_city, mx_state, us_state, lat, lng, tz) in sorted(wp.PORTS.items(), key=lambda kv: kv[1][4]):
        c = cbp[num]
        rows.append(
            {
                "port_number": num,
                "port_name": c["port_name"],
                "crossing_name": c["crossing_name"],
                "mx_city": mx_city,
                "mx_state": mx_state,
                "us_state": us_state,
                "latitude": f"{lat:.4f}",
                "longitude": f"{lng:.4f}",
                "time_zone": tz,
                "commercial_lanes": c["lanes"],
                "fast_lanes": c["fast"],
                "source": "CBP BWT bwtnew 2022-06-29 (names, lanes); fast_lanes = most FAST lanes open in the "
                "2022-06-29/30 samples (1 if FAST listed without a count, 0 if N/A): a lower bound; "
                "coordinates: public maps, approximate (~0.005 deg)",
            }
        )
    with PORTS_CSV.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=PORTS_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def assemble(src: Sources, pieces: Sequence[object]) -> tuple[list[Coord], list[str]]:
    """Concatenate waypoint lists and named real geometries into one line with state codes."""
    pts: list[Coord] = []
    codes: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):  # "SLT_MTY" or "SLT_MTY_REV"
            line = src.slt_mty if piece == "SLT_MTY" else src.slt_mty[::-1]
            new = [(p, "") for p in line]
        elif isinstance(piece, tuple):  # ("EDOMEX", fid, code, reverse)
            _, fid, code, rev = piece
            line = src.edomex_line(fid)
            new = [(p, code) for p in (line[::-1] if rev else line)]
        else:
            new = [((x, y), c) for x, y, c in piece]  # type: ignore[attr-defined]
        for p, c in new:
            if pts and haversine_km(pts[-1], p) < 0.05:
                continue
            pts.append(p)
            codes.append(c)
    return pts, codes


def finish(src: Sources, pts: list[Coord], codes: list[str], min_km: float, max_km: float) -> tuple[list, list]:
    """Resample to the vertex spacing wanted and fill in state codes for every vertex."""
    idx = resample(pts, min_km, max_km)
    out, out_codes = [], []
    for f in idx:
        p = at(pts, f)
        near = [codes[i] for i in (round(f), math.floor(f), math.ceil(f)) if i < len(codes) and codes[i]]
        code = src.state_of(p) or (near[0] if near else "")
        if code in ("05", "19", "28") and src.state_of(p) is None:
            code = next((c for c in near if c not in ("05", "19", "28")), code)
        out.append(rnd(p))
        out_codes.append(code)
    assert all(out_codes), "vertex without a state code"
    return out, out_codes


CORRIDORS: list[tuple[str, str, list[object]]] = [
    (
        "Mexico City–Querétaro–San Luis Potosí–Saltillo–Monterrey–Nuevo Laredo",
        "MEX-57/57D, MEX-40D, MEX-85D",
        [wp.MEX57_SOUTH, ("EDOMEX", 19, "15", False), wp.MEX57_NORTH, "SLT_MTY", wp.MEX85D_MTY_NLD],
    ),
    ("Mexico City–Puebla–Orizaba–Córdoba–Veracruz", "MEX-150D", [wp.MEX150D]),
    ("Querétaro–Celaya–Irapuato–León–Aguascalientes–Zacatecas", "MEX-45D", [wp.MEX45D]),
    (
        "Mexico City–Toluca–Morelia–Guadalajara–Tepic–Mazatlán–Culiacán–Hermosillo–Nogales",
        "MEX-15D",
        [[(-99.2040, 19.4000, "09")], ("EDOMEX", 14, "15", False), wp.MEX15D_TOLUCA_NOGALES],
    ),
    ("Manzanillo–Colima–Guadalajara", "MEX-54D/80", [wp.MEX54D]),
    (
        "Reynosa–Monterrey–Saltillo–Torreón–Durango",
        "MEX-40D",
        [wp.MEX40D_REYNOSA_MTY, "SLT_MTY_REV", wp.MEX40D_SALTILLO_DURANGO],
    ),
    ("Tijuana–Tecate–Mexicali", "MEX-2D", [wp.MEX2D]),
    ("Chihuahua–Ciudad Juárez", "MEX-45", [wp.MEX45_CHIHUAHUA_JUAREZ]),
    ("México–Pachuca", "MEX-85D", [wp.MEX85D_MEX_PACHUCA_HEAD, ("EDOMEX", 6, "15", True), wp.MEX85D_MEX_PACHUCA_TAIL]),
    ("Arco Norte (Atlacomulco–Tula–Sahagún–San Martín Texmelucan)", "Arco Norte (approximate)", [wp.ARCO_NORTE]),
]


def write_corridors(src: Sources) -> dict[str, tuple[list[Coord], list[str]]]:
    """Write corridors.geojson; return the un-resampled lines (for the demo routes)."""
    feats, raw = [], {}
    for name, highway, pieces in CORRIDORS:
        pts, codes = assemble(src, pieces)
        raw[highway if highway != "MEX-85D" else "MEX-85D-PACHUCA"] = (pts, codes)
        coords, cve = finish(src, pts, codes, 8.0, 20.0)
        uses_osm = any(p in ("SLT_MTY", "SLT_MTY_REV") for p in pieces if isinstance(p, str))
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "name": name,
                    "highway": highway,
                    "cve_ent": cve,
                    "source": "hand-traced waypoints, approximate"
                    + (
                        "; Saltillo–Monterrey from OpenStreetMap (© OpenStreetMap contributors, ODbL)"
                        if uses_osm
                        else ""
                    )
                    + ("; Edomex road lines (JJAS-029/map_mun)" if any(isinstance(p, tuple) for p in pieces) else ""),
                },
                "geometry": {"type": "LineString", "coordinates": coords},
            }
        )
    _dump(CORRIDORS_GEOJSON, {"type": "FeatureCollection", "features": feats})
    return raw


def write_routes(raw: dict[str, tuple[list[Coord], list[str]]]) -> None:
    """Write the four demo routes (border approaches kept vertex by vertex)."""
    routes = {
        "mexico-city_laredo": (
            [(raw["MEX-57/57D, MEX-40D, MEX-85D"][0], 5), (wp.LAREDO_US_SIDE, 0)],
            "Mexico City → Laredo, TX",
            "Mexico City → MEX-57D → Querétaro → San Luis Potosí → Saltillo → MEX-40D → Monterrey → MEX-85D"
            " → Nuevo Laredo → World Trade Bridge (CBP 230404) → Laredo, TX",
        ),
        "manzanillo_guadalajara": (
            [(raw["MEX-54D/80"][0], 5)],
            "Manzanillo → Guadalajara",
            "Port of Manzanillo → MEX-54D → Colima → Ciudad Guzmán → Guadalajara; stays in Mexico",
        ),
        "tijuana_otay-mesa": (
            [(wp.TIJUANA_MX_SIDE + wp.OTAY_US_SIDE, 0)],
            "Tijuana → Otay Mesa → San Diego",
            "Tijuana → Otay Mesa commercial crossing (CBP 250602) → SR-905 → I-805 → San Diego",
        ),
        "ciudad-juarez_el-paso": (
            [(wp.JUAREZ_MX_SIDE + wp.BOTA_US_SIDE, 0)],
            "Ciudad Juárez → El Paso",
            "Ciudad Juárez (MEX-45) → Bridge of the Americas (BOTA, CBP 240201) → El Paso, TX",
        ),
    }
    for key, (parts, name, desc) in routes.items():
        coords: list[list[float]] = []
        for pts, min_km in parts:
            coords.extend(rnd(at(pts, f)) for f in resample(pts, min_km, 20.0))
        _dump(
            DEMO_ROUTES[key],
            {
                "type": "Feature",
                "properties": {"name": name, "description": desc},
                "geometry": {"type": "LineString", "coordinates": coords},
            },
        )


def _dump(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Build every geometry seed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/data folder")
    args = ap.parse_args(argv)
    src = Sources(args.data)
    rows = write_ports(args.data)
    boundary = build_boundary(src)
    _dump(
        BOUNDARY_GEOJSON,
        {
            "type": "Feature",
            "properties": {
                "name": "US–Mexico international boundary (approximate)",
                "source": "land line and Colorado/El Paso–Big Bend river traced from "
                "treaty corners and public maps; Rio Grande downstream of "
                "Big Bend from INEGI Marco Geoestadístico 2023 (simplified)",
            },
            "geometry": {"type": "LineString", "coordinates": [rnd(p) for p in boundary]},
        },
    )
    raw = write_corridors(src)
    write_routes(raw)
    print(f"ports: {len(rows)}  boundary vertices: {len(boundary)}  corridors: {len(CORRIDORS)}")


if __name__ == "__main__":
    main()
