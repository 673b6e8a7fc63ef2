"""Determinism and consistency.

- The same requests to two ``routerisk serve`` processes (different hash seeds) and to one of
  them after a restart give byte-identical responses (deterministic serialisation; only the
  ``cached`` flag may differ).
- While layers are activated back and forth under concurrent calls, every answer equals the
  answer of the layer version it names: no response mixes two layer versions.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.message import Message

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import load_data, start_server
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.helpers.api import MEXICO_CITY_BOX, QUERETARO, demo_request, line_request
from tests.helpers.layers import wait_for_version
from tests.reliability.figures import record
from tests.reliability.load import score_request

AT = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)


def _cell(lat: float, lng: float, at: datetime | None = None) -> pb.GetCellRiskRequest:
    request = pb.GetCellRiskRequest(location=pb.LatLng(latitude=lat, longitude=lng))
    if at is not None:
        request.time.FromDatetime(at)
    return request


def _crossings() -> pb.ListBorderCrossingsRequest:
    request = pb.ListBorderCrossingsRequest()
    request.time.FromDatetime(AT)
    return request


CALLS: list[tuple[str, Callable[[], Message]]] = [
    ("ScoreRoute", lambda: demo_request("mexico-city_laredo")),
    ("ScoreRoute", lambda: demo_request("manzanillo_guadalajara", crossing_lane=pb.CROSSING_LANE_FAST)),
    ("ScoreRoute", lambda: demo_request("tijuana_otay-mesa", average_speed_kmh=45.0)),
    ("ScoreRoute", lambda: score_request(3)),
    (
        "ScoreRoute",
        lambda: line_request(QUERETARO, stops=[pb.PlannedStop(location=pb.LatLng(latitude=20.6, longitude=-100.2))]),
    ),
    ("BatchScoreRoutes", lambda: pb.BatchScoreRoutesRequest(requests=[score_request(n) for n in range(6)])),
    (
        "CompareRoutes",
        lambda: pb.CompareRoutesRequest(alternatives=[demo_request("ciudad-juarez_el-paso"), score_request(9)]),
    ),
    ("GetCellRisk", lambda: _cell(19.6, -99.2)),
    ("GetCellRisk", lambda: _cell(25.7, -100.3, AT)),
    ("ListHotspots", lambda: pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=40, page_size=15)),
    ("ListBorderCrossings", _crossings),
    ("SuggestDepartures", lambda: _departures()),
    ("ExportAvoidAreas", lambda: pb.ExportAvoidAreasRequest(bounds=MEXICO_CITY_BOX, min_level=pb.RISK_LEVEL_MODERATE)),
]


def _positions() -> list[pb.MonitorTripRequest]:
    route = demo_request("mexico-city_laredo").route
    messages = []
    for k, point in enumerate(route.line.points[:40]):
        message = pb.MonitorTripRequest(location=point, speed_kmh=0.0 if 10 <= k < 30 else 80.0)
        message.time.FromSeconds(int(AT.timestamp()) + 60 * k)
        messages.append(message)
    messages[0].planned_route.CopyFrom(route)
    return messages


def _departures() -> pb.SuggestDeparturesRequest:
    request = pb.SuggestDeparturesRequest(trip=demo_request("mexico-city_laredo"))
    request.window.FromSeconds(6 * 3600)
    return request


def canonical(message: Message) -> bytes:
    """The response with the ``cached`` flags cleared, serialised deterministically."""
    copy = type(message)()
    copy.CopyFrom(message)
    responses = []
    if isinstance(copy, pb.ScoreRouteResponse):
        responses = [copy]
    elif isinstance(copy, pb.BatchScoreRoutesResponse):
        responses = [r.response for r in copy.results if r.HasField("response")]
    elif isinstance(copy, pb.CompareRoutesResponse):
        responses = [r.result for r in copy.ranked]
    elif isinstance(copy, pb.SuggestDeparturesResponse):
        responses = [r.result for r in copy.departures]
    for response in responses:
        response.cached = False
    return copy.SerializeToString(deterministic=True)


def answers(address: str) -> list[bytes]:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        out = [canonical(getattr(stub, method)(make(), timeout=60)) for method, make in CALLS]
        # the second page of hotspots, through the token the first page gave
        first = stub.ListHotspots(pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=40, page_size=15), timeout=30)
        follow = pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=40, page_size=15, page_token=first.next_page_token)
        out.append(canonical(stub.ListHotspots(follow, timeout=30)))
        # a trip without an id lives only as long as its stream: the same positions, the same answers
        out.append(b"".join(canonical(r) for r in stub.MonitorTrip(iter(_positions()), timeout=60)))
        return out


def serve(hash_seed: str, address: str | None = None) -> tuple[subprocess.Popen, str]:
    address = address or f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "ROUTERISK_METRICS_ADDRESS": ""}
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL, env=env
    )
    wait_serving(address)
    return process, address


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    assert process.wait(timeout=60) == 0


@pytest.mark.slow
def test_same_requests_same_bytes_across_processes_and_a_restart(server_process):
    address_a, _, _ = server_process
    process_b, address_b = serve("1")
    try:
        from_a = answers(address_a)
        from_b = answers(address_b)
        again_b = answers(address_b)  # now from B's cache
    finally:
        stop(process_b)
    process_c, _ = serve("2", address_b)  # B restarted on its port
    try:
        after_restart = answers(address_b)
    finally:
        stop(process_c)
    differ = [
        i
        for i, (a, b, c, d) in enumerate(zip(from_a, from_b, again_b, after_restart, strict=True))
        if len({a, b, c, d}) > 1
    ]
    record("determinism", "ci", requests=len(from_a), processes=3, differing=len(differ))
    assert differ == [], f"calls {differ} answered differently"


def _layer_calls() -> list[tuple[str, Message]]:
    requests = [("ScoreRoute", score_request(n)) for n in range(8)]
    requests += [("ScoreRoute", demo_request("mexico-city_laredo"))]
    requests += [("GetCellRisk", _cell(19.6, -99.2, AT)), ("GetCellRisk", _cell(20.6, -100.4))]
    requests += [("ListHotspots", pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=30, page_size=30))]
    return requests


def test_no_answer_mixes_two_layer_versions(two_layers):
    store, early, full = two_layers
    store.activate(early)
    settings = Settings(address="127.0.0.1:0", layer_dir=store.root, layer_poll_seconds=0.05)
    running = start_server(settings)
    load_data(running, settings)
    calls = _layer_calls()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            reference: dict[str, list[bytes]] = {}
            for version in (early, full):
                store.activate(version)
                wait_for_version(stub, version)
                reference[version] = [canonical(getattr(stub, m)(r, timeout=60)) for m, r in calls]
            assert reference[early] != reference[full]
            seen: dict[str, int] = {early: 0, full: 0}
            mixed: list[tuple[int, str]] = []
            errors: list[str] = []
            stop_event = threading.Event()
            lock = threading.Lock()

            def client(offset: int) -> None:
                i = offset
                while not stop_event.is_set():
                    method, request = calls[i % len(calls)]
                    i += 1
                    try:
                        response = getattr(stub, method)(request, timeout=30)
                    except grpc.RpcError as exc:
                        with lock:
                            errors.append(exc.code().name)
                        continue
                    version = response.layer_version
                    with lock:
                        seen[version] = seen.get(version, 0) + 1
                        if reference.get(version, [None] * len(calls))[(i - 1) % len(calls)] != canonical(response):
                            mixed.append(((i - 1) % len(calls), version))

            threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            try:
                for version in (early, full) * 4:
                    store.activate(version)
                    wait_for_version(stub, version)
                    time.sleep(0.1)
            finally:
                stop_event.set()
                for thread in threads:
                    thread.join(timeout=30)
    finally:
        running.stop(0)
    record("layer-consistency", "ci", answers=sum(seen.values()), activations=8, mixed=len(mixed), errors=len(errors))
    assert errors == [] and mixed == [], (errors[:5], mixed[:5])
    assert seen[early] > 0 and seen[full] > 0 and set(seen) == {early, full}
