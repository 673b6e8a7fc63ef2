"""Layers behind a real server: hot activation from the store, hotspots, cell bounds."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import load_data, start_server
from tests.helpers.api import MEXICO_CITY_BOX, QUERETARO, assert_invalid, line_request
from tests.helpers.layers import served_version, wait_for_version
from tools.reliability.figures import record


@pytest.fixture()
def store_server(two_layers):
    store, early, _ = two_layers
    store.activate(early)
    settings = Settings(address="127.0.0.1:0", layer_dir=store.root, layer_poll_seconds=0.1)
    running = start_server(settings)
    load_data(running, settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, pb_grpc.RouteRiskServiceStub(channel)
    running.stop(0)


def test_serves_the_active_layer_and_switches_without_restart(two_layers, store_server):
    store, early, full = two_layers
    _, stub = store_server
    assert served_version(stub) == early
    store.activate(full)
    wait_for_version(stub, full)
    assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).layer_version == full


def test_activation_under_load_loses_no_request(two_layers, store_server):
    store, early, full = two_layers
    _, stub = store_server
    errors: list[BaseException] = []
    versions: set[str] = set()
    calls: list[int] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            request = line_request([(20.40 + offset * 0.01, -100.2), (20.90, -100.2 + n * 1e-4)])
            try:
                versions.add(stub.ScoreRoute(request, timeout=10).layer_version)
                calls.append(1)
            except grpc.RpcError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for version in (full, early, full):
            store.activate(version)
            wait_for_version(stub, version)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    record("layer-activation", "ci", calls=len(calls), errors=len(errors), activations=3, versions=len(versions))
    assert errors == []
    assert versions <= {early, full} and full in versions


def test_a_broken_layer_leaves_the_old_one_serving(two_layers, store_server, caplog):
    store, early, _ = two_layers
    _, stub = store_server
    caplog.set_level(logging.INFO, logger="service.store.serving")
    broken = store.root / "layers" / "broken-000000000000"
    broken.mkdir(exist_ok=True)
    (broken / "layer.json").write_text('{"resolution": 8, "version": "broken-000000000000", "metadata": {}}')
    (store.root / "ACTIVE").write_text("broken-000000000000\n")  # what a bad manual edit would do
    try:

        def tried_the_broken_layer() -> bool:
            return any(
                r.getMessage() == "layer refused; keeping the current layer"
                and getattr(r, "layer_version", None) == "broken-000000000000"
                for r in caplog.records
            )

        # evidence that the watcher polled and tried to load it, not merely that time passed
        deadline = time.monotonic() + 60.0  # returns at the first poll that tried it
        while not tried_the_broken_layer():
            assert time.monotonic() < deadline, "the watcher never tried the broken layer"
            time.sleep(0.05)
        assert served_version(stub) == early
        assert stub.ScoreRoute(line_request(QUERETARO), timeout=10).layer_version == early
    finally:
        store.activate(early)


def test_hotspots_rank_page_and_agree_with_cells(stub):
    first = stub.ListHotspots(pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=30, page_size=10), timeout=10)
    assert first.total_size == 30 and len(first.hotspots) == 10 and first.next_page_token
    pages = list(first.hotspots)
    token = first.next_page_token
    while token:
        page = stub.ListHotspots(
            pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=30, page_size=10, page_token=token), timeout=10
        )
        pages.extend(page.hotspots)
        token = page.next_page_token
    whole = stub.ListHotspots(pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=30, page_size=100), timeout=10)
    assert [h.cell for h in pages] == [h.cell for h in whole.hotspots]
    risks = [h.risk for h in pages]
    assert risks == sorted(risks, reverse=True)
    for hotspot in pages[:3]:
        assert -99.6 <= hotspot.center.longitude <= -98.6 and 19.0 <= hotspot.center.latitude <= 20.0
        assert hotspot.risk_lower < hotspot.risk < hotspot.risk_upper
        cell = stub.GetCellRisk(pb.GetCellRiskRequest(cell=hotspot.cell), timeout=5)
        assert cell.risk == pytest.approx(hotspot.risk)
        assert cell.risk_lower == pytest.approx(hotspot.risk_lower)
        assert cell.incident_count == hotspot.incident_count


def test_hotspots_at_night_differ_from_the_weekly_mean(stub):
    request = pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=5)
    request.time.FromJsonString("2025-03-12T08:00:00Z")  # 02:00 in Mexico City
    night = stub.ListHotspots(request, timeout=10)
    mean = stub.ListHotspots(pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=5), timeout=10)
    assert night.hotspots[0].risk > mean.hotspots[0].risk


def test_hotspot_request_errors(stub):
    bad_box = pb.ListHotspotsRequest(bounds=pb.BoundingBox(west=-99, south=20, east=-98, north=19))
    assert_invalid(stub.ListHotspots, bad_box, "bounds.south")
    assert_invalid(stub.ListHotspots, pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=10_001), "top")
    assert_invalid(
        stub.ListHotspots, pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, page_token="garbage"), "page_token"
    )
    first = stub.ListHotspots(pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=30, page_size=10), timeout=10)
    other_query = pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=31, page_size=10, page_token=first.next_page_token)
    assert_invalid(stub.ListHotspots, other_query, "page_token", "different query")
