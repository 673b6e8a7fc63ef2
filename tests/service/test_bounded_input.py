"""Hostile input through the real server: sizes are checked before anything is allocated, nesting
is bounded, a caller's mistake is INVALID_ARGUMENT naming the field (never INTERNAL), and error
details never echo megabytes back.

* a 50 MB ``encoded_polyline`` (a ``routerisk serve`` subprocess; its RSS read from /proc);
* a GeoJSON route nested 1,000 levels deep on each of the five RPCs that take a route.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2

import seeds
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.helpers.api import violations_of
from tools.reliability.figures import record

MIB = 1 << 20
HUGE = 50_000_000  # characters: 50 MB, under the 64 MiB message limit
CALLS = 4
# the server may keep some of what a 50 MB message cost the transport (allocator pools); before
# the fix each call kept ~100-150 MiB and its peak was ~700 MiB
MAX_GROWTH_MIB = 80
DEPTH = 1_000
DEEP = '{"type": "LineString", "coordinates": ' + "[" * DEPTH + "]" * DEPTH + "}"
DEPARTURE = Timestamp(seconds=1_741_766_400)  # 2025-03-12T08:00:00Z
# what a BadRequest may repeat of a caller's value (errors.MAX_DETAIL_CHARS and its length note)
MAX_DETAIL = 260


def settled_rss_mib(pid: int, below: float | None = None, seconds: float = 30.0) -> float:
    """The server's RSS once the calls answered have been cleaned up: a handler's frame (and the
    request in it) is released just after the client has its answer, later on a busy machine.
    Reads for at least 1 s and keeps the least; with ``below``, goes on reading (up to
    ``seconds``) until a reading is under it, so the verdict does not depend on how busy the
    machine is, only on whether the memory is given back."""
    readings = []
    started = time.monotonic()
    while True:
        readings.append(memory_mib(pid)["VmRSS"])
        waited = time.monotonic() - started
        if waited >= seconds or (waited >= 1.0 and (below is None or min(readings) < below)):
            return min(readings)
        time.sleep(0.1)


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def demo_route(name: str) -> str:
    return Path(seeds.DEMO_ROUTES[name]).read_text()


@pytest.fixture(scope="module")
def own_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """A ``routerisk serve`` of this module's own, so that its memory is this module's doing."""
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_LOG_FORMAT": "json", "ROUTERISK_METRICS_ADDRESS": ""}
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_serving(address)
        yield address, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_50_mb_polyline_is_refused_without_growing_the_server(own_server):
    address, process = own_server
    options = [("grpc.max_send_message_length", 64 * MIB), ("grpc.max_receive_message_length", 64 * MIB)]
    good = pb.ScoreRouteRequest(route=pb.Route(geojson=demo_route("tijuana_otay-mesa")), departure_time=DEPARTURE)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        stub.ScoreRoute(good, timeout=60)  # warm: the first answer loads what every answer needs
        with pytest.raises(grpc.RpcError):
            stub.ScoreRoute(pb.ScoreRouteRequest(route=pb.Route(encoded_polyline="!!")), timeout=60)
    before = settled_rss_mib(process.pid)
    peak_before = memory_mib(process.pid)["VmHWM"]
    for n in range(CALLS):  # each from a connection of its own, as an attacker's clients would
        field = ("encoded_polyline", "encoded_polyline6")[n % 2]
        huge = pb.ScoreRouteRequest(route=pb.Route(**{field: "_" * HUGE}))
        with grpc.insecure_channel(address, options=options) as channel, pytest.raises(grpc.RpcError) as caught:
            pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(huge, timeout=120)
        del huge
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = violations_of(caught.value)
        assert violation.field == f"route.{field}"
        assert f"is {HUGE} characters long" in violation.description
        assert len(caught.value.details()) < 1000  # nothing of the 50 MB comes back
    with grpc.insecure_channel(address) as channel:
        assert pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(good, timeout=60).distance_km > 30  # still answers
    after = settled_rss_mib(process.pid, below=before + MAX_GROWTH_MIB)
    peak_after = memory_mib(process.pid)["VmHWM"]
    growth = after - before
    record(
        "hostile-polyline",
        calls=CALLS,
        megabytes=HUGE / 1e6,
        rss_before_mib=before,
        rss_growth_mib=growth,
        peak_growth_mib=peak_after - peak_before,
        limit_mib=MAX_GROWTH_MIB,
    )
    print(f"RSS {before:.0f} -> {after:.0f} MiB, peak +{peak_after - peak_before:.0f} MiB")
    assert growth < MAX_GROWTH_MIB, f"RSS grew {growth:.0f} MiB over {CALLS} refused 50 MB polylines"


def deep_request() -> pb.ScoreRouteRequest:
    return pb.ScoreRouteRequest(route=pb.Route(geojson=DEEP), departure_time=DEPARTURE)


def good_request() -> pb.ScoreRouteRequest:
    return pb.ScoreRouteRequest(route=pb.Route(geojson=demo_route("tijuana_otay-mesa")), departure_time=DEPARTURE)


def assert_deep_refused(violations, field: str) -> None:
    assert [v.field for v in violations] == [field]
    assert f"nests {DEPTH + 1} levels deep, more than the limit of 64" in violations[0].description
    assert len(violations[0].description) < MAX_DETAIL


def test_a_deeply_nested_geojson_route_is_invalid_argument_on_every_rpc(stub):
    codes: dict[str, str] = {}

    def refused(name: str, call, request, field: str) -> None:
        with pytest.raises(grpc.RpcError) as caught:
            call(request, timeout=60)
        codes[name] = caught.value.code().name
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, caught.value.details())
        assert_deep_refused(violations_of(caught.value), field)

    refused("ScoreRoute", stub.ScoreRoute, deep_request(), "route.geojson")
    refused(
        "CompareRoutes",
        stub.CompareRoutes,
        pb.CompareRoutesRequest(alternatives=[good_request(), deep_request()]),
        "alternatives[1].route.geojson",
    )
    refused(
        "SuggestDepartures",
        stub.SuggestDepartures,
        pb.SuggestDeparturesRequest(trip=deep_request()),
        "trip.route.geojson",
    )
    # BatchScoreRoutes: the bad item is that item's error, the others are scored
    reply = stub.BatchScoreRoutes(
        pb.BatchScoreRoutesRequest(requests=[good_request(), deep_request(), good_request()]), timeout=60
    )
    assert [r.WhichOneof("result") for r in reply.results] == ["response", "error", "response"]
    assert reply.results[0].response == reply.results[2].response
    assert reply.results[0].response.distance_km > 30
    error = reply.results[1].error
    codes["BatchScoreRoutes (the item)"] = code_pb2.Code.Name(error.code)
    assert error.code == code_pb2.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert error.details[0].Unpack(bad)
    assert_deep_refused(bad.field_violations, "route.geojson")
    # MonitorTrip: the stream ends with INVALID_ARGUMENT naming the message and its field
    first = pb.MonitorTripRequest(
        trip_id="deep-route", time=DEPARTURE, location=pb.LatLng(latitude=32.54, longitude=-116.94)
    )
    first.planned_route.geojson = DEEP
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.MonitorTrip(iter([first]), timeout=60))
    codes["MonitorTrip"] = caught.value.code().name
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert_deep_refused(violations_of(caught.value), "positions[0].planned_route.geojson")
    record("hostile-geojson", depth=DEPTH, codes=codes)


def test_a_request_with_thousands_of_mistakes_gets_a_bounded_bad_request(stub):
    """Every bad stop is a violation: the BadRequest lists what fits in a few KiB (the status travels
    in trailing metadata, which clients refuse past 8 KiB) and counts the rest."""
    stops = [pb.PlannedStop(location=pb.LatLng(latitude=123.0, longitude=500.0)) for _ in range(5_000)]
    request = pb.ScoreRouteRequest(route=pb.Route(geojson=demo_route("tijuana_otay-mesa")), stops=stops)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScoreRoute(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    violations = violations_of(caught.value)
    assert 10 <= len(violations) <= 100
    assert violations[0].field == "stops[0].location.latitude"
    assert violations[-1].description.endswith(f"(and {10_000 - len(violations)} more violations not listed)")
    assert sum(len(v.field) + len(v.description) for v in violations) < 4_500
    assert len(caught.value.details()) <= 600


def test_what_a_bad_request_repeats_of_a_value_is_capped():
    from geodata.errors import InputError, Violation
    from service.grpc.errors import bad_request_status

    status = bad_request_status(InputError([Violation("cell", "x" * 1_000_000), Violation("time", "y")]))
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    first, second = bad.field_violations
    assert first.description == "x" * 200 + "… (1000000 characters)"
    assert (second.field, second.description) == ("time", "y")
    assert len(status.message) <= 500 + 30


def test_every_unary_servicer_method_can_fail_without_raising():
    """A failed call returns an empty response of its type with the status set (no abort, so no
    reference cycle keeps the request): every decorated method's return annotation resolves."""
    from service.grpc import admin_servicer, servicer
    from service.grpc.errors import _empty_response

    methods = [
        getattr(cls, name)
        for cls in (servicer.RouteRiskServicer, admin_servicer.RouteRiskAdminServicer)
        for name in dir(cls)
        if name[:1].isupper() and name != "MonitorTrip"
    ]
    assert len(methods) >= 9
    for method in methods:
        empty = _empty_response(method)
        assert empty is not None and type(empty).__name__.endswith("Response"), method.__name__
