"""Layers are checked before they serve (issue 15): every bad layer is refused through the real
server, counted, logged, and the old layer keeps answering; a file changed under a running
``routerisk serve`` cannot kill it; a server without a valid layer says NOT_SERVING."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import h3
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

import seeds
from geodata.ingest import read_point_incidents
from geodata.layer_files import LayerRejectedError
from geodata.layer_store import LayerStore
from geodata.layers import RiskLayer, build_layer, with_version
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.service.test_api import QUERETARO, line_request

WAIT_S = 30.0


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("routerisk_layer_rejected_total", {"reason": reason}) or 0.0


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture(scope="module")
def base_layer() -> RiskLayer:
    incidents = read_point_incidents(seeds.INCIDENTS_CSV)
    return build_layer(incidents.select(incidents.utc_s < 1_735_689_600), name="good")


def variant(layer: RiskLayer, name: str, **arrays: np.ndarray) -> RiskLayer:
    """The layer with other arrays, under its own content version (hashes recorded as for any build)."""
    return with_version(replace(layer, metadata={**layer.metadata, "name": name}, **arrays))


def nan_layer(layer: RiskLayer) -> RiskLayer:
    intensity = np.array(layer.intensity)
    intensity[len(intensity) // 2, 5] = np.nan
    return variant(layer, "nan", intensity=intensity)


def inf_layer(layer: RiskLayer) -> RiskLayer:
    intensity = np.array(layer.intensity)
    intensity[0, 0] = np.inf
    return variant(layer, "inf", intensity=intensity)


def negative_layer(layer: RiskLayer) -> RiskLayer:
    return variant(layer, "negative", intensity=-np.asarray(layer.intensity))


def empty_layer(layer: RiskLayer) -> RiskLayer:
    return with_version(
        RiskLayer(
            resolution=layer.resolution,
            cells=np.empty(0, dtype=np.uint64),
            intensity=np.empty((0, 168), dtype=np.float32),
            incident_count=np.empty(0, dtype=np.int32),
            last_incident_s=np.empty(0, dtype=np.int64),
            metadata={"name": "empty"},
        )
    )


def with_header(store: LayerStore, layer: RiskLayer, name: str, **changes: object) -> str:
    """A stored copy of ``layer`` under another version whose layer.json has ``changes``."""
    source = store.folder(layer.version)
    version = f"{name}-000000000000"
    target = store.root / "layers" / version
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    header = json.loads((target / "layer.json").read_text())
    header.update(version=version, **changes)
    (target / "layer.json").write_text(json.dumps(header))
    return version


@pytest.fixture()
def store(tmp_path: Path, base_layer: RiskLayer) -> LayerStore:
    store = LayerStore(tmp_path / "store")
    store.write(base_layer)
    store.activate(base_layer.version)
    return store


@pytest.fixture()
def served(store: LayerStore) -> Iterator[tuple[RunningServer, pb_grpc.RouteRiskServiceStub]]:
    settings = Settings(address="127.0.0.1:0", layer_dir=store.root, layer_poll_seconds=0.05, cache_max_entries=0)
    running = start_server(settings)
    load_data(running, settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, pb_grpc.RouteRiskServiceStub(channel)
    running.stop(0)


def point_at(store: LayerStore, version: str) -> None:
    """What the file watcher sees after a manual edit or a copy: ACTIVE names the version."""
    (store.root / "ACTIVE").write_text(version + "\n")


def served_version(stub: pb_grpc.RouteRiskServiceStub) -> str:
    return stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3.latlng_to_cell(19.6, -99.2, 8)), timeout=10).layer_version


def assert_refused_and_old_serving(
    store: LayerStore, stub: pb_grpc.RouteRiskServiceStub, version: str, reason: str, good: str
) -> None:
    before = rejected(reason)
    expected = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
    point_at(store, version)
    eventually(lambda: rejected(reason) > before, f"layer {version} refused ({reason})")
    answer = stub.ScoreRoute(line_request(QUERETARO), timeout=10)
    assert answer.layer_version == good == served_version(stub)
    assert answer.score == expected.score and np.isfinite(answer.score)
    with pytest.raises(LayerRejectedError) as refused:  # `routerisk layers activate` refuses it too
        store.activate(version)
    assert refused.value.reason == reason
    assert store.active_version() == version  # the manual edit stays; only the server refused it
    point_at(store, good)


@pytest.mark.parametrize("make", [nan_layer, inf_layer, negative_layer, empty_layer], ids=lambda f: f.__name__)
def test_bad_values_are_refused_and_the_old_layer_serves(store, served, base_layer, make):
    _, stub = served
    bad = make(base_layer)
    store.write(bad)
    reason = "empty" if make is empty_layer else "values"
    assert_refused_and_old_serving(store, stub, bad.version, reason, base_layer.version)


@pytest.mark.parametrize("resolution", ["8", -1, 16, 8.0, True, None])
def test_metadata_resolution_of_the_wrong_type_or_range_is_refused(store, served, base_layer, resolution):
    _, stub = served
    version = with_header(store, base_layer, "resolution", resolution=resolution)
    assert_refused_and_old_serving(store, stub, version, "metadata", base_layer.version)
    with grpc.insecure_channel(f"127.0.0.1:{served[0].port}") as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_a_file_that_does_not_match_its_hash_is_refused(store, served, base_layer):
    _, stub = served
    version = with_header(store, base_layer, "flipped")
    path = store.root / "layers" / version / "intensity.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit: still finite, still non-negative; only the hash can tell
    path.write_bytes(bytes(data))
    assert_refused_and_old_serving(store, stub, version, "hash", base_layer.version)


def test_an_old_layer_without_hashes_is_verified_by_its_content_version(store, served, base_layer):
    _, stub = served
    folder = store.folder(base_layer.version)
    header = json.loads((folder / "layer.json").read_text())
    assert set(header["sha256"]) >= {"cells.npy", "intensity.npy"}  # recorded at build time
    old = store.root / "old-store"
    (old / "layers" / base_layer.version).mkdir(parents=True)
    for path in folder.iterdir():
        (old / "layers" / base_layer.version / path.name).write_bytes(path.read_bytes())
    del header["sha256"]
    (old / "layers" / base_layer.version / "layer.json").write_text(json.dumps(header))
    assert LayerStore(old).load(base_layer.version).version == base_layer.version  # an honest old layer loads
    renamed = with_header(store, base_layer, "forged")  # its content is another version
    header["version"] = renamed
    (store.root / "layers" / renamed / "layer.json").write_text(json.dumps(header))
    assert_refused_and_old_serving(store, stub, renamed, "hash", base_layer.version)


def test_a_layer_folder_that_is_a_symlink_out_of_the_store_is_refused(store, served, base_layer, tmp_path):
    _, stub = served
    outside = LayerStore(tmp_path / "elsewhere")
    evil = nan_layer(base_layer)
    outside.write(evil)
    (store.root / "layers" / evil.version).symlink_to(outside.folder(evil.version), target_is_directory=True)
    assert_refused_and_old_serving(store, stub, evil.version, "path", base_layer.version)


def test_a_layer_file_that_is_a_symlink_out_of_the_store_is_refused(store, served, base_layer, tmp_path):
    _, stub = served
    version = with_header(store, base_layer, "linked")
    target = tmp_path / "intensity.npy"
    path = store.root / "layers" / version / "intensity.npy"
    path.rename(target)
    path.symlink_to(target)
    assert_refused_and_old_serving(store, stub, version, "path", base_layer.version)


def test_a_truncated_file_is_refused(store, served, base_layer):
    _, stub = served
    version = with_header(store, base_layer, "short")
    path = store.root / "layers" / version / "intensity.npy"
    os.truncate(path, path.stat().st_size - 4)
    assert_refused_and_old_serving(store, stub, version, "size", base_layer.version)


def test_without_a_valid_layer_health_is_not_serving_until_one_is_activated(store, base_layer):
    bad = nan_layer(base_layer)
    store.write(bad)
    point_at(store, bad.version)
    before = rejected("values")
    settings = Settings(address="127.0.0.1:0", layer_dir=store.root, layer_poll_seconds=0.05)
    running = start_server(settings)
    try:
        load_data(running, settings)
        assert rejected("values") == before + 1
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub = pb_grpc.RouteRiskServiceStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as refused:
                stub.ScoreRoute(line_request(QUERETARO), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert rejected("values") == before + 1  # refused once, not at every poll
            store.activate(base_layer.version)
            eventually(
                lambda: (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                    == health_pb2.HealthCheckResponse.SERVING
                ),
                "SERVING after a valid layer was activated",
            )
            assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).layer_version == base_layer.version
    finally:
        running.stop(0)


def test_a_layer_truncated_under_a_running_server_cannot_kill_it(store, base_layer, tmp_path):
    """``routerisk serve`` as a process: a SIGBUS would kill it. The arrays are in memory."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_LOG_FORMAT": "json", "ROUTERISK_LAYER_DIR": str(store.root)}
    env["ROUTERISK_METRICS_ADDRESS"] = ""
    env["ROUTERISK_CACHE_MAX_ENTRIES"] = "0"  # every answer computed from the layer
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
    try:
        wait_serving(address)
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            requests = [line_request(QUERETARO), line_request([(19.45, -99.15), (20.59, -100.39), (21.88, -102.29)])]
            before = [stub.ScoreRoute(r, timeout=30) for r in requests]
            assert all(b.layer_version == base_layer.version for b in before), [b.layer_version for b in before]
            assert any(b.score > 0 for b in before), [b.score for b in before]
            folder = store.folder(base_layer.version)
            for path in folder.glob("*.npy"):
                os.truncate(path, 128)  # the .npy header alone: every row is gone from disk
            after = [stub.ScoreRoute(r, timeout=30) for r in requests]
            assert process.poll() is None, log_path.read_text()[-2000:]
            assert [a.score for a in after] == [b.score for b in before]
            assert [len(a.hotspots) for a in after] == [len(b.hotspots) for b in before]
            cell = stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3.latlng_to_cell(19.6, -99.2, 8)), timeout=10)
            assert cell.layer_version == base_layer.version
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert process.returncode == 0, log_path.read_text()[-2000:]
