"""Issue 13: every time a dispatcher types or reads is local to the place it refers to.

The CLI as a subprocess against a real server subprocess. A wall time (no UTC offset) is read
at the route's origin (or the port), the zone is said on stderr, DST gaps and overlaps are
refused; JSON keeps RFC 3339 UTC, so each test checks the instant the server got.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

import seeds
from geodata.timezones import zone_at
from tests.helpers.cli import run_cli
from tests.helpers.trip_track import write_track

TIJUANA = str(seeds.DEMO_ROUTES["tijuana_otay-mesa"])
MEXICO_LAREDO = str(seeds.DEMO_ROUTES["mexico-city_laredo"])
JUAREZ = str(seeds.DEMO_ROUTES["ciudad-juarez_el-paso"])
# Tijuana keeps US daylight-saving rules: -07:00 in June
TIJUANA_2PM = "2026-06-10T14:00:00"
TIJUANA_2PM_UTC = "2026-06-10T21:00:00Z"
WIDE = {**os.environ, "COLUMNS": "200"}  # a table wide enough that no label wraps


def score_json(address: str, route: str, departure: str) -> tuple[dict, str]:
    result = run_cli("score", route, "--server", address, "--json", "--departure", departure)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_departure_without_offset_is_local_time_at_the_origin(server_process):
    address, _, _ = server_process
    body, said = score_json(address, TIJUANA, TIJUANA_2PM)
    assert body["departureTime"] == TIJUANA_2PM_UTC
    assert "14:00 PDT (America/Tijuana), taken as local time at the origin" in said
    # the case: the Otay Mesa wait is the one for 14:00 in Tijuana, not for 14:00 UTC
    explicit, _ = score_json(address, TIJUANA, TIJUANA_2PM + "-07:00")
    as_utc, _ = score_json(address, TIJUANA, TIJUANA_2PM + "Z")
    wait = body["crossings"][0]["expectedWaitMinutes"]
    assert wait == explicit["crossings"][0]["expectedWaitMinutes"]
    assert wait != as_utc["crossings"][0]["expectedWaitMinutes"]


def test_an_offset_is_taken_as_given_and_nothing_is_said(server_process):
    address, _, _ = server_process
    body, said = score_json(address, MEXICO_LAREDO, "2026-06-10T14:00:00+02:00")
    assert body["departureTime"] == "2026-06-10T12:00:00Z"
    assert "taken as local time" not in said


@pytest.mark.parametrize(
    ("departure", "words"),
    [
        ("2026-03-08T02:30:00", ("does not exist in America/Tijuana", "--departure")),
        ("2026-11-01T01:30:00", ("ambiguous in America/Tijuana", "-07:00 and -08:00")),
        ("1999-12-31T12:00:00", ("before 2000-01-01",)),
        ("2030-06-10T14:00:00", ("more than a year ahead",)),
        ("10/06/2026 14:00", ("is not an ISO 8601 time",)),
    ],
)
def test_times_that_mean_nothing_or_too_much_are_refused(server_process, departure, words):
    address, _, _ = server_process
    result = run_cli("score", TIJUANA, "--server", address, "--departure", departure)
    assert result.returncode == 2, result.stdout
    assert all(word in result.stderr for word in words), result.stderr


def test_the_report_shows_times_in_the_local_time_of_each_place(server_process):
    address, _, _ = server_process
    # 22:00 in Mexico City (-06:00, no DST since 2022) and arrival in Texas (CDT) the next day
    result = run_cli("score", MEXICO_LAREDO, "--server", address, "--departure", "2026-06-10T22:00:00", env=WIDE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Wed 10 22:00 CST  (origin)" in out
    assert "CDT  (destination)" in out
    assert "enter (local)" in out and "pass (local)" in out
    assert "UTC" not in out


def test_departures_reads_the_window_start_at_the_origin_and_shows_local_times(server_process):
    address, _, _ = server_process
    args = ("departures", TIJUANA, "--server", address, "--departure", TIJUANA_2PM, "--window", "2h")
    as_json = run_cli(*args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    starts = sorted(d["result"]["departureTime"] for d in json.loads(as_json.stdout)["departures"])
    assert starts[0] == TIJUANA_2PM_UTC
    table = run_cli(*args, env=WIDE)
    assert table.returncode == 0, table.stderr
    assert "Wed 10 14:00 PDT" in table.stdout and "Wed 10 16:00 PDT" in table.stdout


def test_departures_and_compare_take_polylines_like_score(server_process):
    address, _, _ = server_process
    line = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    result = run_cli("departures", "--polyline", line, "--server", address, "--window", "2h", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["departures"]) == 3
    compared = run_cli("compare", JUAREZ, "--polyline", line, "--server", address, "--json")
    assert compared.returncode == 0, compared.stderr
    references = {r["result"]["reference"] for r in json.loads(compared.stdout)["ranked"]}
    assert references == {"ciudad-juarez_el-paso.geojson", "polyline 2"}


def test_compare_names_the_recommended_alternative_as_the_table_does(server_process):
    address, _, _ = server_process
    args = ("compare", JUAREZ, TIJUANA, MEXICO_LAREDO, "--server", address, "--departure", TIJUANA_2PM)
    body = json.loads(run_cli(*args, "--json").stdout)
    best = body["recommendedIndex"]
    labels = ["ciudad-juarez_el-paso.geojson", "tijuana_otay-mesa.geojson", "mexico-city_nuevo-laredo_laredo.geojson"]
    result = run_cli(*args, env=WIDE)
    assert result.returncode == 0, result.stderr
    recommended = result.stdout.splitlines()[-1]
    assert recommended.startswith(f"recommended: alternative {best + 1} ({labels[best]})"), recommended
    assert all(label in result.stdout for label in labels)
    # one note per origin zone: each alternative's departure is read at its own origin
    assert "America/Ciudad_Juarez" in result.stderr and "America/Mexico_City" in result.stderr
    named = run_cli(*args, "--name", "BOTA", "--name", "Otay", "--name", "WTB", env=WIDE)
    assert f"({['BOTA', 'Otay', 'WTB'][best]})" in named.stdout.splitlines()[-1]
    wrong = run_cli(*args, "--name", "only one")
    assert wrong.returncode == 2 and "--name given 1 time(s) for 3 routes" in wrong.stderr


def test_batch_departure_cells_without_offset_are_local_at_each_load_origin(server_process, tmp_path):
    address, _, _ = server_process
    route = json.dumps(json.loads(seeds.DEMO_ROUTES["tijuana_otay-mesa"].read_text())["geometry"])
    loads = tmp_path / "loads.jsonl"
    rows = [("wall", TIJUANA_2PM), ("offset", TIJUANA_2PM + "-07:00"), ("gap", "2026-03-08T02:30:00")]
    loads.write_text("".join(json.dumps({"id": i, "route": json.loads(route), "departure": d}) + "\n" for i, d in rows))
    result = run_cli(
        "score-batch", str(loads), "--route-column", "route", "--departure-column", "departure",
        "--server", address, "--format", "jsonl", "--quiet",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    out = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert out["wall"]["score"] == out["offset"]["score"]
    assert out["wall"]["wait_minutes"] == out["offset"]["wait_minutes"]
    assert "does not exist in America/Tijuana" in out["gap"]["error"]
    assert "local time at each load's origin (America/Tijuana)" in result.stderr


def test_monitor_alerts_are_in_local_time_where_the_truck_was(server_process, tmp_path):
    address, _, _ = server_process
    track = write_track(tmp_path / "track.gpx")
    args = ("monitor", "--replay", str(track), "--route", MEXICO_LAREDO, "--server", address)
    alerts = [json.loads(line) for line in run_cli(*args, "--json", "--trip-id", "t-json").stdout.splitlines()]
    lines = run_cli(*args, "--trip-id", "t-text").stdout.splitlines()[:-1]
    assert len(lines) == len(alerts) > 2
    for alert, line in zip(alerts, lines, strict=True):
        when = datetime.fromisoformat(alert["time"]).astimezone(UTC)
        zone = ZoneInfo(zone_at(alert["location"]["latitude"], alert["location"]["longitude"]))
        assert line.startswith(when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")), line
