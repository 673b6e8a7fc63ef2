# ruff: noqa: F811  (the fixtures imported from tests.redis_fixtures are redefined as test parameters)
"""Redis faults under load: a server whose Redis dies, stalls, runs out of memory or turns
read-only keeps answering every call, with the same answers as a server without Redis and
bounded latency. Each test has its own private ``redis-server``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
import pytest
import redis
from prometheus_client import REGISTRY

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.server import load_data, start_server
from tests.redis_fixtures import PrivateRedis, own_redis, private_redis  # noqa: F401
from tests.service.test_api import DEPARTURE, QUERETARO, demo_request, line_request

DEADLINE_S = 2.0
P99_LIMIT_S = 0.75  # "well under the deadline"
PREFIX = "routerisk-faults:"


def _requests() -> list[pb.ScoreRouteRequest]:
    routes = [
        line_request(QUERETARO),
        demo_request("manzanillo_guadalajara"),
        demo_request("tijuana_otay-mesa"),
        demo_request("ciudad-juarez_el-paso"),
    ]
    requests = []
    for hours in range(3):  # distinct departures: distinct cache keys, so some calls compute
        for route in routes:
            request = pb.ScoreRouteRequest()
            request.CopyFrom(route)
            request.departure_time.FromDatetime(DEPARTURE + timedelta(hours=hours))
            requests.append(request)
    return requests


REQUESTS = _requests()


def essentials(response: pb.ScoreRouteResponse) -> tuple:
    return (
        response.score,
        response.expected_incidents,
        response.duration.ToTimedelta(),
        [c.SerializeToString(deterministic=True) for c in response.crossings],
    )


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[pb_grpc.RouteRiskServiceStub]:
    running = start_server(settings)
    try:
        load_data(running, settings)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield pb_grpc.RouteRiskServiceStub(channel)
    finally:
        running.stop(0)


@pytest.fixture(scope="module")
def reference() -> list[tuple]:
    """The answers of a server without Redis (and without any cache)."""
    with serving(Settings(address="127.0.0.1:0", cache_max_entries=0)) as stub:
        return [essentials(stub.ScoreRoute(request, timeout=30)) for request in REQUESTS]


@contextlib.contextmanager
def redis_server(url: str) -> Iterator[pb_grpc.RouteRiskServiceStub]:
    with serving(Settings(address="127.0.0.1:0", redis_url=url, redis_prefix=PREFIX)) as stub:
        yield stub


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    mismatches: list[int] = field(default_factory=list)
    cached: int = 0

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def under_load(
    stub: pb_grpc.RouteRiskServiceStub, reference: list[tuple], fault: Callable[[], None], *, threads: int = 4
) -> LoadResult:
    """Run ``fault()`` while ``threads`` clients call ScoreRoute; stop the clients when it returns."""
    result = LoadResult()
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int) -> None:
        n = offset
        while not stop.is_set():
            index = n % len(REQUESTS)
            n += threads
            started = time.monotonic()
            try:
                response = stub.ScoreRoute(REQUESTS[index], timeout=DEADLINE_S)
            except grpc.RpcError as exc:
                with lock:
                    result.errors.append(exc)
                continue
            elapsed = time.monotonic() - started
            with lock:
                result.latencies.append(elapsed)
                result.cached += response.cached
                if essentials(response) != reference[index]:
                    result.mismatches.append(index)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        fault()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    return result


def check(result: LoadResult) -> None:
    assert not result.errors, [f"{e.code()}: {e.details()}" for e in result.errors[:5]]  # type: ignore[attr-defined]
    assert not result.mismatches, f"answers differ from the reference for requests {sorted(set(result.mismatches))}"
    assert len(result.latencies) >= 40, f"only {len(result.latencies)} calls completed"
    assert result.p99() < P99_LIMIT_S, f"p99 {result.p99():.3f}s over {len(result.latencies)} calls"


def breaker_gauge() -> float | None:
    return REGISTRY.get_sample_value("routerisk_redis_breaker_open")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting until {what}")


def result_keys(server: PrivateRedis) -> list[bytes]:
    return list(server.client().scan_iter(match=PREFIX + "score:*", count=1000))


def test_redis_stopped_and_restarted_under_load(own_redis, reference):
    with redis_server(own_redis.url) as stub:
        assert not stub.ScoreRoute(REQUESTS[0], timeout=DEADLINE_S).cached
        assert result_keys(own_redis)

        def fault() -> None:
            time.sleep(0.4)
            own_redis.stop()
            wait_until(lambda: breaker_gauge() == 1, 3.0, "the breaker opens")
            time.sleep(0.3)
            own_redis.start()
            wait_until(lambda: breaker_gauge() == 0, 5.0, "the breaker closes")
            wait_until(lambda: bool(result_keys(own_redis)), 3.0, "results are cached again")
            time.sleep(0.2)

        result = under_load(stub, reference, fault)
    check(result)


def test_redis_paused_under_load(own_redis, reference):
    with redis_server(own_redis.url) as stub:

        def fault() -> None:
            time.sleep(0.4)
            own_redis.pause(1500)
            time.sleep(1.8)

        result = under_load(stub, reference, fault)
    check(result)


def test_redis_out_of_memory_under_load(own_redis, reference):
    junk = own_redis.client()
    with junk.pipeline(transaction=False) as pipe:
        for i in range(200):
            pipe.set(f"junk:{i}", b"x" * 10_000)
        pipe.execute()
    with redis_server(own_redis.url) as stub:

        def fault() -> None:
            time.sleep(0.4)
            own_redis.set_maxmemory(1_000_000, "noeviction")
            before = len(result_keys(own_redis))
            time.sleep(1.2)
            assert len(result_keys(own_redis)) == before, "writes went through despite maxmemory"

        result = under_load(stub, reference, fault)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            junk.set("junk:more", b"x")
        fresh = line_request(QUERETARO)
        fresh.departure_time.FromDatetime(DEPARTURE + timedelta(days=3))
        assert not stub.ScoreRoute(fresh, timeout=DEADLINE_S).cached
        assert not stub.ScoreRoute(fresh, timeout=DEADLINE_S).cached  # nothing could be stored
    check(result)


def test_read_only_replica_under_load(own_redis, reference):
    with private_redis() as primary:
        own_redis.make_replica_of(primary)
        with pytest.raises(redis.exceptions.ReadOnlyError):
            own_redis.client().set("probe", b"1")
        with redis_server(own_redis.url) as stub:
            result = under_load(stub, reference, lambda: time.sleep(1.5))
        assert result_keys(own_redis) == [] and result_keys(primary) == []
    assert result.cached == 0
    check(result)
