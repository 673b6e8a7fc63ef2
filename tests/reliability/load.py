"""Load, overload and soak against ``routerisk serve`` as a subprocess, on 127.0.0.1 only.

Every run is bounded in requests and in seconds and stops by itself. The client is
``grpc.aio`` in this process; the server's resident memory, file descriptors and threads
are read from ``/proc/<pid>``. The CI-sized variants run in the test suite
(``tests/test_reliability_load.py``); the long ones are ``python -m tests.reliability
overload|soak`` (see ``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import polyline as polyline_codec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.grpc.server import SPARE_THREADS
from tests.conftest import free_port, routerisk_command, wait_serving

BASE_DEPARTURE_S = 1_420_070_400  # 2015-01-01T00:00:00Z: room for 50,000 distinct hours before today
HOUR_S = 3600
OK, EXHAUSTED, INVALID = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------------ the server


@dataclass
class ServerProcess:
    process: subprocess.Popen
    address: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def resources(self) -> dict[str, int]:
        """Resident memory (KiB), open file descriptors and threads of the server process."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {
            "rss_kib": int(values["VmRSS"].split()[0]),
            "fds": len(os.listdir(f"/proc/{self.pid}/fd")),
            "threads": int(values["Threads"]),
        }

    def terminate(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


@contextlib.contextmanager
def server_process(log_dir: Path, **env: str) -> Iterator[ServerProcess]:
    """``routerisk serve`` on a free loopback port with ``ROUTERISK_*`` overrides."""
    address = f"127.0.0.1:{free_port()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{address.rsplit(':', 1)[1]}.log"
    variables = {**os.environ, "ROUTERISK_LOG_FORMAT": "json", "ROUTERISK_METRICS_ADDRESS": ""}
    variables.update({f"ROUTERISK_{k.upper()}": str(v) for k, v in env.items()})
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=variables)
    server = ServerProcess(process, address, log_path)
    try:
        wait_serving(address)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# ------------------------------------------------------------------ requests


def _route(seed: int, km: float = 100.0) -> str:
    """A ~``km`` route (2 vertices per km) in central Mexico, encoded as a polyline."""
    rng = np.random.default_rng(seed)
    n = int(km * 2)
    start_lat, start_lng = 19.5 + rng.uniform(0, 2.0), -101.0 + rng.uniform(0, 2.0)
    heading = rng.uniform(0, 2 * np.pi)
    step = km / n / 111.0
    wobble = np.cumsum(rng.normal(0, 0.05, n))
    lat = start_lat + np.cumsum(step * np.cos(heading + wobble))
    lng = start_lng + np.cumsum(step * np.sin(heading + wobble))
    return polyline_codec.encode(list(zip(lat.round(5).tolist(), lng.round(5).tolist(), strict=True)), 5)


ROUTES = [_route(seed) for seed in range(8)]


