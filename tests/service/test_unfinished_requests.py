"""Calls that never finish sending their request cost nothing (issue 15): no handler thread, no
concurrency slot, and they end. Each test is an attack of the outside attack run, through the real
server with raw HTTP/2 streams (``h2``) that send their headers and 2 bytes of a 1,000-byte
message, then wait. On the thread server (``ROUTERISK_SERVER_KIND=threads``) each such stream held
a handler thread, and its concurrency slot, from its arrival; docs/reliability.md lists the bounds."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.grpc.limits import CallSlots
from tests.helpers.auth import KEYS, READER, SCORER, bearer
from tests.helpers.h2_streams import RawConnection
from tests.helpers.servers import serving
from tools.reliability.figures import record

SCORE = "/routerisk.v1.RouteRiskService/ScoreRoute"
CHECK = "/grpc.health.v1.Health/Check"
UNAUTHENTICATED, DEADLINE_EXCEEDED, OK = "16", "4", "0"


def _cell_request() -> pb.GetCellRiskRequest:
    return pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2))


def _codes(statuses: dict[int, str]) -> dict[str, int]:
    names = {str(code.value[0]): code.name for code in grpc.StatusCode}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[names.get(status, status)] = counts.get(names.get(status, status), 0) + 1
    return counts


def _arrived(raw: RawConnection) -> None:
    """Once a complete call opened after the stalled ones is answered on the same connection, the
    server has seen every stalled one (calls of one connection are taken in order). On the thread
    server this health check waits behind them for a thread: the socket's timeout ends the test."""
    check = raw.complete(CHECK, health_pb2.HealthCheckRequest().SerializeToString())
    assert raw.wait_ended([check]) == {check: OK}


def test_unauthenticated_unfinished_calls_are_refused_and_starve_nothing():
    running = serving(api_keys=KEYS)
    raw = RawConnection(running.port, timeout_s=20)
    try:
        stalled = [raw.stalled(SCORE) for _ in range(90)]  # no API key
        _arrived(raw)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            cell = pb_grpc.RouteRiskServiceStub(channel).GetCellRisk(
                _cell_request(), metadata=bearer(READER), timeout=10
            )
            assert cell.cell
        # refused on their headers, without waiting for the message they never finish
        ended = raw.wait_ended(stalled)
        assert set(ended.values()) == {UNAUTHENTICATED}
        record("unfinished-unauthenticated", streams=len(stalled), codes=_codes(ended), health="SERVING", other="OK")
    finally:
        raw.close()
        running.stop(0)


def test_one_tenants_unfinished_calls_hold_no_concurrency_slot():
    limit = 16
    running = serving(api_keys=KEYS, max_concurrent_rpcs=limit)
    raw = RawConnection(running.port, timeout_s=20)
    try:
        stalled = [raw.stalled(SCORE, key=SCORER) for _ in range(limit)]
        _arrived(raw)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            # another tenant is served while acme's calls wait for their messages (they held every
            # slot of the thread server: RESOURCE_EXHAUSTED here)
            assert stub.GetCellRisk(_cell_request(), metadata=bearer(READER), timeout=10).cell
            # and so is acme itself: none of its slots is taken
            assert stub.GetCellRisk(_cell_request(), metadata=bearer(SCORER), timeout=10).cell
        assert not any(stream in raw.statuses for stream in stalled)  # still open, holding nothing
        record("unfinished-one-tenant", streams=len(stalled), cap=limit, other="OK", same_tenant="OK")
    finally:
        raw.close()
        running.stop(0)


def test_a_request_never_completed_ends_at_the_read_timeout():
    running = serving(api_keys=KEYS, request_read_timeout_seconds=0.5)
    raw = RawConnection(running.port, timeout_s=20)
    try:
        stalled = [raw.stalled(SCORE, key=SCORER) for _ in range(3)]
        ended = raw.wait_ended(stalled)
        assert set(ended.values()) == {DEADLINE_EXCEEDED}
        record("unfinished-read-timeout", streams=len(stalled), timeout_s=0.5, codes=_codes(ended))
    finally:
        raw.close()
        running.stop(0)


def test_concurrency_slots_are_capped_per_tenant_and_globally():
    slots = CallSlots(4, per_tenant=2)
    assert slots.take("acme") is None and slots.take("acme") is None
    assert "this tenant has 2 calls in flight" in (slots.take("acme") or "")
    assert slots.take("bravo") is None and slots.take("bravo") is None
    assert "server busy (4 calls in flight)" in (slots.take("carol") or "")
    slots.give_back("acme")
    assert slots.take("carol") is None  # a slot given back serves any tenant under its cap
    assert slots.take("acme") is not None  # the global cap is reached again


def test_without_authentication_only_the_global_cap_applies():
    slots = CallSlots(3, per_tenant=1)
    assert [slots.take("-") for _ in range(3)] == [None, None, None]
    assert slots.take("-") is not None


@pytest.mark.parametrize("per_tenant, expected", [(0, 8), (5, 5)])
def test_the_tenant_cap_defaults_to_half_the_global_one(per_tenant: int, expected: int):
    slots = CallSlots(16, per_tenant)
    taken = [slots.take("acme") for _ in range(16)]
    assert taken.count(None) == expected
