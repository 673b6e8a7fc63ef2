# ruff: noqa: F811  (the fixtures imported from tests.redis_fixtures are redefined as test parameters)
"""Redis as the shared cache: the circuit breaker, RedisCache, single flight across threads and
processes, and a real server (in-process and as a subprocess) sharing results and geometry.

Against the shared Redis, every test under its own key prefix."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
import redis
from prometheus_client import REGISTRY

from geodata.cells import chain_from_bytes, route_to_cells
from geodata.route import from_points
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc import convert
from service.grpc.server import RunningServer, load_data, start_server
from service.store.cache import ResultCache
from service.store.redis_client import CircuitBreaker, EntrySigner, RedisCache, connect
from tests.conftest import free_port, routerisk_command, wait_serving
from tests.helpers.api import DEPARTURE, QUERETARO, line_request
from tests.helpers.servers import clean_env
from tests.redis_fixtures import prefix, redis_url  # noqa: F401


def breaker_gauge() -> float | None:
    return REGISTRY.get_sample_value("routerisk_redis_breaker_open")


def breaker_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.store.redis_client" and r.levelno == level]


def admin_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def keys_under(url: str, pattern: str) -> list[bytes]:
    client = admin_client(url)
    try:
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def redis_cache(url: str, key_prefix: str, **options) -> RedisCache:
    # a generous timeout: these tests are about semantics, not about a slow shared Redis
    return RedisCache(connect(url, timeout_s=1.0), key_prefix, **options)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def failing() -> None:
    raise redis.exceptions.ConnectionError("connection refused")


# ------------------------------------------------------------------ circuit breaker


def test_breaker_opens_after_three_failures_trials_once_and_closes(caplog):
    caplog.set_level(logging.INFO, logger="service.store.redis_client")
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=1.0, clock=clock)
    calls = []

    def ok() -> str:
        calls.append("ok")
        return "value"

    # failures must be consecutive: a success in between starts the count again
    for _ in range(2):
        assert breaker.call("get", failing, "fallback") == "fallback"
    assert breaker.call("get", ok, "fallback") == "value"
    for _ in range(2):
        assert breaker.call("get", failing, "fallback") == "fallback"
    assert breaker.state == "closed"
    assert breaker_records(caplog, logging.WARNING) == []

    assert breaker.call("get", failing, "fallback") == "fallback"  # the third in a row
    assert breaker.state == "open"
    assert breaker_gauge() == 1
    calls.clear()
    for _ in range(5):  # open: Redis is not called at all
        assert breaker.call("get", ok, "fallback") == "fallback"
    clock.now += 0.9
    assert breaker.call("get", ok, "fallback") == "fallback"
    assert calls == []

    # half-open: exactly one trial; others keep skipping while it runs; a failed trial re-opens
    clock.now += 0.1
    assert breaker.state == "half_open"
    during_trial = []

    def failing_trial() -> None:
        during_trial.append(breaker.call("get", ok, "skipped"))
        failing()

    assert breaker.call("get", failing_trial, "fallback") == "fallback"
    assert during_trial == ["skipped"] and calls == []
    assert breaker.state == "open"
    assert breaker_gauge() == 1
    assert breaker.call("get", ok, "fallback") == "fallback"  # the pause starts again from the trial
    clock.now += 0.99
    assert breaker.call("get", ok, "fallback") == "fallback"
    assert calls == []

    # a successful trial closes it
    clock.now += 0.01

    def ok_trial() -> str:
        during_trial.append(breaker.call("get", ok, "skipped"))
        return "trial"

    assert breaker.call("get", ok_trial, "fallback") == "trial"
    assert during_trial == ["skipped", "skipped"]
    assert breaker.state == "closed"
    assert breaker_gauge() == 0
    for _ in range(3):
        assert breaker.call("get", ok, "fallback") == "value"
    assert len(calls) == 3
    # after closing the count starts from zero again
    for _ in range(2):
        breaker.call("get", failing, None)
    assert breaker.state == "closed"

    # one line per state change, not one per call
    warnings = breaker_records(caplog, logging.WARNING)
    infos = breaker_records(caplog, logging.INFO)
    assert len(warnings) == 1 and "open" in warnings[0].getMessage()
    assert len(infos) == 1 and "closed" in infos[0].getMessage()


def test_breaker_gauge_and_logs_through_a_second_outage(caplog):
    caplog.set_level(logging.INFO, logger="service.store.redis_client")
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=5.0, clock=clock)
    for _outage in range(2):
        for _ in range(10):
            breaker.call("set", failing, None)
            clock.now += 0.1
        assert breaker_gauge() == 1
        clock.now += 5.0
        assert breaker.call("set", lambda: True, None) is True
        assert breaker_gauge() == 0
    assert len(breaker_records(caplog, logging.WARNING)) == 2
    assert len(breaker_records(caplog, logging.INFO)) == 2


def test_breaker_recovers_when_the_trial_raises_something_else():
    """A half-open trial that raises a non-Redis error (a corrupt shared value, say) must not
    leave the breaker open for good."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=1.0, clock=clock)
    for _ in range(3):
        breaker.call("border-read", failing, None)
    clock.now += 1.0

    def corrupt() -> None:
        raise ValueError("bad JSON in a shared hash")

    with contextlib.suppress(ValueError):
        breaker.call("border-read", corrupt, None)
    clock.now += 10.0
    assert breaker.call("get", lambda: "value", None) == "value", "breaker stuck open after a non-Redis error"
    assert breaker.state == "closed"
    assert breaker_gauge() == 0


