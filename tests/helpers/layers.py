"""Which layer a server serves, and waiting for it to switch."""

from __future__ import annotations

import time

import h3

from routerisk.v1 import route_risk_service_pb2 as pb


def served_version(stub) -> str:
    return stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3.latlng_to_cell(19.6, -99.2, 8)), timeout=5).layer_version


def wait_for_version(stub, version: str, timeout: float = 60.0) -> None:
    """Until ``stub``'s server serves ``version``; returns as soon as it does (the watcher polls
    every 2 s, and loading is slower on a busy machine: the bound only stops a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served_version(stub) == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"server did not switch to {version}")