def score_request(n: int) -> pb.ScoreRouteRequest:
    """Request ``n``: route ``n % 8`` departing ``n // 8`` hours after 2015-01-01 (distinct keys)."""
    request = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=ROUTES[n % len(ROUTES)]))
    request.departure_time.FromSeconds(BASE_DEPARTURE_S + (n // len(ROUTES)) * HOUR_S)
    return request


def essentials(response: pb.ScoreRouteResponse) -> bytes:
    """What must not change between two answers to one request (not ``cached``, not ``reference``)."""
    copy = pb.ScoreRouteResponse()
    copy.CopyFrom(response)
    copy.cached = False
    copy.reference = ""
    return copy.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class Kind:
    name: str
    method: str
    make: Callable[[int], object]
    expect: grpc.StatusCode = OK


def _bad(n: int) -> pb.ScoreRouteRequest:
    request = score_request(n)
    request.route.Clear()
    request.route.line.points.add(latitude=95.0, longitude=-99.0)
    request.route.line.points.add(latitude=20.0, longitude=-99.0)
    return request


MEXICO_CITY_BOX = pb.BoundingBox(west=-99.6, south=19.0, east=-98.6, north=20.0)
MIX: list[tuple[Kind, int]] = [  # (kind, weight in 100)
    (Kind("score-cached", "ScoreRoute", lambda n: score_request(n % 32)), 40),
    (Kind("score-uncached", "ScoreRoute", lambda n: score_request(1_000 + n)), 25),
    (
        Kind(
            "batch", "BatchScoreRoutes", lambda n: pb.BatchScoreRoutesRequest(requests=[score_request(n % 32), _bad(n)])
        ),
        5,
    ),
    (
        Kind(
            "compare",
            "CompareRoutes",
            lambda n: pb.CompareRoutesRequest(alternatives=[score_request(n % 32), score_request((n + 1) % 32)]),
        ),
        5,
    ),
    (
        Kind(
            "cell",
            "GetCellRisk",
            lambda n: pb.GetCellRiskRequest(location=pb.LatLng(latitude=19.0 + (n % 500) / 100, longitude=-99.2)),
        ),
        10,
    ),
    (Kind("hotspots", "ListHotspots", lambda n: pb.ListHotspotsRequest(bounds=MEXICO_CITY_BOX, top=20 + n % 5)), 5),
    (Kind("crossings", "ListBorderCrossings", lambda n: pb.ListBorderCrossingsRequest()), 5),
    (Kind("invalid", "ScoreRoute", _bad, INVALID), 5),
]
_SCHEDULE = [kind for kind, weight in MIX for _ in range(weight)]


def mixed(n: int) -> Kind:
    """The kind of request ``n`` of a mixed run (a fixed, shuffled cycle of 100)."""
    return _SCHEDULE[(n * 37) % len(_SCHEDULE)]


# ------------------------------------------------------------------ measuring


@dataclass
class Stats:
    codes: Counter = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    mismatches: list[int] = field(default_factory=list)
    sent: int = 0
    deferred: int = 0
    seconds: float = 0.0

    def add(self, code: grpc.StatusCode, seconds: float) -> None:
        self.codes[code.name] += 1
        self.latencies.setdefault(code.name, []).append(seconds)

    def quantile(self, code: str, q: float) -> float:
        values = self.latencies.get(code) or [float("nan")]
        return float(np.quantile(values, q))

    def rate(self, code: str | None = None) -> float:
        count = self.sent if code is None else self.codes.get(code, 0)
        return count / self.seconds if self.seconds else 0.0


class Answers:
    """The first answer to each request number; every later answer must be identical."""

    def __init__(self) -> None:
        self._known: dict[int, bytes] = {}

    def check(self, n: int, response: pb.ScoreRouteResponse, stats: Stats) -> None:
        got = essentials(response)
        first = self._known.setdefault(n, got)
        if first != got:
            stats.mismatches.append(n)


async def _call(stub: pb_grpc.RouteRiskServiceStub, method: str, request: object, timeout: float):
    return await getattr(stub, method)(request, timeout=timeout)


async def closed_loop(
    address: str,
    *,
    count: int,
    concurrency: int,
    seconds: float,
    make: Callable[[int], pb.ScoreRouteRequest],
    answers: Answers | None = None,
    timeout: float = 10.0,
) -> Stats:
    """``concurrency`` callers back to back until ``count`` calls or ``seconds`` have passed."""
    stats = Stats()
    counter = iter(range(count))
    stop_at = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)

        async def caller() -> None:
            for n in counter:
                if time.monotonic() > stop_at:
                    return
                stats.sent += 1
                started = time.monotonic()
                try:
                    response = await stub.ScoreRoute(make(n), timeout=timeout)
                except grpc.aio.AioRpcError as exc:
                    stats.add(exc.code(), time.monotonic() - started)
                    continue
                stats.add(OK, time.monotonic() - started)
                if answers is not None:
                    answers.check(n, response, stats)

        began = time.monotonic()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        stats.seconds = time.monotonic() - began
    return stats


async def open_loop(
    address: str,
    *,
    rate: float,
    seconds: float,
    make: Callable[[int], pb.ScoreRouteRequest],
    answers: Answers | None = None,
    timeout: float = 10.0,
    max_in_flight: int = 64,
) -> Stats:
    """Send ``rate`` calls per second for ``seconds``, whatever the answers (open loop), with at
    most ``max_in_flight`` calls outstanding on the one connection.

    The bound is what a real client has (a TMS sends a bounded batch), and it keeps this client
    below the server's per-connection stream limit (``ROUTERISK_MAX_STREAMS_PER_CONNECTION``):
    an unbounded generator on a starved machine piles thousands of calls into gRPC core, which
    then sheds some of them with a bare CANCELLED before the server sees them (docs/reliability.md).
    When the bound is reached the generator waits for a slot; the offered rate it really achieved
    is ``sent / seconds``, and calls that had to wait are counted in ``deferred``."""
    stats = Stats()
    slots = asyncio.Semaphore(max_in_flight)
    pending: set[asyncio.Task] = set()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)

        async def one(n: int) -> None:
            started = time.monotonic()
            try:
                response = await stub.ScoreRoute(make(n), timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                stats.add(exc.code(), time.monotonic() - started)
                if exc.code() not in (OK, EXHAUSTED) and len(stats.unexpected) < 5:
                    stats.unexpected.append(f"{exc.code().name}: {exc.details()}")
                return
            finally:
                slots.release()
            stats.add(OK, time.monotonic() - started)
            if answers is not None:
                answers.check(n, response, stats)

        began = time.monotonic()
        total = int(rate * seconds)
        for n in range(total):
            due = began + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if slots.locked():
                stats.deferred += 1
            await slots.acquire()
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
            stats.sent += 1
        stats.seconds = time.monotonic() - began  # the offered rate is sent / seconds
        if pending:
            await asyncio.wait(pending)  # every call has its own deadline: this ends
    return stats


class HealthProbe:
    """grpc.health.v1 Check every ``interval`` s on its own channel and thread.

    A check fails when it is not answered SERVING within ``deadline`` s: generous, so that the
    verdict is "health answers" whatever else the machine runs; how fast it answered is in
    ``latencies`` (the long run bounds it by the probes' 2 s timeout, ``checks.HEALTH_MAX_S``)."""

    def __init__(self, address: str, interval: float = 0.1, deadline: float = 10.0) -> None:
        self._address, self._interval, self._deadline = address, interval, deadline
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(self._address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=self._deadline)
                    if reply.status != health_pb2.HealthCheckResponse.SERVING:
                        self.failures.append(f"status {reply.status}")
                except grpc.RpcError as exc:
                    self.failures.append(exc.code().name)
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(self._interval)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# ------------------------------------------------------------------ overload


def run_overload(log_dir: Path, *, seconds: float = 5.0, cap: int = 4, factor: float = 2.0, attempts: int = 3) -> dict:
    """Measure capacity (``cap`` callers, uncached), then offer ``factor`` times that rate.

    Capacity is measured while whatever else runs on the machine runs; if that changes between
    the two phases (another process stops), the offered rate may turn out not to be an overload:
    no call refused. Then the phase is offered again at twice the factor, up to ``attempts``
    times, so the verdict never depends on how busy the machine was. Returns the figures; the
    caller asserts on them."""
    env = {"max_workers": cap, "max_concurrent_rpcs": cap, "cache_max_entries": 0, "grace_seconds": 20}
    with server_process(log_dir, **env) as server:
        answers = Answers()
        fixed = 64  # a fixed set of requests, recomputed each time (no cache): answers must agree
        make = lambda n: score_request(n % fixed)  # noqa: E731
        asyncio.run(closed_loop(server.address, count=fixed, concurrency=cap, seconds=30, make=make, answers=answers))
        baseline = asyncio.run(
            closed_loop(server.address, count=10**9, concurrency=cap, seconds=seconds, make=make, answers=answers)
        )
        capacity = baseline.rate("OK")
        offered_factor = factor
        tries: list[Stats] = []  # every attempt's answers are judged, not only the last one's
        with HealthProbe(server.address) as probe:
            for attempt in range(1, attempts + 1):
                over = asyncio.run(
                    open_loop(
                        server.address, rate=offered_factor * capacity, seconds=seconds, make=make, answers=answers
                    )
                )
                tries.append(over)
                if over.codes.get("RESOURCE_EXHAUSTED", 0) > 0 or attempt == attempts:
                    break
                offered_factor *= 2
        earlier = tries[:-1]
        after = asyncio.run(
            closed_loop(server.address, count=20, concurrency=1, seconds=30, make=make, answers=answers)
        )
        resources = server.resources()
        exit_code = server.terminate()
    return {
        "concurrency_cap": cap,
        "capacity_rps": capacity,
        "baseline_p50_s": baseline.quantile("OK", 0.5),
        "baseline_p99_s": baseline.quantile("OK", 0.99),
        "target_rps": offered_factor * capacity,
        "offered_factor": offered_factor,
        "overload_attempts": attempt,
        "offered_rps": over.rate(),
        "offered_calls": over.sent,
        "deferred_by_client_bound": over.deferred,
        "accepted": over.codes.get("OK", 0),
        "accepted_rps": over.rate("OK"),
        "rejected": over.codes.get("RESOURCE_EXHAUSTED", 0),
        "codes": dict(over.codes),
        "accepted_p50_s": over.quantile("OK", 0.5),
        "accepted_p99_s": over.quantile("OK", 0.99),
        "rejected_p50_s": over.quantile("RESOURCE_EXHAUSTED", 0.5),
        "rejected_p99_s": over.quantile("RESOURCE_EXHAUSTED", 0.99),
        "health_checks": len(probe.latencies),
        "health_failures": len(probe.failures),
        "health_failure_examples": probe.failures[:5],
        "health_max_s": max(probe.latencies, default=float("nan")),
        "earlier_attempt_codes": [dict(t.codes) for t in earlier],
        "mismatches": sum(len(t.mismatches) for t in tries) + len(baseline.mismatches) + len(after.mismatches),
        "after_codes": dict(after.codes),
        "client_problems": [p for t in tries for p in t.unexpected],
        "server_rss_mib": resources["rss_kib"] / 1024,
        "exit_code": exit_code,
        "seconds_per_phase": seconds,
    }


# ------------------------------------------------------------------ soak


def run_soak(log_dir: Path, *, requests: int, concurrency: int = 8, max_seconds: float = 900.0) -> dict:
    """``requests`` calls of the mixed kinds against one server; resources sampled as it goes."""
    samples: list[dict] = []
    # the handler pool sized to the callers: a pool grows on demand, up to its size, faster when
    # the machine is busy; a leak has no such bound, so the check is "never past the pool"
    env = {"max_workers": concurrency + 2, "max_trip_streams": 1}
    pool = env["max_workers"] + env["max_trip_streams"] + SPARE_THREADS
    with server_process(log_dir, **env) as server:
        probe = score_request(7)
        with grpc.insecure_channel(server.address) as channel:
            sync = pb_grpc.RouteRiskServiceStub(channel)
            first = sync.ScoreRoute(probe, timeout=30)
            stats = asyncio.run(_soak(server, requests, concurrency, max_seconds, samples))
            last = sync.ScoreRoute(probe, timeout=30)
        samples.append({"at": requests, **server.resources()})
        exit_code = server.terminate()
    warm = [s for s in samples if s["at"] >= requests * 0.1] or samples
    rss = [s["rss_kib"] / 1024 for s in warm]
    second_half = [s["rss_kib"] / 1024 for s in samples if s["at"] >= requests * 0.5] or rss
    return {
        "requests": stats.sent,
        "seconds": stats.seconds,
        "rps": stats.rate(),
        "concurrency": concurrency,
        "codes": dict(stats.codes),
        "unexpected": len(stats.unexpected),
        "unexpected_examples": stats.unexpected[:5],
        "rss_start_mib": samples[0]["rss_kib"] / 1024,
        "rss_after_warmup_mib": rss[0],
        "rss_max_mib": max(rss),
        "rss_end_mib": rss[-1],
        "rss_growth_after_warmup_mib": max(rss) - rss[0],
        "rss_growth_second_half_mib": max(second_half) - second_half[0],
        "fds": sorted({s["fds"] for s in warm}),
        "threads": sorted({s["threads"] for s in warm}),
        "threads_at_start": samples[0]["threads"],
        "handler_pool": pool,
        "samples": len(samples),
        "same_answer_before_and_after": essentials(first) == essentials(last),
        "layer_version_kept": first.layer_version == last.layer_version,
        "exit_code": exit_code,
    }


async def _soak(server: ServerProcess, requests: int, concurrency: int, max_seconds: float, samples: list) -> Stats:
    stats = Stats()
    counter = iter(range(requests))
    every = max(requests // 50, 1)
    stop_at = time.monotonic() + max_seconds
    samples.append({"at": 0, **server.resources()})
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)

        async def caller() -> None:
            for n in counter:
                if time.monotonic() > stop_at:
                    stats.unexpected.append(f"stopped at the time bound after {n} requests")
                    return
                kind = mixed(n)
                stats.sent += 1
                started = time.monotonic()
                try:
                    response = await getattr(stub, kind.method)(kind.make(n), timeout=30)
                    code = OK
                except grpc.aio.AioRpcError as exc:
                    code, response = exc.code(), None
                stats.add(code, time.monotonic() - started)
                if code != kind.expect:
                    stats.unexpected.append(f"{kind.name}: {code.name}")
                elif kind.name == "batch" and response is not None:
                    outcome = [r.WhichOneof("result") for r in response.results]
                    if outcome != ["response", "error"]:
                        stats.unexpected.append(f"batch: {outcome}")
                if n % every == 0:
                    samples.append({"at": n, **server.resources()})

        began = time.monotonic()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        stats.seconds = time.monotonic() - began
    return stats
