"""``routerisk map`` as a subprocess against a real server: the HTML page is self-contained and
renders (headless Chromium, where installed); the GeoJSON carries route, cells, hotspots, crossing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import grpc
import h3
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import seeds
from geodata import route as routes
from geodata.cells import route_to_cells
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.render.trip_map import LEVEL_COLOURS, LEVELS
from tests.helpers.cli import run_cli

ROUTE = seeds.DEMO_ROUTES["mexico-city_laredo"]
DEPARTURE = "2025-03-12T22:00:00-06:00"


@pytest.fixture(scope="module")
def scored(server_process) -> pb.ScoreRouteResponse:
    """The same route scored directly, to check the map against."""
    address, _, _ = server_process
    path = routes.from_file(ROUTE)
    request = pb.ScoreRouteRequest(departure_time=Timestamp(seconds=1741838400))  # = DEPARTURE
    request.route.line.points.extend(
        pb.LatLng(latitude=a, longitude=b) for a, b in zip(path.lat.tolist(), path.lng.tolist(), strict=True)
    )
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(request, timeout=30)


@pytest.fixture(scope="module")
def page(server_process, tmp_path_factory) -> Path:
    address, _, _ = server_process
    out = tmp_path_factory.mktemp("map") / "trip.html"
    result = run_cli("map", str(ROUTE), "--out", str(out), "--departure", DEPARTURE, "--server", address)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return out


def test_html_is_self_contained_and_shows_the_trip(page, scored):
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and text.rstrip().endswith("</html>")
    # nothing to load: no URL at all, no script, no external stylesheet, image or font
    assert not re.search(r"https?://", text)
    assert "<script" not in text.lower() and "<link" not in text.lower() and "<img" not in text.lower()
    assert "url(" not in text and "@import" not in text
    assert f"{scored.score:.1f} / 100" in text
    assert "Laredo (World Trade Bridge): " in text and f"{scored.crossings[0].expected_wait_minutes:.0f} min" in text
    assert text.count('class="hotspot"') == len(scored.hotspots) == 10
    for level in LEVELS:
        assert f"</span>{level}</td>" in text  # the legend
    drawn = set(re.findall(r'<polygon points="[^"]+" fill="(#[0-9a-f]{6})"', text))
    assert len(text.split("<polygon ")) > 30
    assert {LEVEL_COLOURS["low"], LEVEL_COLOURS["critical"]} <= drawn  # cells of more than one level
    assert "SYNTHETIC" in text


def test_geojson_has_route_cells_hotspots_and_crossing(server_process, scored):
    address, _, _ = server_process
    result = run_cli("map", str(ROUTE), "--format", "geojson", "--departure", DEPARTURE, "--server", address)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["type"] == "FeatureCollection"
    kinds: dict[str, list] = {}
    for feature in doc["features"]:
        kinds.setdefault(feature["properties"]["kind"], []).append(feature)
    (line,) = kinds["route"]
    assert line["geometry"]["type"] == "LineString"
    assert line["properties"]["score"] == scored.score
    path = routes.from_file(ROUTE)
    assert line["geometry"]["coordinates"][0] == [path.lng[0], path.lat[0]]
    chain = route_to_cells(path, scored.resolution)
    cells = kinds["cell"]
    assert {c["properties"]["cell"] for c in cells} == {h3.int_to_str(int(c)) for c in np.unique(chain.cells)}
    for cell in cells:
        ring = cell["geometry"]["coordinates"][0]
        assert cell["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) >= 7
        assert cell["properties"]["level"] in LEVELS and cell["properties"]["rate"] >= 0
    assert {c["properties"]["level"] for c in cells} >= {"low", "critical"}
    assert [h["properties"]["cell"] for h in kinds["hotspot"]] == [h.cell for h in scored.hotspots]
    (crossing,) = kinds["crossing"]
    assert crossing["properties"]["name"] == "Laredo (World Trade Bridge)"
    assert crossing["properties"]["wait_minutes"] == scored.crossings[0].expected_wait_minutes
    assert crossing["geometry"]["coordinates"] == [
        scored.crossings[0].location.longitude,
        scored.crossings[0].location.latitude,
    ]


def test_bad_route_exits_2(server_process):
    address, _, _ = server_process
    result = run_cli("map", "--polyline", "not a polyline!", "--server", address)
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.startswith("error: --polyline: invalid character")


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) is not installed")
def test_page_renders_in_headless_chromium(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1000,800",
        page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 50  # not blank: text, route, cells in several colours

    def share_near(colour: str, opacity: float = 0.85) -> float:
        """Share of pixels close to a cell colour drawn at ``opacity`` over the map's background."""
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        blended = opacity * rgb + (1 - opacity) * np.array([0xF4, 0xF1, 0xEA])
        return float((np.abs(pixels - blended).max(axis=1) <= 12).mean())

    assert share_near(LEVEL_COLOURS["low"]) > 0.002  # green cells
    assert share_near(LEVEL_COLOURS["critical"]) > 0.0005  # the purple cells around Mexico City
    assert share_near("#f4f1ea", 1.0) > 0.2  # the map's background
