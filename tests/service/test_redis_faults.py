# ruff: noqa: F811  (the fixtures imported from tests.redis_fixtures are redefined as test parameters)
"""Redis faults under load: a server whose Redis dies, stalls, runs out of memory or turns
read-only keeps answering every call, with the same answers as a server without Redis and
bounded latency. Each test has its own private ``redis-server``."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import redis
from prometheus_client import REGISTRY

from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import load_data, start_server
from service.store.redis_client import BREAKER_STATE
from tests.helpers.api import DEPARTURE, QUERETARO, demo_request, line_request
from tests.helpers.border import laredo_waits
from tests.redis_fixtures import PrivateRedis, own_redis, private_redis  # noqa: F401
from tools.reliability.figures import current_test, record

DEADLINE_S = 2.0
P99_LIMIT_S = 0.75  # "well under the deadline"
PREFIX = "routerisk-faults:"
ROUTES = [
    line_request(QUERETARO),
    demo_request("manzanillo_guadalajara"),
    demo_request("tijuana_otay-mesa"),
    demo_request("ciudad-juarez_el-paso"),
]
REPEATED = 12  # requests 0..11 repeat (answered from a cache); later numbers are new keys


def request_number(n: int) -> pb.ScoreRouteRequest:
    """Request ``n``: one of the routes, departing ``n // len(ROUTES)`` hours after DEPARTURE."""
    request = pb.ScoreRouteRequest()
    request.CopyFrom(ROUTES[n % len(ROUTES)])
    request.departure_time.FromDatetime(DEPARTURE + timedelta(hours=n // len(ROUTES)))
    return request


def essentials(response: pb.ScoreRouteResponse) -> tuple:
    return (
        response.score,
        response.expected_incidents,
        response.duration.ToTimedelta(),
        [c.SerializeToString(deterministic=True) for c in response.crossings],
    )


@contextlib.contextmanager
def serving_channel(settings: Settings) -> Iterator[grpc.Channel]:
    running = start_server(settings)
    try:
        load_data(running, settings)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield channel
    finally:
        running.stop(0)


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[pb_grpc.RouteRiskServiceStub]:
    with serving_channel(settings) as channel:
        yield pb_grpc.RouteRiskServiceStub(channel)


class Reference:
    """The answers of a server without Redis (and without a cache), asked once per request."""

    def __init__(self, stub: pb_grpc.RouteRiskServiceStub) -> None:
        self._stub = stub
        self._answers: dict[int, tuple] = {}
        self._lock = threading.Lock()

    def __call__(self, n: int) -> tuple:
        with self._lock:
            known = self._answers.get(n)
        if known is None:
            known = essentials(self._stub.ScoreRoute(request_number(n), timeout=30))
            with self._lock:
                self._answers[n] = known
        return known


@pytest.fixture(scope="module")
def reference() -> Iterator[Reference]:
    with serving(Settings(address="127.0.0.1:0", cache_max_entries=0)) as stub:
        yield Reference(stub)


@pytest.fixture(autouse=True)
def breaker_gauge_reset() -> None:
    """The gauge is process-wide: start every test from 'closed' whatever earlier breakers did."""
    BREAKER_STATE.set(0)


@contextlib.contextmanager
def redis_server(url: str) -> Iterator[pb_grpc.RouteRiskServiceStub]:
    """A server with the default cache configuration (in-process tier in front of Redis)."""
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
    stub: pb_grpc.RouteRiskServiceStub, reference: Reference, fault: Callable[[], None], *, threads: int = 4
) -> LoadResult:
    """Run ``fault()`` while ``threads`` clients call ScoreRoute (alternately a repeated request
    and a new one, so Redis keeps being read and written); stop the clients when it returns."""
    result = LoadResult()
    lock = threading.Lock()
    stop = threading.Event()
    fresh = itertools.count(REPEATED)

    def client(offset: int) -> None:
        calls = offset
        while not stop.is_set():
            calls += 1
            n = calls % REPEATED if calls % 2 else next(fresh)
            started = time.monotonic()
            try:
                response = stub.ScoreRoute(request_number(n), timeout=DEADLINE_S)
            except grpc.RpcError as exc:
                with lock:
                    result.errors.append(exc)
                continue
            elapsed = time.monotonic() - started
            same = essentials(response) == reference(n)
            with lock:
                result.latencies.append(elapsed)
                result.cached += response.cached
                if not same:
                    result.mismatches.append(n)

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
    if result.latencies:  # shown with pytest -s
        print(f"{len(result.latencies)} calls, {result.cached} cached, p99 {result.p99():.3f}s")
    record(
        "redis-faults",
        current_test(),
        calls=len(result.latencies),
        cached=result.cached,
        errors=len(result.errors),
        mismatches=len(result.mismatches),
        p99_s=result.p99() if result.latencies else None,
    )
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
        assert not stub.ScoreRoute(request_number(0), timeout=DEADLINE_S).cached
        assert result_keys(own_redis)
        assert breaker_gauge() == 0

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
            time.sleep(1.5)
            written = len(result_keys(own_redis))
            wait_until(lambda: len(result_keys(own_redis)) > written, 3.0, "results are cached again")

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
        written = len(result_keys(own_redis))
        fresh = line_request(QUERETARO)
        fresh.departure_time.FromDatetime(DEPARTURE + timedelta(days=30))
        assert not stub.ScoreRoute(fresh, timeout=DEADLINE_S).cached
        assert len(result_keys(own_redis)) == written  # nothing could be stored
    check(result)


def test_read_only_replica_under_load(own_redis, reference):
    with private_redis() as primary:
        own_redis.make_replica_of(primary)
        with pytest.raises(redis.exceptions.ReadOnlyError):
            own_redis.client().set("probe", b"1")
        with redis_server(own_redis.url) as stub:
            result = under_load(stub, reference, lambda: time.sleep(1.5))
        assert result_keys(own_redis) == [] and result_keys(primary) == []
    check(result)


def test_the_feed_is_still_polled_while_redis_is_down(own_redis, feed_url):
    """The one-poller-per-period lease lives in Redis; with Redis unusable every replica must
    poll the feed itself rather than none of them."""
    url, _ = feed_url
    own_redis.stop()
    settings = Settings(address="127.0.0.1:0", redis_url=own_redis.url, redis_prefix=PREFIX)
    settings = settings.model_copy(update={"border_feed_url": url, "border_poll_seconds": 0.2})
    with serving(settings) as stub:
        at = datetime(2022, 6, 29, 17, 5, tzinfo=UTC)
        wait_until(
            lambda: laredo_waits(stub, at)[pb.CROSSING_LANE_STANDARD].source == pb.WAIT_SOURCE_LIVE,
            5.0,
            "the server loads the feed it polls",
        )


def standard_wait(stub: pb_grpc.RouteRiskServiceStub, port: str) -> pb.LaneWait:
    request = pb.ListBorderCrossingsRequest(port_number=port)
    request.time.FromDatetime(datetime(2022, 6, 29, 18, 10, tzinfo=UTC))
    crossing = stub.ListBorderCrossings(request, timeout=10).crossings[0]
    return next(w for w in crossing.lane_waits if w.lane == pb.CROSSING_LANE_STANDARD)


def load_one(stub: admin_grpc.RouteRiskAdminServiceStub, port: str, minutes: int) -> None:
    message = admin_pb.BorderObservation(port_number=port, lane="standard", wait_minutes=minutes)
    message.observed_at.FromDatetime(datetime(2022, 6, 29, 18, 0, tzinfo=UTC))
    reply = stub.LoadBorderObservations(admin_pb.LoadBorderObservationsRequest(observations=[message]), timeout=10)
    assert reply.accepted == 1


def test_border_waits_are_shared_again_after_redis_lost_its_data(own_redis):
    """Redis restarted empty: a replica that had seen the revision before must still pick up
    the first publication after it (revisions are tokens, not a counter that starts again)."""
    settings = Settings(address="127.0.0.1:0", redis_url=own_redis.url, redis_prefix=PREFIX)
    live = lambda stub, port: standard_wait(stub, port).source == pb.WAIT_SOURCE_LIVE  # noqa: E731
    with serving_channel(settings) as channel_a, serving(settings) as stub_b:
        admin_a = admin_grpc.RouteRiskAdminServiceStub(channel_a)
        load_one(admin_a, "230404", 30)
        wait_until(lambda: live(stub_b, "230404"), 5.0, "B has the first reading")
        own_redis.stop()
        own_redis.start()
        time.sleep(1.2)  # the breakers' pause, if any opened
        load_one(admin_a, "250602", 20)
        assert own_redis.client().get(PREFIX + "border:rev-v2")  # published into the emptied Redis
        wait_until(lambda: live(stub_b, "250602"), 5.0, "B has the reading published after the restart")
