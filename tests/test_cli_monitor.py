"""``routerisk monitor --replay`` as a subprocess against a real server subprocess."""

from __future__ import annotations

import json

import pytest

import seeds
from tests.helpers.cli import run_cli
from tests.helpers.trip_track import write_track

ORDER = ["entered_high_risk_cell", "stopped_in_high_risk_cell", "left_planned_route", "approaching_crossing"]


@pytest.fixture(scope="module")
def track_gpx(tmp_path_factory):
    """The test track as a GPX file with times and no speeds (the server derives them)."""
    return write_track(tmp_path_factory.mktemp("monitor") / "track.gpx")


def test_replay_prints_alerts_as_lines_and_a_summary(server_process, track_gpx):
    address, _, _ = server_process
    route = str(seeds.DEMO_ROUTES["mexico-city_laredo"])
    result = run_cli("monitor", "--replay", str(track_gpx), "--route", route, "--server", address, "--trip-id", "cli-1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    kinds = [line.split()[3] for line in lines[:-1]]  # date, time, zone, kind
    assert [kinds.index(k) for k in ORDER] == sorted(kinds.index(k) for k in ORDER)
    assert kinds.count("stopped_in_high_risk_cell") == 1
    stop = next(line for line in lines if "stopped_in_high_risk_cell" in line)
    assert stop.startswith("2025-03-1") and ("SEVERE" in stop or "CRITICAL" in stop)
    assert "World Trade Bridge" in next(line for line in lines if "approaching_crossing" in line)
    summary = lines[-1]
    assert summary.startswith("trip cli-1: ") and "1 stopped_in_high_risk_cell" in summary
    assert "1 approaching_crossing" in summary and "processed" in summary


def test_replay_json_lines_and_replaying_again_is_all_duplicates(server_process, track_gpx):
    address, _, _ = server_process
    route = str(seeds.DEMO_ROUTES["mexico-city_laredo"])
    args = ("monitor", "--replay", str(track_gpx), "--route", route, "--server", address, "--json")
    result = run_cli(*args, "--trip-id", "cli-json")
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [a["kind"].removeprefix("TRIP_ALERT_KIND_").lower() for a in alerts]
    assert set(ORDER) <= set(kinds)
    approach = alerts[kinds.index("approaching_crossing")]
    assert approach["portNumber"] == "230404" and approach["expectedWaitMinutes"] > 0
    assert "alerts:" in result.stderr  # the summary is a message in JSON mode
    # the same trip id again: every position is at or before the last processed, so nothing repeats
    again = run_cli(*args, "--trip-id", "cli-json")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_track_without_times_exits_2(tmp_path, server_process):
    address, _, _ = server_process
    path = tmp_path / "untimed.gpx"
    path.write_text(
        '<gpx version="1.1" creator="t"><trk><trkseg>'
        '<trkpt lat="19.6" lon="-99.2"></trkpt><trkpt lat="19.7" lon="-99.2"></trkpt>'
        "</trkseg></trk></gpx>"
    )
    result = run_cli("monitor", "--replay", str(path), "--server", address)
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "trkpt[0] has no <time>" in result.stderr
    assert result.stdout == ""


def test_unreachable_server_exits_3(track_gpx):
    from tests.conftest import free_port

    result = run_cli("monitor", "--replay", str(track_gpx), "--server", f"127.0.0.1:{free_port()}")
    assert result.returncode == 3, result.stderr
    assert "unreachable" in result.stderr
