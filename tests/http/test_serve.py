"""``routerisk serve`` with its HTTP port: both ports answer from one process, its log lines are
JSON without coordinates, and SIGTERM drains both and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx
from google.protobuf import json_format

from tests.conftest import free_port, routerisk_command, wait_serving
from tests.helpers.api import QUERETARO, line_request


def test_serve_answers_on_both_ports_and_stops_cleanly(tmp_path):
    grpc_address, http_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_HTTP_ADDRESS": http_address, "ROUTERISK_LOG_FORMAT": "json"}
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", grpc_address], stderr=log, env=env)
        try:
            wait_serving(grpc_address)
            body = json_format.MessageToJson(line_request(QUERETARO))
            url = f"http://{http_address}/routerisk.v1.RouteRiskService/ScoreRoute"
            answer = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["level"].startswith("RISK_LEVEL_")
            assert httpx.get(f"http://{http_address}/healthz", timeout=30).status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=90)
    assert code == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line["message"] == "rpc" and line.get("transport") == "connect"]
    assert [(c["method"], c["code"]) for c in calls] == [("ScoreRoute", "OK")]
    assert any(line["message"] == "http listening" for line in lines)
    assert "20.4" not in log_path.read_text() and "-100.2" not in log_path.read_text()


def test_an_http_port_that_cannot_open_leaves_no_grpc_server_running():
    """The HTTP port taken by another process: the start fails whole, the gRPC port is closed again
    (not a half-started server listening with nothing to stop it)."""
    import socket

    import pytest

    from service.config import Settings
    from service.grpc.server import start_server

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = free_port()
        settings = Settings(
            address=f"127.0.0.1:{grpc_port}", http_address=f"127.0.0.1:{taken.getsockname()[1]}", log_format="json"
        )
        with pytest.raises(OSError):
            start_server(settings)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", grpc_port)) != 0  # nothing listens on the gRPC port
