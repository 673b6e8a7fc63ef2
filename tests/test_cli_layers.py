"""``routerisk layers`` as a subprocess: build, list, activate, export, backtest, and a server
that picks up the activated layer without a restart."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import time

import grpc
import h3
import pytest

import seeds
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from tests.conftest import FIXTURES, free_port, routerisk_command, wait_serving

POINTS = FIXTURES / "ingest" / "points.csv"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*routerisk_command(), *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def build(store, *inputs, extra=()) -> str:
    result = run_cli("layers", "build", *map(str, inputs), "--out", str(store), *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_build_list_activate_export(tmp_path):
    store = tmp_path / "store"
    built = run_cli(
        "layers", "build", str(seeds.INCIDENTS_CSV), "--out", str(store), "--name", "seedcopy", "--synthetic"
    )
    assert built.returncode == 0, built.stderr
    version = built.stdout.strip().splitlines()[-1]
    assert version.startswith("seedcopy-")
    # it prints what it fitted, and records it in the layer
    # 630 days of 90-day validation windows on the seed data (fewer than 20,000 validation incidents)
    assert "adaptive model fitted on 7 rolling origin(s)" in built.stderr and "time kernels" in built.stderr
    assert "validation hit rate at 1/5/10 %" in built.stderr
    header = json.loads(next(store.rglob("layer.json")).read_text())
    assert header["metadata"]["fit"]["fallback"] is None
    assert header["metadata"]["params"]["decay_half_lives"] == header["metadata"]["fit"]["half_lives"]
    assert build(store, seeds.INCIDENTS_CSV, extra=("--name", "seedcopy", "--synthetic")) == version  # content-derived
    listed = json.loads(run_cli("layers", "list", "--json", "--layer-dir", str(store)).stdout)
    assert [entry["version"] for entry in listed] == [version]
    assert listed[0]["synthetic"] is True and listed[0]["active"] is False
    assert listed[0]["inputs"][0]["file"] == "incidents_synthetic.csv"
    assert len(listed[0]["inputs"][0]["sha256"]) == 64 and listed[0]["inputs"][0]["rows"] == 20_000
    assert run_cli("layers", "activate", version, "--layer-dir", str(store)).returncode == 0
    assert (store / "ACTIVE").read_text().strip() == version
    out = tmp_path / "cells.csv"
    assert run_cli("layers", "export", version, "--out", str(out), "--layer-dir", str(store)).returncode == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "h3_cell",
        "intensity_per_hour",
        "incidents",
        "violent_incidents",
        "last_incident_at",
        "lower",
        "upper",
    ]
    assert sum(int(r["incidents"]) for r in rows) == 20_000
    assert all(h3.is_valid_cell(r["h3_cell"]) for r in rows[:50])


def test_a_bad_file_is_rejected_whole_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,occurred_at,latitude,longitude,type,violent,source\n"
        "1,2024-01-01T02:00:00-06:00,19.6,-99.2,hijacking,true,t\n"
        "2,2024-01-01T03:00:00-06:00,95.0,-99.2,hijacking,true,t\n"
        "3,not a time,19.6,-99.2,hijacking,true,t\n"
        "3,2024-01-01T04:00:00-06:00,19.6,-99.2,teleport,true,t\n"
    )
    store = tmp_path / "store"
    result = run_cli("layers", "build", str(bad), "--out", str(store))
    assert result.returncode == 2
    assert result.stdout == ""
    for expected in ("bad.csv:3:latitude", "bad.csv:4:occurred_at", "bad.csv:5:id", "bad.csv:5:type", "95", "teleport"):
        assert expected in result.stderr, expected
    assert not (store / "layers").exists() or not any((store / "layers").iterdir())


def test_a_file_without_incidents_is_rejected_not_built_into_an_empty_layer(tmp_path):
    """A header-only export (truncated, or the wrong period) used to build and activate a
    layer of 0 cells: every route then scored 0. Found by fuzzing the ingest."""
    header_only = tmp_path / "empty.csv"
    header_only.write_text("id,occurred_at,latitude,longitude,type,violent,source\n")
    sesnsp = tmp_path / "municipal.csv"
    sesnsp.write_bytes((FIXTURES / "ingest" / "sesnsp_municipal.csv").read_bytes().split(b"\n")[0] + b"\n")
    store = tmp_path / "store"
    for path in (header_only, sesnsp):
        extra = ("--municipalities", str(FIXTURES / "ingest" / "inegi_municipios_slice.geojson"))
        result = run_cli("layers", "build", str(path), "--out", str(store), "--activate", *extra)
        assert result.returncode == 2, result.stderr
        assert f"{path.name}: " in result.stderr and "no incidents" in result.stderr
        assert not (store / "ACTIVE").exists()
        assert not (store / "layers").exists() or not any((store / "layers").iterdir())


def test_activating_an_unknown_version_fails_cleanly(tmp_path):
    result = run_cli("layers", "activate", "nope-123", "--layer-dir", str(tmp_path))
    assert result.returncode == 2 and "nope-123" in result.stderr
    assert not (tmp_path / "ACTIVE").exists()


def test_backtest_table_json_splits_and_plot(tmp_path):
    common = ("layers", "backtest", str(seeds.INCIDENTS_CSV), "--train-until", "2025-04-01T00:00:00-06:00")
    common += ("--test-days", "90", "--splits", "2")
    table = run_cli(*common, "--out", str(tmp_path / "bt"))
    assert table.returncode == 0, table.stderr
    for method in ("model", "model-near_repeat", "model-trend", "model-background", "kde", "recent", "counts"):
        assert method in table.stdout
    assert "mean of 2 non-empty split(s)" in table.stdout
    assert (tmp_path / "bt" / "pai.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert len(report["splits"]) == 2
    assert report["splits"][1]["train_until"] == "2025-06-30T06:00:00Z"  # 90 days after 2025-04-01 06:00 UTC
    methods = {m["name"]: m for m in report["mean"]}
    assert methods["uniform"]["pai"]["0.05"] == pytest.approx(1.0, abs=0.03)
    assert methods["model"]["loglik"] > methods["kde"]["loglik"]
    assert methods["model"]["hit_rate"]["0.05"] > methods["recent"]["hit_rate"]["0.05"]


def test_backtest_refuses_a_naive_date_unless_a_timezone_is_given():
    common = ("layers", "backtest", str(POINTS), "--test-days", "60")
    naive = run_cli(*common, "--train-until", "2024-06-01")
    assert naive.returncode == 2 and "no UTC offset" in naive.stderr
    zoned = run_cli(*common, "--train-until", "2024-06-01", "--timezone", "America/Monterrey", "--json")
    assert zoned.returncode == 0, zoned.stderr
    report = json.loads(zoned.stdout)
    assert report["splits"][0]["train_until"] == "2024-06-01T06:00:00Z"
    # one test incident (rey-005, July) after five training ones: reported, not PAI 0 of an empty window
    assert report["splits"][0]["test_incidents"] == 1 and report["splits"][0]["empty"] is False
    empty = run_cli(*common, "--train-until", "2025-06-01T00:00:00Z")
    assert empty.returncode == 0 and "no test incidents in this window" in empty.stdout


def test_server_picks_up_an_activated_layer(tmp_path):
    store = tmp_path / "store"
    first = build(store, POINTS, extra=("--name", "first", "--activate"))
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_LAYER_POLL_SECONDS": "0.2"}
    server = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address, "--layer-dir", str(store)],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_serving(address)
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            request = pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2))
            assert stub.GetCellRisk(request, timeout=5).layer_version == first
            second = build(store, seeds.INCIDENTS_CSV, extra=("--name", "second", "--activate"))
            deadline = time.monotonic() + 15
            while stub.GetCellRisk(request, timeout=5).layer_version != second:
                assert time.monotonic() < deadline, "server did not pick up the activated layer"
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_incremental_build_adds_new_incidents_to_a_stored_layer(tmp_path):
    hours = FIXTURES / "ingest" / "hours_utc.csv"
    store, full_store = tmp_path / "store", tmp_path / "full"
    first = build(store, hours, extra=("--name", "inc", "--activate"))
    result = run_cli("layers", "build", str(POINTS), "--out", str(store), "--name", "inc", "--incremental")
    assert result.returncode == 0, result.stderr
    assert "incremental: 36 incidents of" in result.stderr and "+ 7 new" in result.stderr
    added = result.stdout.strip().splitlines()[-1]
    # the same layer as a full build on both files
    assert added == build(full_store, hours, POINTS, extra=("--name", "inc")) != first
    provenance = json.loads((store / "layers" / added / "provenance.json").read_text())
    assert provenance["incremental_from"] == first
    # an id already in the base rejects the update; a layer without stored incidents is refused
    again = run_cli("layers", "build", str(POINTS), "--out", str(store), "--incremental", "--base", added)
    assert again.returncode == 2 and "'mty-001' is already in layer" in again.stderr
    (store / "layers" / first / "incidents.npz").unlink()
    old = run_cli("layers", "build", str(POINTS), "--out", str(store), "--incremental", "--base", first)
    assert old.returncode == 2 and "holds no incidents" in old.stderr