# ------------------------------------------------------------------ RedisCache


def test_redis_cache_round_trip_ttl_and_size_limit(redis_url, prefix):
    cache = redis_cache(redis_url, prefix, max_value_bytes=1000)
    assert cache.get("k") is None
    cache.set("k", b"\x00value\xff", 30.0)
    assert cache.get("k") == b"\x00value\xff"
    client = admin_client(redis_url)
    pttl = client.pttl(prefix + "k")
    assert 29_000 < pttl <= 30_000
    cache.set("short", b"x", 0.25)
    assert 0 < client.pttl(prefix + "short") <= 250
    cache.set("exact", b"x" * 1000, 30.0)
    cache.set("big", b"x" * 1001, 30.0)
    assert cache.get("exact") == b"x" * 1000
    assert cache.get("big") is None
    assert not client.exists(prefix + "big")
    client.close()


def test_redis_cache_lock_semantics(redis_url, prefix):
    cache = redis_cache(redis_url, prefix)
    assert cache.try_lock("a", 5000) is True
    assert cache.try_lock("a", 5000) is False
    assert cache.try_lock("b", 5000) is True  # locks are per key
    assert keys_under(redis_url, prefix + "lock:a")
    cache.unlock("a")
    assert cache.try_lock("a", 5000) is True
    assert cache.try_lock("short", 100) is True
    assert cache.try_lock("short", 100) is False
    time.sleep(0.2)
    assert cache.try_lock("short", 100) is True  # the lock expired


def test_redis_cache_without_redis_falls_back():
    cache = RedisCache(connect(f"redis://127.0.0.1:{free_port()}/0"), "routerisk-test:none:")
    assert cache.get("k") is None
    cache.set("k", b"v", 10)
    assert cache.try_lock("k", 100) is None  # unusable: the caller computes
    cache.unlock("k")


# ------------------------------------------------------------------ ResultCache: single flight


class Counting:
    """A compute function that counts its runs and takes ``seconds``."""

    def __init__(self, seconds: float, value: bytes = b"computed-value") -> None:
        self.seconds = seconds
        self.value = value
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            self.runs += 1
        time.sleep(self.seconds)
        return self.value


def concurrently(n: int, call: Callable[[int], tuple[bytes, bool]]) -> list[tuple[bytes, bool]]:
    barrier = threading.Barrier(n)
    results: list[tuple[bytes, bool] | None] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_single_flight_in_one_process(redis_url, prefix):
    results = ResultCache(redis_cache(redis_url, prefix), 60.0)
    compute = Counting(0.2)
    answers = concurrently(16, lambda _i: results.get_or_compute("score:one", compute))
    assert compute.runs == 1
    assert {value for value, _ in answers} == {b"computed-value"}
    assert sum(not cached for _, cached in answers) == 1
    assert results.get_or_compute("score:one", compute) == (b"computed-value", True)
    assert not keys_under(redis_url, prefix + "lock:*")  # the leader released its lock


def test_single_flight_across_two_processes(redis_url, prefix):
    backend = redis_cache(redis_url, prefix)
    processes = [ResultCache(backend, 60.0), ResultCache(backend, 60.0)]
    compute = Counting(0.2)
    answers = concurrently(16, lambda i: processes[i % 2].get_or_compute("score:shared", compute))
    assert compute.runs == 1
    assert {value for value, _ in answers} == {b"computed-value"}
    assert sum(not cached for _, cached in answers) == 1


def test_single_flight_without_redis_still_computes_once():
    """Redis down: the in-process single flight must still hand the leader's value to the
    waiters instead of making each of them compute again."""
    results = ResultCache(RedisCache(connect(f"redis://127.0.0.1:{free_port()}/0"), "routerisk-test:none:"), 60.0)
    compute = Counting(0.2)
    answers = concurrently(8, lambda _i: results.get_or_compute("score:down", compute))
    assert {value for value, _ in answers} == {b"computed-value"}
    assert compute.runs == 1, f"{compute.runs} computations of one key by 8 concurrent callers"


