"""Metrics and request logs through a real gRPC server: counters, latencies, cache, layer and border
gauges scraped over HTTP from /metrics; request ids round trip; one log line per call, no locations."""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from geodata.border import WaitObservation
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc import metrics, request_log
from service.grpc.metrics import MetricsInterceptor, start_metrics_server
from service.grpc.request_log import LoggingInterceptor, RequestContextFilter
from service.grpc.servicer import RouteRiskServicer
from service.store.cache import InProcessCache
from service.store.serving import ServingState, Snapshot, load_initial_snapshot
from tests.log_scan import scan_record, scan_text

QUERETARO = [(20.40, -100.20), (20.90, -100.20)]
DEPARTURE = datetime(2025, 3, 12, 4, 0, tzinfo=UTC)
LIVE_AGE_S = 120


class TenantInterceptor(grpc.ServerInterceptor):
    """Stands in for the authentication layer: reports the tenant named by ``x-test-tenant`` and
    logs one line from inside the call."""

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        tenant = dict(details.invocation_metadata or ()).get("x-test-tenant")

        def wrap(behaviour: Any) -> Any:
            def run(request: Any, context: grpc.ServicerContext) -> Any:
                if tenant:
                    request_log.set_tenant(tenant)
                logging.getLogger("tests.inside").info("inside call")
                return behaviour(request, context)

            return run

        return metrics.wrap_unary(continuation(details), wrap)


def _boom(request: bytes, context: grpc.ServicerContext) -> bytes:
    raise RuntimeError("boom")


