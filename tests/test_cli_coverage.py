"""Coverage and port hours in the ``routerisk`` CLI, as a subprocess against a real server
subprocess: warnings on stderr, no score shown for a route outside the data, the precision hint,
the coverage column of compare/departures, closed lanes, the map, and ``layers list``."""

from __future__ import annotations

import json
import os
import re

import polyline as polyline_codec
import pytest

import seeds
from tests.conftest import FIXTURES
from tests.helpers.cli import run_cli

README_POLYLINE = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"  # California: outside the seed layer's coverage
MONTERREY_NUEVO_LAREDO = [(25.68, -100.31), (26.50, -99.90), (27.45, -99.55)]
WTB_APPROACH = [(27.565, -99.57), (27.59, -99.542), (27.5973, -99.5371), (27.5994, -99.5333), (27.605, -99.52)]
# a terminal wide enough for whole table cells
WIDE = {**os.environ, "COLUMNS": "250"}
CALIFORNIA = [(34.05, -118.24), (34.40, -118.00), (35.37, -119.02)]


def _geojson_file(tmp_path, name: str, points: list[tuple[float, float]]):
    path = tmp_path / f"{name}.geojson"
    line = {"type": "LineString", "coordinates": [[lng, lat] for lat, lng in points]}
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": line}))
    return path


def test_a_route_outside_the_data_has_no_score_and_a_warning(server_process):
    address, _, _ = server_process
    result = run_cli("score", "--polyline", README_POLYLINE, "--server", address)
    assert result.returncode == 0, result.stderr
    assert "n/a" in result.stdout and "NOT COVERED" in result.stdout
    assert "0.0 / 100" not in result.stdout
    assert "warning: only 0.0% of the route lies inside the layer's data coverage" in result.stderr
    assert "no risk level" in result.stderr


def test_a_partly_covered_route_keeps_its_score_and_warns(server_process):
    address, _, _ = server_process
    result = run_cli("score", str(seeds.DEMO_ROUTES["mexico-city_laredo"]), "--server", address)
    assert result.returncode == 0, result.stderr
    assert "/ 100" in result.stdout
    assert "warning: only 99." in result.stderr and "not covered: km 111" in result.stderr


def test_a_covered_route_gets_no_warning(server_process):
    address, _, _ = server_process
    result = run_cli("score", str(seeds.DEMO_ROUTES["manzanillo_guadalajara"]), "--server", address)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    assert "100% of the route inside" in result.stdout


@pytest.mark.parametrize(
    ("option", "precision", "hint"),
    [("--polyline6", 5, "did you mean --polyline (precision 5)?"), ("--polyline", 6, "did you mean --polyline6")],
)
def test_a_polyline_of_the_other_precision_exits_2_with_a_hint(server_process, option, precision, hint):
    address, _, _ = server_process
    text = polyline_codec.encode(MONTERREY_NUEVO_LAREDO, precision)
    result = run_cli("score", option, text, "--server", address)
    assert result.returncode == 2, result.stderr
    assert hint in result.stderr
    assert result.stdout == ""


def test_compare_shows_coverage_and_does_not_recommend_the_uncovered_route(server_process, tmp_path):
    address, _, _ = server_process
    covered = _geojson_file(tmp_path, "covered", MONTERREY_NUEVO_LAREDO)
    outside = _geojson_file(tmp_path, "outside", CALIFORNIA)
    result = run_cli("compare", str(outside), str(covered), "--risk-weight", "1", "--server", address, env=WIDE)
    assert result.returncode == 0, result.stderr
    assert "coverage" in result.stdout and "0.0%" in result.stdout and "100%" in result.stdout
    assert "outside.geojson" in result.stderr  # its warning names it
    first = next(line for line in result.stdout.splitlines() if "│ 1 " in line or line.startswith("│ 1"))
    assert "covered.geojson" in first and "100%" in first


def test_departures_show_closed_lanes_and_coverage(server_process, tmp_path):
    address, _, _ = server_process
    route = _geojson_file(tmp_path, "wtb", WTB_APPROACH)
    result = run_cli(
        "departures", str(route), "--departure", "2025-03-12T00:00:00-05:00", "--window", "8h",
        "--top", "20", "--server", address, env=WIDE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "closed until" in result.stdout
    # the approach's last km lie in the US: the share the warning gives is in the coverage column
    share = re.search(r"only (\d+\.\d%) of the route", result.stderr)
    assert share and share.group(1) in result.stdout


def test_map_draws_the_uncovered_stretch(server_process, tmp_path):
    address, _, _ = server_process
    out = tmp_path / "laredo.geojson"
    result = run_cli("map", str(seeds.DEMO_ROUTES["mexico-city_laredo"]), "--out", str(out), "--server", address)
    assert result.returncode == 0, result.stderr
    features = json.loads(out.read_text())["features"]
    [stretch] = [f for f in features if f["properties"]["kind"] == "uncovered"]
    lng, lat = stretch["geometry"]["coordinates"][0]
    assert lat > 27.595 and lng > -99.54  # it begins on the US side of the World Trade Bridge
    html = run_cli("map", str(seeds.DEMO_ROUTES["mexico-city_laredo"]), "--server", address)
    assert 'class="uncovered"' in html.stdout


def test_layers_record_and_list_their_coverage(tmp_path):
    store = tmp_path / "store"
    area = tmp_path / "area.geojson"
    ring = [[-100.5, 25.5], [-99.0, 25.5], [-99.0, 27.0], [-100.5, 27.0], [-100.5, 25.5]]
    area.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    points = FIXTURES / "ingest" / "points.csv"
    args = ("layers", "build", str(points), "--out", str(store), "--fixed")
    by_polygon = run_cli(*args, "--coverage", str(area), "--name", "area")
    by_points = run_cli(*args, "--name", "points")
    assert by_polygon.returncode == 0 and by_points.returncode == 0, by_polygon.stderr + by_points.stderr
    listed = run_cli("layers", "list", "--layer-dir", str(store), "--json")
    assert listed.returncode == 0, listed.stderr
    coverage = {info["version"].split("-")[0]: info["coverage"] for info in json.loads(listed.stdout)}
    assert coverage["area"].startswith("polygons of area.geojson")
    assert coverage["points"].startswith("point data")
    table = run_cli("layers", "list", "--layer-dir", str(store))
    assert "coverage" in table.stdout


def test_crossings_list_shows_hours_and_when_closed_lanes_open(server_process):
    address, _, _ = server_process
    result = run_cli(
        "crossings", "list", "--port", "230404", "--at", "2025-03-12T02:20:00-05:00",
        "--server", address, env=WIDE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Mon-Fri 07:00-24:00" in result.stdout
    assert "closed until Wed 12:00 UTC" in result.stdout
