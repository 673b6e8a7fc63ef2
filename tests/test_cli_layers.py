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
    version = build(store, seeds.INCIDENTS_CSV, extra=("--name", "seedcopy", "--synthetic"))
    assert version.startswith("seedcopy-")
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


def test_backtest_table_and_json():
    common = ("layers", "backtest", str(seeds.INCIDENTS_CSV), "--train-until", "2025-07-01", "--test-days", "90")
    table = run_cli(*common)
    assert table.returncode == 0, table.stderr
    for method in ("model", "counts", "kde", "uniform"):
        assert method in table.stdout
    report = json.loads(run_cli(*common, "--json").stdout)
    methods = {m["name"]: m for m in report["methods"]}
    assert methods["uniform"]["pai"]["0.05"] == pytest.approx(1.0)
    assert methods["model"]["hit_rate"]["0.05"] > methods["counts"]["hit_rate"]["0.05"]


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
