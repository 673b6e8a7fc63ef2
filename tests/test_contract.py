"""The API contract: buf lint clean, committed stubs identical to a fresh generation."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_committed_stubs_are_fresh():
    result = run_generate("--check")
    assert result.returncode == 0, result.stderr


def test_buf_lint_is_clean():
    result = run_generate("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_contract_names_clients_rely_on():
    from routerisk.v1 import route_risk_service_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["RouteRiskService"]
    assert {m.name for m in service.methods} >= {"ScoreRoute", "BatchScoreRoutes", "GetCellRisk", "ListBorderCrossings"}
    assert pb.DESCRIPTOR.package == "routerisk.v1"
    route = pb.DESCRIPTOR.message_types_by_name["Route"]
    assert [f.name for f in route.oneofs_by_name["geometry"].fields] == [
        "line",
        "encoded_polyline",
        "encoded_polyline6",
        "geojson",
    ]