@contextlib.contextmanager
def slow_leader(results: ResultCache, key: str, seconds: float) -> Iterator[Counting]:
    """A thread computing ``key`` for ``seconds``, started before the block and joined after it."""
    compute = Counting(seconds, b"slow")
    thread = threading.Thread(target=results.get_or_compute, args=(key, compute))
    thread.start()
    try:
        deadline = time.monotonic() + 2
        while compute.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert compute.runs == 1, "the leader did not start computing"
        yield compute
    finally:
        thread.join(timeout=5)
    assert compute.runs == 1


def test_a_slow_leader_elsewhere_does_not_fail_the_waiter(redis_url, prefix):
    backend = redis_cache(redis_url, prefix)
    slow_process = ResultCache(backend, 60.0, wait_s=0.1)
    other_process = ResultCache(backend, 60.0, wait_s=0.1)
    with slow_leader(slow_process, "score:slow", 1.0):
        assert keys_under(redis_url, prefix + "lock:score:slow"), "the leader holds no lock"
        started = time.monotonic()
        value, cached = other_process.get_or_compute("score:slow", Counting(0.0, b"own"))
        assert (value, cached) == (b"own", False)
        assert 0.1 <= time.monotonic() - started < 0.6


def test_a_slow_leader_in_this_process_does_not_fail_the_waiter(redis_url, prefix):
    results = ResultCache(redis_cache(redis_url, prefix), 60.0, wait_s=0.1)
    with slow_leader(results, "score:slow", 1.0):
        started = time.monotonic()
        value, cached = results.get_or_compute("score:slow", Counting(0.0, b"own"))
        assert (value, cached) == (b"own", False)
        assert 0.1 <= time.monotonic() - started < 0.6


def test_ttl_jitter_spreads_expiries(redis_url, prefix):
    results = ResultCache(redis_cache(redis_url, prefix), 100.0, seed=7)
    ttls = [results.ttl() for _ in range(200)]
    assert all(90.0 <= t <= 110.0 for t in ttls)
    assert len(set(ttls)) > 190
    assert max(ttls) - min(ttls) > 15  # spread over most of the ±10 % band
    for i in range(20):
        results.get_or_compute(f"score:{i}", Counting(0.0))
    client = admin_client(redis_url)
    pttls = [client.pttl(f"{prefix}score:{i}") for i in range(20)]
    client.close()
    assert all(89_000 <= p <= 110_000 for p in pttls), pttls
    assert max(pttls) - min(pttls) > 5_000, pttls


# ------------------------------------------------------------------ a real server


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[tuple[RunningServer, pb_grpc.RouteRiskServiceStub]]:
    running = start_server(settings)
    try:
        load_data(running, settings)
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield running, pb_grpc.RouteRiskServiceStub(channel)
    finally:
        running.stop(0)


def redis_settings(url: str, key_prefix: str) -> Settings:
    return Settings(address="127.0.0.1:0", redis_url=url, redis_prefix=key_prefix)


def without_cached(response: pb.ScoreRouteResponse) -> pb.ScoreRouteResponse:
    copy = pb.ScoreRouteResponse()
    copy.CopyFrom(response)
    copy.cached = False
    return copy


def test_repeated_score_is_served_from_redis(redis_url, prefix):
    with serving(redis_settings(redis_url, prefix)) as (_, stub):
        request = line_request(QUERETARO, reference="load-7")
        first = stub.ScoreRoute(request, timeout=30)
        second = stub.ScoreRoute(request, timeout=30)
        assert not first.cached and second.cached
        assert second.reference == "load-7"
        assert without_cached(second) == first
        assert len(keys_under(redis_url, prefix + "score:*")) == 1

        # 20 minutes later in the same hour: the same cached work, with this request's times
        later = line_request(QUERETARO, reference="load-7")
        later.departure_time.FromDatetime(DEPARTURE + timedelta(minutes=20))
        shifted = stub.ScoreRoute(later, timeout=30)
        assert shifted.cached
        assert shifted.departure_time == later.departure_time
        assert shifted.arrival_time.ToDatetime() - first.arrival_time.ToDatetime() == timedelta(minutes=20)
        expected = without_cached(first)
        convert.shift_times(expected, 20 * 60)
        assert without_cached(shifted) == expected
        assert len(keys_under(redis_url, prefix + "score:*")) == 1


