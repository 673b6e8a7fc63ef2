"""Keys, permissions, per-tenant rates and deadlines over HTTP: the gRPC server's rules and
counters, shared (a tenant's rate counts its calls over both transports)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.grpc.server import RunningServer
from tests.helpers.api import QUERETARO, line_request
from tests.helpers.auth import KEYS, READER, SCORER, bearer
from tests.helpers.servers import serving
from tests.http.conftest import Connect

ADMIN_SERVICE = "routerisk.v1.RouteRiskAdminService"


@pytest.fixture(scope="module")
def keyed() -> Iterator[RunningServer]:
    running = serving(http_address="127.0.0.1:0", api_keys=KEYS)
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def client(keyed: RunningServer) -> Connect:
    assert keyed.http is not None
    return Connect(f"http://127.0.0.1:{keyed.http.port}")


def _key(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_no_key_is_401_unauthenticated(client):
    answer = client.call("ScoreRoute", line_request(QUERETARO))
    assert (answer.status, answer.code) == (401, "unauthenticated")


def test_a_wrong_key_or_scheme_is_401(client):
    for headers in (_key("rr_wrong"), {"authorization": f"Basic {SCORER}"}, {"authorization": SCORER}):
        answer = client.call("ScoreRoute", line_request(QUERETARO), headers)
        assert (answer.status, answer.code) == (401, "unauthenticated"), headers


def test_unauthenticated_is_refused_before_the_body_is_read(client):
    """A caller without a key learns nothing of its request: not even that it is malformed."""
    answer = client.post("/routerisk.v1.RouteRiskService/ScoreRoute", "not json")
    assert (answer.status, answer.code) == (401, "unauthenticated")


def test_a_key_without_the_permission_is_403(client):
    answer = client.call("ScoreRoute", line_request(QUERETARO), _key(READER))
    assert (answer.status, answer.code) == (403, "permission_denied")
    admin = client.call("LoadBorderObservations", {}, _key(SCORER), service=ADMIN_SERVICE)
    assert (admin.status, admin.code) == (403, "permission_denied")


def test_a_key_with_the_permission_is_served(client):
    assert client.call("ScoreRoute", line_request(QUERETARO), _key(SCORER)).status == 200
    assert client.call("ListBorderCrossings", {}, _key(READER)).status == 200


def test_the_health_path_needs_no_key(client):
    assert client.client.get("/healthz").status_code == 200


def test_a_tenant_over_its_rate_is_429_and_the_bucket_is_shared_with_grpc():
    """Burst 2 per tenant: one call over gRPC and one over HTTP empty it; the next over either is refused."""
    running = serving(http_address="127.0.0.1:0", api_keys=KEYS, rate_limit_per_second=0.001, rate_limit_burst=2)
    try:
        assert running.http is not None
        client = Connect(f"http://127.0.0.1:{running.http.port}")
        request = line_request(QUERETARO)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            stub.ScoreRoute(request, metadata=bearer(SCORER), timeout=30)
            assert client.call("ScoreRoute", request, _key(SCORER)).status == 200
            refused = client.call("ScoreRoute", request, _key(SCORER))
            assert (refused.status, refused.code) == (429, "resource_exhausted")
            assert "rate limit" in refused.body["message"]
            with pytest.raises(grpc.RpcError) as caught:
                stub.ScoreRoute(request, metadata=bearer(SCORER), timeout=30)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # the other tenant has its own bucket
            assert client.call("ListBorderCrossings", {}, _key(READER)).status == 200
        client.client.close()
    finally:
        running.stop(0)


def test_a_deadline_that_passes_mid_batch_is_deadline_exceeded(connect):
    """``connect-timeout-ms`` is the call's deadline: a batch of long routes stops at it (504)."""
    batch = pb.BatchScoreRoutesRequest(requests=[line_request(QUERETARO, reference=str(i)) for i in range(400)])
    answer = connect.call("BatchScoreRoutes", batch, {"connect-timeout-ms": "1"})
    assert (answer.status, answer.code) == (504, "deadline_exceeded")


def test_a_bad_timeout_header_is_invalid_argument(connect):
    answer = connect.call("ListBorderCrossings", {}, {"connect-timeout-ms": "soon"})
    assert (answer.status, answer.code) == (400, "invalid_argument")


def test_the_concurrency_cap_is_shared_busy_is_429_over_http_and_resource_exhausted_over_grpc():
    """The cap counts calls over both transports: with its one slot held, both refuse at once."""
    running = serving(http_address="127.0.0.1:0", max_concurrent_rpcs=1)
    try:
        assert running.http is not None
        slots = running.http.runner._slots._slots  # the gRPC server's own slots, handed to the HTTP port
        assert slots is not None and slots.try_acquire()  # a call in flight, as far as the cap knows
        client = Connect(f"http://127.0.0.1:{running.http.port}")
        busy = client.call("ListBorderCrossings", {})
        assert (busy.status, busy.code) == (429, "resource_exhausted")
        assert "server busy" in busy.body["message"]
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.RouteRiskServiceStub(channel).ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=30)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        slots.release()
        assert client.call("ListBorderCrossings", {}).status == 200  # and the slot freed serves again
        client.client.close()
    finally:
        running.stop(0)


def test_a_tenant_at_its_share_of_the_cap_is_429_over_http_and_other_tenants_are_served():
    """The per-tenant share of the cap (``ROUTERISK_MAX_CONCURRENT_RPCS_PER_TENANT``) is the gRPC
    server's own count: calls of one tenant held on either transport refuse that tenant's next
    call on both, and another tenant is still served."""
    running = serving(
        http_address="127.0.0.1:0", api_keys=KEYS, max_concurrent_rpcs=4, max_concurrent_rpcs_per_tenant=1
    )
    try:
        assert running.http is not None
        slots = running.http.runner._slots
        assert slots.take("acme") is None  # one call of tenant acme in flight, as far as the cap knows
        client = Connect(f"http://127.0.0.1:{running.http.port}")
        busy = client.call("ListBorderCrossings", {}, _key(SCORER))
        assert (busy.status, busy.code) == (429, "resource_exhausted")
        assert "this tenant" in busy.body["message"]
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), metadata=bearer(SCORER), timeout=30)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), metadata=bearer(READER), timeout=30)
        assert client.call("ListBorderCrossings", {}, _key(READER)).status == 200  # tenant bravo
        slots.give_back("acme")
        assert client.call("ListBorderCrossings", {}, _key(SCORER)).status == 200
        client.client.close()
    finally:
        running.stop(0)
