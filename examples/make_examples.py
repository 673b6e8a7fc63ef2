"""Write every input file the README's commands use (run from the repository root).

    python -m examples.make_examples

Each file's source and licence are in ``examples/README.md``. The real public samples come from
``tests/fixtures`` (themselves copied from public sources, with provenance there); the rest is
made up here and says so.
"""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime
from pathlib import Path

import gpxpy.gpx
import polyline

import seeds
from geodata.border import load_border_data
from tests.helpers.trip_track import write_track

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures"
MONTERREY, SAN_ANTONIO = (25.67, -100.31), (29.42, -98.49)
# the alternatives of the README's compare: the cargo bridges of Laredo and Pharr
NEW_WEEK = 12
VIA = {"via-wtb.geojson": "230404", "via-colombia.geojson": "230403", "via-pharr.geojson": "230502"}


def trip_gpx() -> None:
    """Saltillo → Monterrey (OSM, ODbL) as a GPX track without times: a planned trip."""
    feature = json.loads((FIXTURES / "slt-mty.geojson").read_text())
    gpx = gpxpy.gpx.GPX()
    gpx.name = "Saltillo → Monterrey (© OpenStreetMap contributors, ODbL)"
    segment = gpxpy.gpx.GPXTrackSegment()
    segment.points.extend(gpxpy.gpx.GPXTrackPoint(lat, lng) for lng, lat in feature["geometry"]["coordinates"])
    track = gpxpy.gpx.GPXTrack()
    track.segments.append(segment)
    gpx.tracks.append(track)
    (HERE / "trip.gpx").write_text(gpx.to_xml(), encoding="utf-8")


def roads_geojson() -> None:
    """The same OSM road as a road file (a road layer for ``layers build --roads``)."""
    feature = json.loads((FIXTURES / "slt-mty.geojson").read_text())
    road = {
        "type": "Feature",
        "properties": {"name": "Saltillo - Monterrey (MEX 40D / 40)", "source": "© OpenStreetMap contributors, ODbL"},
        "geometry": feature["geometry"],
    }
    (HERE / "roads.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [road]}) + "\n")


def via_routes() -> None:
    """Monterrey → a Laredo or Pharr cargo bridge → San Antonio (made up, a few points)."""
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    for name, number in VIA.items():
        port = border.port(number)
        assert port is not None, number
        bridge = [(port.lat - 0.08, port.lng), (port.lat, port.lng), (port.lat + 0.06, port.lng)]
        points = [MONTERREY, *bridge, SAN_ANTONIO]
        feature = {
            "type": "Feature",
            "properties": {"name": f"Monterrey → {port.crossing_name} ({number}) → San Antonio", "made_up": True},
            "geometry": {"type": "LineString", "coordinates": [[lng, lat] for lat, lng in points]},
        }
        (HERE / name).write_text(json.dumps(feature) + "\n")


def loads() -> None:
    """Four loads each in CSV (polyline, precision 5) and JSONL (precision 6); the last row of
    each is bad on purpose (a polyline that does not decode), so the batch exits 2."""
    routes = [
        ("L-1001", seeds.DEMO_ROUTES["mexico-city_laredo"], "2025-03-12T22:00:00-06:00"),
        ("L-1002", seeds.DEMO_ROUTES["tijuana_otay-mesa"], "2025-03-13T08:00:00"),
        ("L-1003", seeds.DEMO_ROUTES["manzanillo_guadalajara"], ""),
    ]
    lines = {
        load: [(lat, lng) for lng, lat in json.loads(path.read_text())["geometry"]["coordinates"]]
        for load, path, _ in routes
    }
    with open(HERE / "loads.csv", "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "polyline", "departure", "customer"])
        for load, _, departure in routes:
            writer.writerow([load, polyline.encode(lines[load], 5), departure, "ACME"])
        writer.writerow(["L-1004", "not a polyline", "", "ACME"])
    with open(HERE / "loads.jsonl", "w", encoding="utf-8") as out:
        for load, _, departure in routes:
            row = {"load_id": load, "polyline": polyline.encode(lines[load], 6), "departure": departure or None}
            out.write(json.dumps(row) + "\n")
        out.write(json.dumps({"load_id": "L-1004", "polyline": "", "departure": None}) + "\n")


def incidents() -> None:
    """Seed incidents (SYNTHETIC) near Monterrey and Saltillo, for ``layers build``/``backtest``;
    the latest ones are split off as ``new_week.csv`` for ``--incremental``."""
    with open(seeds.INCIDENTS_CSV, encoding="utf-8") as source:
        rows = [
            r
            for r in csv.DictReader(source)
            if 25.2 <= float(r["latitude"]) <= 26.2 and -101.2 <= float(r["longitude"]) <= -99.8
        ]
    rows.sort(key=lambda r: datetime.fromisoformat(r["occurred_at"]))
    early, late = rows[:-NEW_WEEK], rows[-NEW_WEEK:]
    for name, chosen in (("incidents.csv", early), ("new_week.csv", late)):
        with open(HERE / name, "w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(chosen)


def copies() -> None:
    """Real public samples, as the tests hold them: CBP's feed (Mexican border ports only) and
    history, INEGI municipalities, and the SESNSP layout (made-up counts)."""
    feed = json.loads((FIXTURES / "cbp" / "bwtnew-2022-06-29.json").read_text())
    mexico = [r for r in feed if r["border"] == "Mexican Border"]
    (HERE / "bwtnew.json").write_text(json.dumps(mexico, indent=1) + "\n")
    shutil.copyfile(FIXTURES / "cbp" / "historical-230404-week.csv", HERE / "hist-230404.csv")
    shutil.copyfile(FIXTURES / "ingest" / "inegi_municipios_slice.geojson", HERE / "municipalities.geojson")
    shutil.copyfile(FIXTURES / "ingest" / "sesnsp_municipal.csv", HERE / "sesnsp_municipal.csv")


def main() -> None:
    trip_gpx()
    roads_geojson()
    via_routes()
    loads()
    incidents()
    copies()
    write_track(HERE / "track.gpx")


if __name__ == "__main__":
    main()