def _not_found(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    context.set_details("nothing here")
    return b""


@dataclass
class Harness:
    channel: grpc.Channel
    stub: pb_grpc.RouteRiskServiceStub
    state: ServingState
    snapshot: Snapshot
    metrics_url: str
    live_port: str
    live_observed_s: int


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    settings = Settings()
    snapshot = load_initial_snapshot(settings)
    state = ServingState()
    state.activate(snapshot.layer, snapshot.border)
    now_s = int(time.time())
    live_port = snapshot.border.ports[0].port_number
    observed_s = now_s - LIVE_AGE_S
    state.merge_observations([WaitObservation(live_port, "standard", 25.0, observed_s)], now_s)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[MetricsInterceptor(), LoggingInterceptor(), TenantInterceptor()],
    )
    pb_grpc.add_RouteRiskServiceServicer_to_server(RouteRiskServicer(state, settings, InProcessCache(100)), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    probe = {
        "Boom": grpc.unary_unary_rpc_method_handler(_boom),
        "NotFound": grpc.unary_unary_rpc_method_handler(_not_found),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Probe", probe),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    metrics_server = start_metrics_server("127.0.0.1:0")
    previous = metrics.watch_state(state)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(
            channel,
            pb_grpc.RouteRiskServiceStub(channel),
            state,
            state.snapshot,
            f"http://127.0.0.1:{metrics_server.port}/metrics",
            live_port,
            observed_s,
        )
    finally:
        channel.close()
        metrics.watch_state(previous)
        metrics_server.shutdown()
        server.stop(0).wait()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def series(samples: dict, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def score_request(days_later: int = 0) -> pb.ScoreRouteRequest:
    """QUERETARO at DEPARTURE, or ``days_later``: a request (and cache key) of a test's own."""
    request = pb.ScoreRouteRequest()
    request.route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in QUERETARO)
    request.departure_time.FromDatetime(DEPARTURE + timedelta(days=days_later))
    return request


def bad_cell_request() -> pb.GetCellRiskRequest:
    return pb.GetCellRiskRequest(location=pb.LatLng(latitude=123.4, longitude=-99.2))


def rpc_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.grpc.request_log"]


def test_counts_codes_latencies_and_cache_results(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    before = scrape(harness.metrics_url)

    # a request no other test of this module sends: its first call is the cache's miss
    first = harness.stub.ScoreRoute(score_request(days_later=1), timeout=30)
    second = harness.stub.ScoreRoute(score_request(days_later=1), timeout=30)
    assert not first.cached and second.cached
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as caught:
            harness.stub.GetCellRisk(bad_cell_request(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    health_pb2_grpc.HealthStub(harness.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    with pytest.raises(grpc.RpcError) as boom:
        harness.channel.unary_unary("/test.Probe/Boom")(b"x", timeout=10)
    assert boom.value.code() == grpc.StatusCode.UNKNOWN
    with pytest.raises(grpc.RpcError) as missing:
        harness.channel.unary_unary("/test.Probe/NotFound")(b"x", timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as unknown_method:
        harness.channel.unary_unary("/test.Probe/NoSuchMethod")(b"x", timeout=10)
    assert unknown_method.value.code() == grpc.StatusCode.UNIMPLEMENTED

    after = scrape(harness.metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("routerisk_rpcs_total", method="ScoreRoute", code="OK") == 2
    assert delta("routerisk_rpcs_total", method="GetCellRisk", code="INVALID_ARGUMENT") == 3
    assert delta("routerisk_rpcs_total", method="GetCellRisk", code="OK") == 0
    assert delta("routerisk_rpcs_total", method="Check", code="OK") == 1
    assert delta("routerisk_rpcs_total", method="Boom", code="UNKNOWN") == 1
    assert delta("routerisk_rpcs_total", method="NotFound", code="NOT_FOUND") == 1
    assert not [labels for labels in series(after, "routerisk_rpcs_total") if ("method", "NoSuchMethod") in labels]
    assert delta("routerisk_rpc_duration_seconds_count", method="ScoreRoute") == 2
    assert delta("routerisk_rpc_duration_seconds_count", method="GetCellRisk") == 3
    assert delta("routerisk_rpc_duration_seconds_sum", method="ScoreRoute") > 0
    # the buckets run from 0.5 ms to 10 s (then +Inf); both calls land in +Inf, and a bucket
    # never holds fewer calls than a smaller one (they are cumulative)
    bounds = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5"]
    bounds += ["5.0", "10.0", "+Inf"]
    buckets = series(after, "routerisk_rpc_duration_seconds_bucket")
    assert sorted(dict(labels)["le"] for labels in buckets if ("method", "ScoreRoute") in labels) == sorted(bounds)
    counts = [delta("routerisk_rpc_duration_seconds_bucket", method="ScoreRoute", le=le) for le in bounds]
    assert counts[-1] == 2
    assert counts == sorted(counts) and counts[0] >= 0
    assert delta("routerisk_cache_requests_total", result="miss") == 1
    assert delta("routerisk_cache_requests_total", result="hit") == 1

    # one line per handled call, with its method, code, duration, request id and tenant
    lines = rpc_records(caplog)
    assert [(r.method, r.code) for r in lines] == [
        ("ScoreRoute", "OK"),
        ("ScoreRoute", "OK"),
        *[("GetCellRisk", "INVALID_ARGUMENT")] * 3,
        ("Check", "OK"),
        ("Boom", "UNKNOWN"),
        ("NotFound", "NOT_FOUND"),
    ]
    for record in lines:
        assert record.levelno == logging.INFO
        assert len(record.request_id) == 32 and record.tenant == "-"
        assert record.duration_ms >= 0 and record.service
    assert len({r.request_id for r in lines}) == len(lines)
    # nothing logged while handling these calls looks like a location or a key
    assert [(r.getMessage(), scan_record(r)) for r in caplog.records if scan_record(r)] == []


def test_request_id_round_trips_on_success_and_error(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _, call = harness.stub.ScoreRoute.with_call(
        score_request(), metadata=(("x-request-id", "req-ok-1"), ("x-test-tenant", "acme")), timeout=30
    )
    assert ("x-request-id", "req-ok-1") in tuple(call.trailing_metadata())

    with pytest.raises(grpc.RpcError) as caught:
        harness.stub.GetCellRisk(bad_cell_request(), metadata=(("x-request-id", "req-bad-1"),), timeout=30)
    assert ("x-request-id", "req-bad-1") in tuple(caught.value.trailing_metadata())
    # the BadRequest details travel in the trailing metadata too, and survive
    status = rpc_status.from_call(caught.value)
    assert status is not None and status.details

    # an id that is not a plain token is replaced, never echoed into logs
    _, call = harness.stub.ScoreRoute.with_call(
        score_request(), metadata=(("x-request-id", "19.60123 -99.2 {lat}"),), timeout=30
    )
    echoed = dict(call.trailing_metadata())["x-request-id"]
    assert len(echoed) == 32 and echoed.isalnum()

    lines = rpc_records(caplog)
    assert [(r.request_id, r.tenant, r.code) for r in lines] == [
        ("req-ok-1", "acme", "OK"),
        ("req-bad-1", "-", "INVALID_ARGUMENT"),
        (echoed, "-", "OK"),
    ]
    assert not any(scan_record(r) for r in caplog.records)


def test_records_logged_during_a_call_carry_its_request_id_and_tenant(harness: Harness) -> None:
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    handler.addFilter(RequestContextFilter())
    inside = logging.getLogger("tests.inside")
    inside.addHandler(handler)
    inside.setLevel(logging.INFO)
    try:
        harness.stub.ScoreRoute(
            score_request(), metadata=(("x-request-id", "req-inside"), ("x-test-tenant", "fleet-7")), timeout=30
        )
    finally:
        inside.removeHandler(handler)
    assert [(r.getMessage(), r.request_id, r.tenant) for r in captured] == [("inside call", "req-inside", "fleet-7")]
    # outside a call the filter adds nothing
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", (), None)
    assert RequestContextFilter().filter(record) and not hasattr(record, "request_id")


def test_layer_info_age_and_border_age(harness: Harness) -> None:
    layer = harness.snapshot.layer
    samples = scrape(harness.metrics_url)
    assert series(samples, "routerisk_layer_info") == {(("synthetic", "true"), ("version", layer.version)): 1.0}
    period_end = layer.metadata["period_end_s"]
    assert period_end > 0
    assert abs(value(samples, "routerisk_layer_age_seconds") - (time.time() - period_end)) < 60
    border = series(samples, "routerisk_border_data_age_seconds")
    assert list(border) == [(("port", harness.live_port),)]  # ports without live data: no sample
    assert LIVE_AGE_S <= border[(("port", harness.live_port),)] < LIVE_AGE_S + 60

    # a swapped layer replaces the info series; the old label set disappears
    harness.state.activate(layer=replace(layer, version="v-next", metadata={**layer.metadata, "synthetic": False}))
    try:
        samples = scrape(harness.metrics_url)
        assert series(samples, "routerisk_layer_info") == {(("synthetic", "false"), ("version", "v-next")): 1.0}
    finally:
        harness.state.activate(layer=layer)


def test_pushed_layer_and_border_without_a_watched_state(harness: Harness) -> None:
    previous = metrics.watch_state(None)
    try:
        metrics.set_layer(None)
        metrics.set_border(None)
        samples = scrape(harness.metrics_url)
        assert series(samples, "routerisk_layer_info") == {}
        assert series(samples, "routerisk_border_data_age_seconds") == {}
        metrics.set_layer(harness.snapshot.layer)
        metrics.set_border(harness.state.snapshot.border)
        samples = scrape(harness.metrics_url)
        assert len(series(samples, "routerisk_layer_info")) == 1
        assert list(series(samples, "routerisk_border_data_age_seconds")) == [(("port", harness.live_port),)]
    finally:
        metrics.set_layer(None)
        metrics.set_border(None)
        metrics.watch_state(previous)


def test_metrics_server_binds_and_shuts_down() -> None:
    server = start_metrics_server("127.0.0.1:0")
    assert server.port > 0 and server.url.endswith(f":{server.port}/metrics")
    with urllib.request.urlopen(server.url, timeout=10) as reply:
        body = reply.read()
    assert b"# TYPE routerisk_rpcs_total counter" in body and b"routerisk_cache_requests_total" in body
    server.shutdown()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)
    with pytest.raises(ValueError):
        start_metrics_server("9090")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("19.60123, -99.2", "coordinate-pair"),
        ("[-99.20000, 19.6]", "coordinate-pair"),
        ("latitude 123.4 is out of range", "coordinate-keyword"),
        ('{"type": "LineString", "coordinates": []}', "geojson"),
        ("_p~iF~ps|U_ulLnnqC_mqNvxq`@", "polyline"),
        ("authorization: Bearer rr_0123456789abcdef", "bearer"),
        ("redis://user:s3cret@redis:6379/0", "url-credentials"),
    ],
)
def test_log_scan_flags(text: str, rule: str) -> None:
    assert rule in {found for found, _ in scan_text(text)}


@pytest.mark.parametrize(
    "text",
    [
        "grpcio 1.85.3 on 127.0.0.1:50051",
        "2025-03-12T04:00:00.123Z 2025-03-12 04:00:00,123 epoch 1741752000.123, 12.345",
        "layer e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 rates [0.123, 0.456]",
        "RouteRiskAdminServiceServicer SEND_INITIAL_METADATA_TOKEN routerisk_redis_breaker_open",
        "a valid API key is required (authorization: Bearer)",
        "rpc ScoreRoute OK duration_ms 12.345",
    ],
)
def test_log_scan_ignores(text: str) -> None:
    assert list(scan_text(text)) == []
