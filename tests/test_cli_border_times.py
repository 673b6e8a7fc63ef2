"""Issue 13: ``border load`` and ``crossings list`` say what happened to the readings.

A server subprocess of this module's own (loads change its state), the CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.helpers.border import FEED
from tests.helpers.cli import run_cli, serve_subprocess

OTAY = "250602"
PACIFIC = ZoneInfo("America/Los_Angeles")
WIDE = {**os.environ, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    """A server of its own, live window 60 minutes (the default)."""
    with serve_subprocess(tmp_path_factory.mktemp("border-times") / "server.log") as here:
        yield here


def fresh_feed(path, minutes_ago: int) -> tuple[str, datetime]:
    """Otay Mesa's record of the 2022 feed, re-dated to ``minutes_ago`` (whole minutes, Pacific time)."""
    taken = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0).astimezone(PACIFIC)
    record = next(r for r in json.loads(FEED.read_text()) if r["port_number"] == OTAY)
    record["date"], record["time"] = f"{taken.month}/{taken.day}/{taken.year}", taken.strftime("%H:%M:%S")
    stamp = f"At {taken.strftime('%I:%M').lstrip('0')} {taken.strftime('%p').lower()} {taken.strftime('%Z')}"
    for lane in ("standard_lanes", "FAST_lanes"):
        record["commercial_vehicle_lanes"][lane]["update_time"] = stamp
    path.write_text(json.dumps([record]))
    return str(path), taken


def test_a_2022_feed_is_loaded_but_said_to_be_only_historical(address):
    result = run_cli("border", "load", str(FEED), "--server", address)
    assert result.returncode == 0, result.stderr
    assert "current: none of the readings is live now" in result.stdout
    # 35 with a number (fewer when a test before held a newer Otay Mesa reading)
    assert re.search(r"only historical: 3\d reading\(s\), newest taken 2022-06-29 \d\d:\d\d [A-Z]{3} ", result.stdout)
    assert "within 60 min of the time asked" in result.stdout
    listed = run_cli("crossings", "list", "--port", "230404", "--server", address, env=WIDE)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"\d+ d old, not used", listed.stdout)  # its age shows though the profile answers
    assert " live " not in listed.stdout


def test_a_current_reading_says_until_when_it_is_used(address, tmp_path):
    feed, taken = fresh_feed(tmp_path / "bwt.json", minutes_ago=10)
    result = run_cli("border", "load", feed, "--server", address)
    assert result.returncode == 0, result.stderr
    until = (taken + timedelta(minutes=60)).strftime("%Y-%m-%d %H:%M %Z")
    assert f"current: 2 reading(s), live now; used until {until} (Otay Mesa, newest)" in result.stdout
    assert "only historical" not in result.stdout
    listed = run_cli("crossings", "list", "--port", OTAY, "--server", address, "--json")
    waits = json.loads(listed.stdout)["crossings"][0]["laneWaits"]
    assert {w["source"] for w in waits} == {"WAIT_SOURCE_LIVE"}


def test_crossings_at_a_wall_time_is_local_at_the_port(address):
    at = "2022-06-29T10:00:00"
    refused = run_cli("crossings", "list", "--at", at, "--server", address)
    assert refused.returncode == 2 and "give --port" in refused.stderr
    wall = run_cli("crossings", "list", "--at", at, "--port", OTAY, "--server", address, "--json")
    explicit = run_cli("crossings", "list", "--at", at + "-07:00", "--port", OTAY, "--server", address, "--json")
    assert wall.returncode == 0, wall.stderr
    assert json.loads(wall.stdout) == json.loads(explicit.stdout)
    assert "10:00 PDT (America/Los_Angeles), taken as local time at port 250602" in wall.stderr


def test_avoid_reads_a_wall_time_at_the_centre_of_the_box(address):
    box = "-101,18.5,-97.5,21"
    result = run_cli("avoid", "--bbox", box, "--time", "2026-06-10T22:00:00", "--server", address)
    assert result.returncode == 0, result.stderr
    assert "(America/Mexico_City), taken as local time at the centre of the box" in result.stderr
    explicit = run_cli("avoid", "--bbox", box, "--time", "2026-06-10T22:00:00-06:00", "--server", address)
    assert result.stdout == explicit.stdout


def test_map_facts_are_local_at_origin_and_destination(address, tmp_path):
    import seeds

    out = tmp_path / "map.html"
    route = str(seeds.DEMO_ROUTES["tijuana_otay-mesa"])
    result = run_cli("map", route, "--out", str(out), "--departure", "2026-06-10T14:00:00", "--server", address)
    assert result.returncode == 0, result.stderr
    assert "2026-06-10 14:00 PDT" in out.read_text()


def test_avoid_refuses_a_wall_time_for_a_box_that_spans_clocks(address):
    """Tijuana (PDT, UTC-7 in June) and Chihuahua (CST, UTC-6) keep other clocks: a wall time for
    a box over both is refused, not read at the centre."""
    spans = run_cli("avoid", "--bbox", "-117.2,28,-106,32.6", "--time", "2026-06-10T22:00:00", "--server", address)
    assert spans.returncode == 2 and "spans clocks" in spans.stderr, spans.stderr
    given = run_cli(
        "avoid", "--bbox", "-117.2,28,-106,32.6", "--time", "2026-06-10T22:00:00-07:00", "--server", address
    )
    assert given.returncode == 0, given.stderr
