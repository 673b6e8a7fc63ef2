"""Shared fixtures: a real server on a loopback port, channels and stubs to it."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, settings

import seeds
from geodata.ingest import read_point_incidents
from geodata.layer_store import LayerStore
from geodata.layers import build_layer
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server
from tests.helpers.border import FEED, FeedHandler

# Property tests judge answers, never speed: no per-example deadline and no "too slow" health
# check, which a machine with both cores busy would trip. In CI (CI=true) the examples are derived
# from each test's name, so a CI run cannot fail on an example no earlier run tried; local runs
# keep exploring at random.
settings.register_profile(
    "routerisk",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
    database=None if os.environ.get("CI") == "true" else settings.default.database,
)
settings.load_profile("routerisk")

# The HTTP port (issue 17) defaults to 0.0.0.0:8080: servers started by tests leave it off unless
# a test asks for one (tests/http/ does, on a free loopback port); subprocesses inherit this.
os.environ.setdefault("ROUTERISK_HTTP_ADDRESS", "")

# every log record of the suite (and of the servers it starts) is scanned for coordinates and keys
pytest_plugins = ["tests.log_scan", "tools.reliability.plugin"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One in-process server on the seed data for the whole session."""
    settings = Settings(address="127.0.0.1:0", log_format="json")
    running = start_server(settings)
    load_data(running, settings)
    yield running
    running.stop(0)


@pytest.fixture(scope="session")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> pb_grpc.RouteRiskServiceStub:
    return pb_grpc.RouteRiskServiceStub(channel)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def routerisk_command() -> list[str]:
    """The installed console script next to this interpreter."""
    script = Path(sys.executable).parent / "routerisk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def wait_serving(address: str, timeout: float = 60.0) -> None:
    """Poll grpc.health.v1 until the server reports SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"server at {address} did not become SERVING in {timeout}s")


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """``routerisk serve`` as a real subprocess; yields (address, process, log file)."""
    address = f"127.0.0.1:{free_port()}"
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "ROUTERISK_LOG_FORMAT": "json"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
        try:
            wait_serving(address)
            yield address, process, log_path
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)


@pytest.fixture(scope="module")
def two_layers(tmp_path_factory):
    """A store with two real layers from the seed incidents (before 2025, and all)."""
    incidents = read_point_incidents(seeds.INCIDENTS_CSV)
    early = build_layer(incidents.select(incidents.utc_s < 1_735_689_600), name="early")
    full = build_layer(incidents, name="full")
    store = LayerStore(tmp_path_factory.mktemp("store"))
    store.write(early)
    store.write(full)
    store.activate(early.version)
    return store, early.version, full.version


@pytest.fixture()
def feed_url():
    """A local HTTP server serving the recorded CBP feed; yields (url, handler class)."""
    handler = type("Handler", (FeedHandler,), {"body": FEED.read_bytes()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/bwtnew", handler
    httpd.shutdown()
