"""Serving through gRPC: ``routerisk serve`` and the bare echo floor as subprocesses, loaded
from this process over loopback.

One client process on the same machine as the servers. At concurrency 1 a blocking stub calls
back to back; at 8 and 32, ``grpc.aio`` keeps that many calls in flight over four channels (so
every ``--workers`` process gets connections). Every run is bounded in time and stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import polyline as polyline_codec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.echo import METHOD as ECHO_METHOD
from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb

DEPARTURE_S = 1_741_752_000  # 2025-03-12T04:00:00Z, 22:00 in Mexico City
SCORE_METHOD = "/routerisk.v1.RouteRiskService/ScoreRoute"
BATCH_METHOD = "/routerisk.v1.RouteRiskService/BatchScoreRoutes"
AIO_CHANNELS = 4
# calls a server takes at once: the most the benchmark keeps in flight (routerisk refuses more with
# RESOURCE_EXHAUSTED), plus the 4 spare threads routerisk keeps for health checks
MAX_IN_FLIGHT = 32
HANDLER_THREADS = MAX_IN_FLIGHT + 4


@dataclass(frozen=True)
class Target:
    """One unary method and the requests to send it, in turn."""

    method: str
    requests: Sequence[object]
    serialize: Callable[[object], bytes] | None = None
    deserialize: Callable[[bytes], object] | None = None


@dataclass(frozen=True)
class Load:
    """What one load level measured."""

    concurrency: int
    calls: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.calls / self.seconds


def score_request(path: RoutePath) -> pb.ScoreRouteRequest:
    """A request as a TMS sends it: the route as an encoded polyline (precision 5)."""
    encoded = polyline_codec.encode(list(zip(path.lat.tolist(), path.lng.tolist(), strict=True)), 5)
    message = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=encoded))
    message.departure_time.FromSeconds(DEPARTURE_S)
    return message


def score_target(requests: Sequence[pb.ScoreRouteRequest]) -> Target:
    return Target(SCORE_METHOD, requests, pb.ScoreRouteRequest.SerializeToString, pb.ScoreRouteResponse.FromString)


def batch_target(requests: Sequence[pb.ScoreRouteRequest], size: int) -> Target:
    batches = [
        pb.BatchScoreRoutesRequest(requests=[requests[(i + k) % len(requests)] for k in range(size)])
        for i in range(0, max(len(requests), size), size)
    ]
    return Target(
        BATCH_METHOD, batches, pb.BatchScoreRoutesRequest.SerializeToString, pb.BatchScoreRoutesResponse.FromString
    )


def echo_target(request_bytes: int) -> Target:
    return Target(ECHO_METHOD, [os.urandom(request_bytes)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess on a free loopback port, stopped with SIGTERM on exit."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, ready: Target | None = None) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [*argv, "--address", self.address],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(ready)

    @classmethod
    def routerisk(cls, workers: int, env: dict[str, str]) -> Server:
        script = Path(sys.executable).parent / "routerisk"
        env = {
            "ROUTERISK_LOG_LEVEL": "WARNING",
            "ROUTERISK_METRICS_ADDRESS": "",
            "ROUTERISK_MAX_CONCURRENT_RPCS": str(MAX_IN_FLIGHT),
            **env,
        }
        return cls([str(script), "serve", "--workers", str(workers)], env)

    @classmethod
    def echo(cls, workers: int, response_bytes: int) -> Server:
        argv = [sys.executable, "-m", "bench.echo", "--workers", str(workers), "--threads", str(HANDLER_THREADS)]
        argv += ["--response-bytes", str(response_bytes)]
        return cls(argv, ready=echo_target(1))

    def _wait_ready(self, ready: Target | None, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode} before it was ready")
                try:
                    if ready is not None:
                        channel.unary_unary(ready.method)(ready.requests[0], timeout=1)
                        return
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        time.sleep(1.0)  # every worker process loads its data; give the others a moment
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise TimeoutError(f"server at {self.address} not ready in {timeout:.0f} s")

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def call_all(address: str, target: Target) -> list[object]:
    """Every request once (to warm caches and code paths); returns the responses."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(target.method, target.serialize, target.deserialize)
        return [call(request, timeout=60) for request in target.requests]


def measure(address: str, target: Target, concurrency: int, seconds: float) -> Load:
    """Latency percentiles and throughput with ``concurrency`` calls in flight for ``seconds``."""
    if concurrency == 1:
        samples, elapsed = _blocking(address, target, seconds)
    else:
        samples, elapsed = asyncio.run(_in_flight(address, target, concurrency, seconds))
    p50, p99 = np.percentile(samples, [50, 99])
    return Load(concurrency, len(samples), elapsed, float(p50), float(p99))


def _blocking(address: str, target: Target, seconds: float) -> tuple[list[float], float]:
    samples: list[float] = []
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(target.method, target.serialize, target.deserialize)
        started = time.perf_counter()
        deadline = started + seconds
        i = 0
        while (now := time.perf_counter()) < deadline:
            call(target.requests[i % len(target.requests)], timeout=60)
            samples.append((time.perf_counter() - now) * 1000)
            i += 1
        return samples, time.perf_counter() - started


async def _in_flight(address: str, target: Target, concurrency: int, seconds: float) -> tuple[list[float], float]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(AIO_CHANNELS)]
    calls = [c.unary_unary(target.method, target.serialize, target.deserialize) for c in channels]
    samples: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        call, i = calls[n % len(calls)], n
        while (now := time.perf_counter()) < deadline:
            await call(target.requests[i % len(target.requests)], timeout=60)
            samples.append((time.perf_counter() - now) * 1000)
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close()
    return samples, elapsed
