"""ScoreRoute over Connect JSON (the HTTP port) against gRPC, same server, same machine, same client.

One ``routerisk serve`` subprocess with both ports on loopback; one client process in which
``concurrency`` threads call back to back, each over its own connection: a blocking grpc stub on
its own channel, or an ``httpx.Client``. The request is the same ScoreRouteRequest (the Mexico
City → Laredo demo route as an encoded polyline), served from the cache after the first call, so
what differs is the transport: HTTP/1.1 + JSON + uvicorn and connectrpc against HTTP/2 + protobuf
+ grpcio. The CPU the server process and the client spent per call is reported beside the times.
Every load is bounded in time.

    nice -n 10 python -m bench.http [--seconds 5] [--docs]   # --docs: rewrites its table in docs/performance.md
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
from google.protobuf import json_format

import seeds
from bench.report import HTTP_BEGIN, HTTP_END, kept_section
from bench.serving import SCORE_METHOD, Load, Server, free_port, score_request
from geodata.route import from_file
from routerisk.v1 import route_risk_service_pb2 as pb

CONCURRENCY = (1, 8, 32)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
GRPC, CONNECT = "gRPC (protobuf, HTTP/2)", "Connect JSON (HTTP/1.1)"

# one client connection and its call, made in the thread that uses it
Caller = Callable[[], Callable[[], object]]


@dataclass(frozen=True)
class Row:
    """One load level of one transport, with the CPU the server and this client spent per call."""

    transport: str
    load: Load
    server_cpu_ms: float
    client_cpu_ms: float


def grpc_caller(address: str, request: pb.ScoreRouteRequest) -> Caller:
    def connect() -> Callable[[], object]:
        channel = grpc.insecure_channel(address)
        serialize, deserialize = pb.ScoreRouteRequest.SerializeToString, pb.ScoreRouteResponse.FromString
        call = channel.unary_unary(SCORE_METHOD, serialize, deserialize)
        return lambda: call(request, timeout=60)

    return connect


def connect_caller(address: str, request: pb.ScoreRouteRequest) -> Caller:
    body = json_format.MessageToJson(request, indent=None).encode()
    headers = {"content-type": "application/json"}

    def connect() -> Callable[[], object]:
        client = httpx.Client(base_url=f"http://{address}", timeout=60)
        return lambda: client.post(SCORE_METHOD, content=body, headers=headers).raise_for_status()

    return connect


def measure(caller: Caller, concurrency: int, seconds: float) -> Load:
    """``concurrency`` threads calling back to back for ``seconds``: throughput and latency percentiles."""
    samples: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)
    deadline: list[float] = []

    def client() -> None:
        call = caller()
        call()  # the connection is open before the clock starts
        mine: list[float] = []
        ready.wait()
        while (now := time.perf_counter()) < deadline[0]:
            call()
            mine.append((time.perf_counter() - now) * 1000)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds)
    started = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    p50, p99 = np.percentile(samples, [50, 99])
    return Load(concurrency, len(samples), elapsed, float(p50), float(p99))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _row(pid: int, transport: str, caller: Caller, concurrency: int, seconds: float) -> Row:
    server, client = _cpu_s(pid), time.process_time()
    load = measure(caller, concurrency, seconds)
    calls = max(load.calls, 1)
    return Row(transport, load, (_cpu_s(pid) - server) * 1000 / calls, (time.process_time() - client) * 1000 / calls)


def run(seconds: float) -> list[Row]:
    request = score_request(from_file(seeds.DEMO_ROUTES["mexico-city_laredo"]))
    http_address = f"127.0.0.1:{free_port()}"
    rows: list[Row] = []
    with Server.routerisk(1, {"ROUTERISK_HTTP_ADDRESS": http_address}) as server:
        callers = {GRPC: grpc_caller(server.address, request), CONNECT: connect_caller(http_address, request)}
        for caller in callers.values():
            measure(caller, 1, 0.5)  # warm: the answer is cached from here on
        for concurrency in CONCURRENCY:
            for name, caller in callers.items():
                rows.append(_row(server.process.pid, name, caller, concurrency, seconds))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| in flight | transport | req/s | p50 ms | p99 ms | server CPU ms/call | client CPU ms/call |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        load = row.load
        lines.append(
            f"| {load.concurrency} | {row.transport} | {load.rps:,.0f} | {load.p50_ms:.2f} | {load.p99_ms:.2f} "
            f"| {row.server_cpu_ms:.2f} | {row.client_cpu_ms:.2f} |"
        )
    return "\n".join(lines)


def section(rows: list[Row], seconds: float, load_average: str) -> str:
    """The page's section: how it was measured, the table, and what it says."""
    by = {(r.transport, r.load.concurrency): r for r in rows}
    shares = ", ".join(f"{by[CONNECT, c].load.rps / by[GRPC, c].load.rps:.0%}" for c in CONCURRENCY)
    one_grpc, one_connect = by[GRPC, 1], by[CONNECT, 1]
    cpu = sum(by[CONNECT, c].server_cpu_ms for c in CONCURRENCY) / sum(by[GRPC, c].server_cpu_ms for c in CONCURRENCY)
    return f"""## Over HTTP: Connect JSON against gRPC

The HTTP port (issue 17) serves the same ScoreRoute from the same process, cache and handler. One run
of `nice -n 10 python -m bench.http --seconds {seconds:g} --docs` on {time.strftime("%Y-%m-%d")}, on this
machine with other work on its two cores (load average {load_average} at the end: read the ratios): one
`routerisk serve`, one client process whose threads each call back to back over their own connection
(a blocking grpc stub on its own channel, or an `httpx.Client`), the Mexico City → Laredo demo route as
an encoded polyline, answered from the cache, so the table measures the transports. CPU per call is the
server process's and the client process's user + system time over the load, divided by the calls.

{table(rows)}

Connect JSON answers {shares} of gRPC's calls per second at {", ".join(map(str, CONCURRENCY))} in flight;
at 1 in flight its p50 is {one_connect.load.p50_ms:.1f} ms against {one_grpc.load.p50_ms:.1f} ms. A cached
answer costs the server about {cpu:.1f}× the CPU over Connect JSON: proto3 JSON parsing and printing (a 7 KB
answer), HTTP/1.1 parsed in Python (uvicorn's h11), the hop from the event loop to a handler thread and
back, the two taking turns at the GIL as calls are added. The HTTP port is for what cannot speak gRPC
(curl, browsers, the dispatcher page, integrations behind HTTP-only proxies), not the bulk path: bulk
scoring belongs on gRPC, or in `BatchScoreRoutes` over either, which pays the per-call cost once. Uncached
calls are dominated by the scoring itself (above), the same over both."""


def write_docs(text: str) -> None:
    """Replace (or append) this section of docs/performance.md; a full ``python -m bench`` keeps it."""
    page = DOCS.read_text(encoding="utf-8")
    old = kept_section(page, HTTP_BEGIN, HTTP_END)
    block = f"{HTTP_BEGIN}\n{text.strip()}\n{HTTP_END}"
    DOCS.write_text(page.replace(old, block) if old else page.rstrip("\n") + "\n\n" + block + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per transport and load level")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    rows = run(args.seconds)
    print(table(rows))
    if args.docs:
        write_docs(section(rows, args.seconds, " ".join(Path("/proc/loadavg").read_text().split()[:3])))


if __name__ == "__main__":
    main()
