"""Authentication, TLS and limits through real channels."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from tests.helpers.api import QUERETARO, line_request
from tests.helpers.auth import KEYS, READER, SCORER, bearer
from tests.helpers.servers import serving

CELL = pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.6, longitude=-99.2))


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    try:
        call(*args, timeout=10, **kwargs)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def secured():
    """Keys, no rate limit: what one test calls cannot drain another test's bucket."""
    running = serving(api_keys=KEYS)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel), channel
    running.stop(0)


@pytest.fixture()
def rate_limited():
    """Keys and 5 calls a second per tenant (3 saved up), with full buckets."""
    running = serving(api_keys=KEYS, rate_limit_per_second=5, rate_limit_burst=3)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel)
    running.stop(0)


def test_keys_and_permissions(secured):
    stub, channel = secured
    request = line_request(QUERETARO)
    assert code_of(stub.ScoreRoute, request) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(stub.ScoreRoute, request, metadata=bearer("rr_wrong")) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(stub.ScoreRoute, request, metadata=[("authorization", SCORER)]) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(stub.ScoreRoute, request, metadata=bearer(READER)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(stub.GetCellRisk, CELL, metadata=bearer(READER)) == grpc.StatusCode.OK
    assert code_of(stub.ScoreRoute, request, metadata=bearer(SCORER)) == grpc.StatusCode.OK
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING  # open without a key


def test_rate_limit_per_tenant(rate_limited):
    stub = rate_limited
    codes = [code_of(stub.GetCellRisk, CELL, metadata=bearer(READER)) for _ in range(8)]
    assert codes[0] == grpc.StatusCode.OK
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    # the other tenant's bucket is its own
    assert code_of(stub.GetCellRisk, CELL, metadata=bearer(SCORER)) == grpc.StatusCode.OK


def test_concurrency_cap_sheds_quickly_and_health_answers():
    running = serving(max_workers=1, max_concurrent_rpcs=1)
    big = pb.BatchScoreRoutesRequest(
        requests=[line_request([(19.0 + i * 0.001, -99.0), (25.0, -100.0)]) for i in range(60)]
    )
    codes: list[grpc.StatusCode] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            threads = [
                threading.Thread(target=lambda: codes.append(code_of(stub.BatchScoreRoutes, big))) for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            time.sleep(0.05)
            started = time.monotonic()
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            assert time.monotonic() - started < 1.0
            for thread in threads:
                thread.join(timeout=60)
    finally:
        running.stop(0)
    assert grpc.StatusCode.OK in codes and grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_calls_refused_or_abandoned_before_they_run_give_their_slot_back():
    """Slots are taken as a call arrives: calls refused by authentication, and calls whose
    deadline passed before a handler thread took them, must not keep theirs."""
    running = serving(max_workers=1, max_concurrent_rpcs=1, api_keys=KEYS)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            for _ in range(20):
                assert code_of(stub.GetCellRisk, CELL) == grpc.StatusCode.UNAUTHENTICATED
            futures = [stub.GetCellRisk.future(CELL, timeout=0.001, metadata=bearer(SCORER)) for _ in range(50)]
            for future in futures:
                with contextlib.suppress(grpc.RpcError):
                    future.result()
            gc.collect()
            # the abandoned calls may still sit in the server's queue, holding the slot a moment
            deadline = time.monotonic() + 5
            while code_of(stub.GetCellRisk, CELL, metadata=bearer(SCORER)) != grpc.StatusCode.OK:
                assert time.monotonic() < deadline, "the slot was never given back"
                time.sleep(0.05)
            for _ in range(5):  # one at a time, so each needs the single slot
                assert code_of(stub.GetCellRisk, CELL, metadata=bearer(SCORER)) == grpc.StatusCode.OK
    finally:
        running.stop(0)


def test_server_caps_calls_without_a_deadline():
    running = serving(deadline_cap_seconds=0.05, cache_max_entries=0)
    batch = pb.BatchScoreRoutesRequest(
        requests=[line_request([(19.0 + i * 0.01, -99.0), (26.0, -101.0)]) for i in range(200)]
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.BatchScoreRoutes(batch)  # no client deadline
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        running.stop(0)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=routerisk-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            f"{name}.pem",
        )
    return {name: folder / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    try:
        return make_certificates(tmp_path_factory.mktemp("tls"))
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl unavailable: {exc}")


def test_tls_and_mutual_tls(certificates):
    c = certificates
    ca = c["ca.pem"].read_bytes()
    tls = serving(tls_cert_file=c["server.pem"], tls_key_file=c["server.key"])
    mtls = serving(tls_cert_file=c["server.pem"], tls_key_file=c["server.key"], tls_client_ca_file=c["ca.pem"])
    try:
        secure = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(f"127.0.0.1:{tls.port}", secure) as channel:
            assert code_of(pb_grpc.RouteRiskServiceStub(channel).GetCellRisk, CELL) == grpc.StatusCode.OK
        with grpc.insecure_channel(f"127.0.0.1:{tls.port}") as channel:
            assert code_of(pb_grpc.RouteRiskServiceStub(channel).GetCellRisk, CELL) == grpc.StatusCode.UNAVAILABLE
        with grpc.secure_channel(f"127.0.0.1:{mtls.port}", secure) as channel:
            assert code_of(pb_grpc.RouteRiskServiceStub(channel).GetCellRisk, CELL) == grpc.StatusCode.UNAVAILABLE
        client = grpc.ssl_channel_credentials(ca, c["client.key"].read_bytes(), c["client.pem"].read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{mtls.port}", client) as channel:
            assert code_of(pb_grpc.RouteRiskServiceStub(channel).GetCellRisk, CELL) == grpc.StatusCode.OK
    finally:
        tls.stop(0)
        mtls.stop(0)


def test_new_methods_are_not_open(secured):
    stub, _ = secured
    departures = pb.SuggestDeparturesRequest(trip=line_request(QUERETARO))
    avoid = pb.ExportAvoidAreasRequest(bounds=pb.BoundingBox(west=-100.5, south=20, east=-100, north=21))
    assert code_of(stub.SuggestDepartures, departures) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(stub.SuggestDepartures, departures, metadata=bearer(READER)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(stub.ExportAvoidAreas, avoid) == grpc.StatusCode.UNAUTHENTICATED
    assert stub.ExportAvoidAreas(avoid, metadata=bearer(READER), timeout=30).layer_version


def test_every_method_of_our_services_needs_a_listed_permission():
    """A new RPC must be added to the table; until it is, it needs admin (closed, never open)."""
    from routerisk.v1 import route_risk_admin_service_pb2, route_risk_service_pb2
    from service.grpc.auth import METHOD_PERMISSIONS, permission_for

    for module in (route_risk_service_pb2, route_risk_admin_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                path = f"/{service.full_name}/{method.name}"
                assert path in METHOD_PERMISSIONS, f"{path} has no permission"
    assert permission_for("/routerisk.v1.RouteRiskService/NotYetListed") == "admin"
    assert permission_for("/grpc.health.v1.Health/Check") is None