def test_route_geometry_is_cached_in_redis(redis_url, prefix):
    with serving(redis_settings(redis_url, prefix)) as (_, stub):
        response = stub.ScoreRoute(line_request(QUERETARO), timeout=30)
    [key] = keys_under(redis_url, prefix + "geom-v2:*")
    client = admin_client(redis_url)
    data = client.get(key)
    client.close()
    value, _ = EntrySigner().open(key.decode() if isinstance(key, bytes) else key, data)  # sealed (checksum)
    assert value is not None
    chain = chain_from_bytes(value)
    lats, lngs = zip(*QUERETARO, strict=True)
    expected = route_to_cells(from_points(lats, lngs), 8)
    assert chain.resolution == expected.resolution == response.resolution
    np.testing.assert_array_equal(chain.cells, expected.cells)
    np.testing.assert_array_equal(chain.start_km, expected.start_km)
    np.testing.assert_array_equal(chain.length_km, expected.length_km)
    assert len(chain.cells) == response.cell_count


def test_a_second_server_process_answers_from_the_shared_cache(redis_url, prefix, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = clean_env(ROUTERISK_REDIS_URL=redis_url, ROUTERISK_REDIS_PREFIX=prefix, ROUTERISK_LOG_FORMAT="json")
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
    try:
        request = line_request(QUERETARO)
        request.departure_time.FromDatetime(DEPARTURE + timedelta(days=1))  # a key of this test only
        with serving(redis_settings(redis_url, prefix)) as (_, stub):
            first = stub.ScoreRoute(request, timeout=30)
        assert not first.cached
        wait_serving(address)
        with grpc.insecure_channel(address) as channel:
            other = pb_grpc.RouteRiskServiceStub(channel).ScoreRoute(request, timeout=30)
        assert other.cached, log_path.read_text()[-2000:]
        assert without_cached(other) == first
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_distinct_prefixes_do_not_share(redis_url, prefix):
    with serving(redis_settings(redis_url, prefix)) as (_, stub):
        assert not stub.ScoreRoute(line_request(QUERETARO), timeout=30).cached
    other_prefix = f"{prefix}other-{uuid.uuid4()}:"  # under this test's prefix: cleaned up with it
    with serving(redis_settings(redis_url, other_prefix)) as (_, stub):
        assert not stub.ScoreRoute(line_request(QUERETARO), timeout=30).cached


def observation(port: str, at: str, minutes: int) -> admin_pb.BorderObservation:
    message = admin_pb.BorderObservation(port_number=port, lane="standard", wait_minutes=minutes)
    message.observed_at.FromDatetime(datetime.fromisoformat(f"2022-06-29T{at}:00+00:00"))
    return message


def standard_wait(stub: pb_grpc.RouteRiskServiceStub, port: str) -> pb.LaneWait:
    request = pb.ListBorderCrossingsRequest(port_number=port)
    request.time.FromDatetime(datetime(2022, 6, 29, 18, 10, tzinfo=UTC))
    crossing = stub.ListBorderCrossings(request, timeout=10).crossings[0]
    return next(w for w in crossing.lane_waits if w.lane == pb.CROSSING_LANE_STANDARD)


def test_an_older_batch_does_not_turn_back_the_shared_border_waits(redis_url, prefix):
    """A batch with one new reading and one older than the held one is accepted (1 accepted,
    1 stale); what the replicas share must still be the newest reading of each port."""
    with serving(redis_settings(redis_url, prefix)) as (first, stub):
        with grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            admin = admin_grpc.RouteRiskAdminServiceStub(channel)
            newer = admin_pb.LoadBorderObservationsRequest(observations=[observation("230404", "18:00", 30)])
            assert admin.LoadBorderObservations(newer, timeout=10).accepted == 1
            mixed = [observation("230404", "17:30", 45), observation("250602", "17:30", 20)]
            reply = admin.LoadBorderObservations(admin_pb.LoadBorderObservationsRequest(observations=mixed), timeout=10)
            assert (reply.accepted, reply.stale) == (1, 1)
        assert standard_wait(stub, "230404").expected_wait_minutes == 30
        with serving(redis_settings(redis_url, prefix)) as (_, late_stub):  # a replica started afterwards
            deadline = time.monotonic() + 5
            while standard_wait(late_stub, "250602").source != pb.WAIT_SOURCE_LIVE:
                assert time.monotonic() < deadline, "the new replica did not pick up the shared waits"
                time.sleep(0.05)
            late = standard_wait(late_stub, "230404")
            observed = late.observed_at.ToDatetime(tzinfo=UTC)
            assert (late.expected_wait_minutes, observed.hour, observed.minute) == (30, 18, 0)
