"""The dispatcher page at /: self-contained, labelled and keyboard-usable, and in headless
Chromium it scores a route (its departure taken as local time at the origin) and shows the
score, level, crossing, segments, hotspots and the map of ``routerisk map``'s renderer."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polyline as polyline_codec
import pytest

import seeds
from geodata.route import from_file
from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc.server import RunningServer
from service.render.trip_map import LEVEL_COLOURS
from tests.helpers.auth import KEYS, SCORER
from tests.helpers.servers import serving

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
LAREDO = from_file(seeds.DEMO_ROUTES["mexico-city_laredo"])
ENCODED = polyline_codec.encode(list(zip(LAREDO.lat.tolist(), LAREDO.lng.tolist(), strict=True)), 5)


class _Controls(HTMLParser):
    """The page's form controls, labels and the attributes that make it usable from a keyboard."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.tabindexes: list[int] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag in ("input", "select", "textarea"):
            self.controls.append(found)
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if found.get("tabindex") is not None:
            self.tabindexes.append(int(str(found["tabindex"])))


@pytest.fixture(scope="module")
def page_html(connect) -> str:
    response = connect.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def test_the_page_loads_nothing_from_anywhere(page_html):
    assert not re.search(r"https?://", page_html)
    assert "<link" not in page_html and "@import" not in page_html and "url(" not in page_html
    assert not re.search(r"<script[^>]+src=", page_html) and not re.search(r"<img", page_html)


def test_every_control_is_labelled_and_reachable_by_keyboard(page_html):
    parsed = _Controls()
    parsed.feed(page_html)
    ids = [c.get("id") for c in parsed.controls]
    assert len(ids) == 5 and all(ids)  # file, polyline, departure, lane, key
    assert set(ids) <= parsed.labels, set(ids) - parsed.labels
    assert all(index <= 0 for index in parsed.tabindexes)  # the document order is the tab order
    buttons = [a for tag, a in parsed.tags if tag == "button"]
    assert [b.get("type") for b in buttons] == ["submit"]  # Enter in any field submits
    attributes = {a.get("id"): a for _, a in parsed.tags if a.get("id") in ("result", "map")}
    assert attributes["result"].get("aria-live") == "polite"
    assert attributes["map"].get("aria-label")
    assert 'role="alert"' in page_html


def test_the_map_is_drawn_by_the_renderer_of_routerisk_map(connect):
    request = {"route": {"encodedPolyline": ENCODED}, "departureTime": "2025-03-12T04:00:00Z", "reference": "tour"}
    response = connect.client.post("/ui/map", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<svg class="map"' in response.text and "<title>tour</title>" in response.text
    assert "Laredo (World Trade Bridge)" in response.text


def test_a_bad_map_request_is_a_connect_error(connect):
    empty = connect.post("/ui/map", '{"route": {}}')
    assert (empty.status, empty.code) == (400, "invalid_argument")
    assert [v.field for v in empty.violations()] == ["route"]
    unknown = connect.post("/ui/map", '{"rout": {}}')
    assert (unknown.status, unknown.code) == (400, "invalid_argument")


@pytest.fixture(scope="module")
def keyed() -> Iterator[RunningServer]:
    running = serving(http_address="127.0.0.1:0", api_keys=KEYS)
    yield running
    running.stop(0)


def test_the_map_needs_a_scoring_key_when_keys_are_on(keyed):
    import httpx

    assert keyed.http is not None
    url = f"http://127.0.0.1:{keyed.http.port}/ui/map"
    request = {"route": {"encodedPolyline": ENCODED}}
    assert httpx.post(url, json=request, timeout=60).status_code == 401
    allowed = httpx.post(url, json=request, headers={"authorization": f"Bearer {SCORER}"}, timeout=60)
    assert allowed.status_code == 200
    assert httpx.get(url.replace("/ui/map", "/"), timeout=60).status_code == 200  # the page itself is open


def _chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=60000",
        "--run-all-compositor-stages-before-draw", *extra, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) is not installed")
def test_the_page_scores_a_route_in_headless_chromium(http_server, grpc_stub, tmp_path):
    """22:00 on 11 March in Mexico City, the origin's zone, is 04:00 UTC on the 12th: the page shows
    what ScoreRoute answers over gRPC for that departure, and the map."""
    assert http_server.http is not None
    trip = {"polyline": ENCODED, "departure": "2025-03-11T22:00", "lane": "CROSSING_LANE_FAST"}
    url = f"http://127.0.0.1:{http_server.http.port}/#{urllib.parse.urlencode(trip)}"
    result = _chromium(url, tmp_path, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    expected = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=ENCODED), crossing_lane=pb.CROSSING_LANE_FAST)
    expected.departure_time.FromJsonString("2025-03-12T04:00:00Z")
    answer = grpc_stub.ScoreRoute(expected, timeout=60)
    assert re.search(r'id="error"[^>]*></p>', dom), "the page reported an error"
    assert f'id="score-value">{round(answer.score)}<' in dom
    level = pb.RiskLevel.Name(answer.level).removeprefix("RISK_LEVEL_").lower()
    assert f'id="level">{level}<' in dom
    assert "departure 2025-03-12 04:00:00 UTC (origin's zone America/Mexico_City)" in dom
    assert "Laredo (World Trade Bridge)</td><td>fast</td>" in dom
    rows = re.findall(r"<tr><td>", dom)
    assert len(rows) == len(answer.crossings) + len(answer.segments) + len(answer.hotspots)
    assert 'data-drawn="1"' in dom  # the map page, drawn in the page (a shadow root, which the dump leaves out)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) is not installed")
def test_the_map_shows_in_the_page(http_server, tmp_path):
    from PIL import Image

    assert http_server.http is not None
    trip = {"polyline": ENCODED, "departure": "2025-03-11T22:00"}
    url = f"http://127.0.0.1:{http_server.http.port}/#{urllib.parse.urlencode(trip)}"
    shot = tmp_path / "page.png"
    result = _chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1100,2600")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)

    def share_near(colour: str, opacity: float = 0.85) -> float:
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        blended = opacity * rgb + (1 - opacity) * np.array([0xF4, 0xF1, 0xEA])
        return float((np.abs(pixels - blended).max(axis=1) <= 12).mean())

    assert share_near(LEVEL_COLOURS["low"]) > 0.001  # the map's green cells, drawn in the frame
    assert share_near(LEVEL_COLOURS["critical"]) > 0.0002  # the purple ones around Mexico City
