"""Benchmark of serving: cached and uncached ScoreRoute through gRPC, one and two workers,
in-process cache and Redis.

Run from the repository root (loopback only; every run is bounded and stops by itself)::

    python bench/bench_serving.py [--seconds 5] [--redis-url redis://127.0.0.1:6379/0]

Each case starts ``routerisk serve`` as a subprocess (``--workers 1`` or ``2``), warms a set
of routes, then measures from a separate client process: latency with one client issuing
calls back to back (p50, p99) and throughput with many concurrent calls (grpc.aio). Routes
are sent as encoded polylines, as a TMS integration would. Asserts nothing; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import polyline as polyline_codec
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.bench_route import synthetic_route
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc

DEPARTURE_S = 1_741_752_000


def routes(length_km: float, count: int) -> list[str]:
    """``count`` distinct encoded polylines of ``length_km`` (about 2 vertices per km)."""
    vertices = max(int(length_km * 2), 2)
    return [
        polyline_codec.encode(list(zip(*synthetic_route(vertices, length_km, seed=s), strict=True)), 5)
        for s in range(count)
    ]


def request(encoded: str) -> pb.ScoreRouteRequest:
    message = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=encoded))
    message.departure_time.FromSeconds(DEPARTURE_S)
    return message


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(workers: int, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{free_port()}"
    script = Path(sys.executable).parent / "routerisk"
    process = subprocess.Popen(
        [str(script), "serve", "--address", address, "--workers", str(workers)],
        env={**os.environ, "ROUTERISK_LOG_LEVEL": "WARNING", **env},
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    break
            except grpc.RpcError:
                time.sleep(0.1)
    time.sleep(0.5 * workers)  # let every worker finish loading
    return process, address


def latency(address: str, requests: list[pb.ScoreRouteRequest], seconds: float) -> tuple[float, float, int]:
    """p50 and p99 in ms of back-to-back calls from one client."""
    samples = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            stub.ScoreRoute(requests[i % len(requests)], timeout=30)
            samples.append((time.perf_counter() - started) * 1000)
            i += 1
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99)), len(samples)


async def _throughput(address: str, requests: list[pb.ScoreRouteRequest], concurrency: int, seconds: float) -> float:
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]  # several connections: both workers get some
    stubs = [pb_grpc.RouteRiskServiceStub(c) for c in channels]
    done = 0
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal done
        stub = stubs[n % len(stubs)]
        i = n
        while time.monotonic() < deadline:
            await stub.ScoreRoute(requests[i % len(requests)], timeout=30)
            done += 1
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.monotonic() - started
    for channel in channels:
        await channel.close()
    return done / elapsed


def throughput(address: str, requests: list[pb.ScoreRouteRequest], concurrency: int, seconds: float) -> float:
    """Requests per second with ``concurrency`` calls in flight, from this (separate) process."""
    return asyncio.run(_throughput(address, requests, concurrency, seconds))


def redis_get_ms(url: str, value_size: int, runs: int = 2000) -> float:
    """p50 of a GET of a value this size: the Redis part of a cached answer."""
    client = redis.Redis.from_url(url)
    key = f"routerisk-bench:{uuid.uuid4()}"
    client.set(key, os.urandom(value_size), px=60_000)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        client.get(key)
        samples.append((time.perf_counter() - started) * 1000)
    client.delete(key)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--redis-url", default=os.environ.get("ROUTERISK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    opts = parser.parse_args()
    short = [request(e) for e in routes(100, 20)]
    long = [request(e) for e in routes(1000, 5)]
    prefix = f"routerisk-bench:{uuid.uuid4()}:"
    rows = []
    cases = [
        ("in-process cache", 1, {}),
        ("in-process cache", 2, {}),
        ("Redis cache", 1, {"ROUTERISK_REDIS_URL": opts.redis_url, "ROUTERISK_REDIS_PREFIX": prefix}),
        ("Redis cache", 2, {"ROUTERISK_REDIS_URL": opts.redis_url, "ROUTERISK_REDIS_PREFIX": prefix + "w2:"}),
        ("no cache", 1, {"ROUTERISK_CACHE_MAX_ENTRIES": "0"}),
        ("no cache", 2, {"ROUTERISK_CACHE_MAX_ENTRIES": "0"}),
    ]
    value_size = 0
    for name, workers, env in cases:
        process, address = start(workers, env)
        try:
            with grpc.insecure_channel(address) as channel:
                stub = pb_grpc.RouteRiskServiceStub(channel)
                for message in short + long:  # warm the caches (and every worker's code paths)
                    value_size = max(value_size, stub.ScoreRoute(message, timeout=30).ByteSize())
            if name == "no cache":
                for label, requests in (("100 km", short), ("1,000 km", long)):
                    p50, p99, _ = latency(address, requests, opts.seconds)
                    rps = throughput(address, requests, 8, opts.seconds)
                    rows.append((f"uncached {label}", workers, p50, p99, rps))
            else:
                p50, p99, _ = latency(address, short, opts.seconds)
                rps = {c: throughput(address, short, c, opts.seconds) for c in (8, 32)}
                rows.append((f"cached 100 km, {name}", workers, p50, p99, max(rps.values())))
        finally:
            process.terminate()
            process.wait(timeout=60)
    print(f"{'case':<36} {'workers':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s (8–32 in flight)':>24}")
    for case, workers, p50, p99, rps in rows:
        print(f"{case:<36} {workers:>7} {p50:>8.2f} {p99:>8.2f} {rps:>24.0f}")
    get_ms = redis_get_ms(opts.redis_url, value_size)
    cached_redis = next(r for r in rows if r[0].endswith("Redis cache") and r[1] == 1)
    print(
        f"Redis GET of a {value_size}-byte answer: p50 {get_ms:.3f} ms = "
        f"{100 * get_ms / cached_redis[2]:.0f} % of a cached ScoreRoute (1 worker)"
    )


if __name__ == "__main__":
    main()
