"""The asyncio server against the thread server (``ROUTERISK_SERVER_KIND``), same code otherwise:
``python -m bench.server_kinds [--rounds 4] [--seconds 3] [--cached] [--docs]``.

Both serve ``routerisk serve`` (1 worker, seed layer, ``ROUTERISK_MAX_CONCURRENT_RPCS=32``, the
same cap) to the same client (:func:`bench.serving.measure`), in turns, round after round, so
that outside load on the shared machine falls on both alike. Uncached: no result cache, every
call scores its 100 km route; cached: the in-process cache, every route answered once before.
Prints one JSON line per measurement and the medians; ``--docs`` writes them into their own
section of docs/performance.md (which a full ``python -m bench`` run keeps).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.data import ranking_routes
from bench.serving import Server, call_all, measure, score_request, score_target

KINDS = ("threads", "aio")
CONCURRENCY = (1, 8, 32)


def run(rounds: int, seconds: float, cached: bool) -> list[dict]:
    """Every kind at every concurrency, ``rounds`` times over, kinds alternating."""
    target = score_target([score_request(r.path) for r in ranking_routes(20, 100.0)])
    env_cache = {"ROUTERISK_CACHE_MAX_ENTRIES": "10000" if cached else "0"}
    rows = []
    for round_ in range(rounds):
        for kind in KINDS if round_ % 2 == 0 else reversed(KINDS):
            with Server.routerisk(1, {**env_cache, "ROUTERISK_SERVER_KIND": kind}) as server:
                call_all(server.address, target)
                for concurrency in CONCURRENCY:
                    load = measure(server.address, target, concurrency, seconds)
                    row = {
                        "round": round_,
                        "kind": kind,
                        "cache": "in-process" if cached else "none",
                        "concurrency": concurrency,
                        "rps": round(load.rps, 1),
                        "p50_ms": round(load.p50_ms, 2),
                        "p99_ms": round(load.p99_ms, 2),
                        "load_average": os.getloadavg()[0],
                    }
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def medians(rows: list[dict]) -> list[dict]:
    """Per kind, cache and concurrency: the median of each figure over the rounds."""
    keys = sorted({(r["cache"], r["concurrency"], r["kind"]) for r in rows})
    out = []
    for cache, concurrency, kind in keys:
        same = [r for r in rows if (r["cache"], r["concurrency"], r["kind"]) == (cache, concurrency, kind)]
        figures = {f: round(statistics.median(r[f] for r in same), 2) for f in ("rps", "p50_ms", "p99_ms")}
        out.append({"cache": cache, "concurrency": concurrency, "kind": kind, "rounds": len(same), **figures})
    return out


def section(rows: list[dict], command: str, load_before: str, load_after: str) -> str:
    """The page's section: the medians side by side, threads first, and how they were measured."""
    by = {(r["cache"], r["concurrency"], r["kind"]): r for r in medians(rows)}
    lines = [
        "## The asyncio server against the thread server",
        "",
        f"`{command}`, {datetime.now(UTC).isoformat(timespec='seconds')}, 2 cores shared with other work: "
        f"load average {load_before} before, {load_after} after (1, 5, 15 min). `routerisk serve` with "
        "`ROUTERISK_SERVER_KIND=threads` (the thread-per-call server) and `aio` (the default), the same cap "
        "(`ROUTERISK_MAX_CONCURRENT_RPCS=32`), 1 worker, seed layer, 20 distinct 100 km routes as polylines; "
        "the kinds in turn, round after round; medians over the rounds. Uncached: no result cache, every "
        "call scores its route; cached: every route answered once before.",
        "",
        "| cache | in flight | threads req/s | aio req/s | aio / threads | threads p50 / p99 ms | aio p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for cache in ("none", "in-process"):
        for concurrency in CONCURRENCY:
            threads, aio = by.get((cache, concurrency, "threads")), by.get((cache, concurrency, "aio"))
            if threads is None or aio is None:
                continue
            lines.append(
                f"| {cache} | {concurrency} | {threads['rps']:,.0f} | {aio['rps']:,.0f} | "
                f"{aio['rps'] / threads['rps']:.2f} | {threads['p50_ms']:.2f} / {threads['p99_ms']:.1f} | "
                f"{aio['p50_ms']:.2f} / {aio['p99_ms']:.1f} |"
            )
    loads = [r["load_average"] for r in rows]
    lines += [
        "",
        f"The 1-minute load average went from {min(loads):.1f} to {max(loads):.1f} during the rows. Why the",
        "asyncio server: a call holds a thread and a concurrency slot only once its request is complete",
        "(`docs/reliability.md`, unfinished requests). What it costs: a call that scores goes from the event",
        "loop to a thread of the pool and back, about 0.3 ms per call here (a cached call at one in flight:",
        "0.97-1.08 ms so, 0.73-0.77 ms with the work run on the loop, 0.50-0.65 ms on the thread server, one",
        "measurement of 3,000 calls each), so a ScoreRoute answer already in memory (no time shift, request",
        "under 16 KiB) is given on the loop without a thread. With 32 calls scoring, 32 threads share the GIL",
        "with the loop that does every call's I/O, and the tail grows. A pool of 4 threads instead of one per",
        "slot, and a shorter GIL switch interval, were tried: within this machine's noise, so not kept.",
    ]
    if all(("in-process", c, kind) in by for c in CONCURRENCY[1:] for kind in KINDS):
        rps = {(c, kind): by[("in-process", c, kind)]["rps"] for c in CONCURRENCY[1:] for kind in KINDS}
        cached = [rps[(c, "aio")] / rps[(c, "threads")] for c in CONCURRENCY[1:]]
        lines += [
            "The targets of cached throughput against the echo (above) were measured on the thread server;",
            f"the asyncio server serves {min(cached):.2f}-{max(cached):.2f} of its cached throughput at 8 and 32",
            "in flight here, so those targets are that much further from met with it.",
        ]
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_kinds", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cached", action="store_true", help="also the cached case")
    parser.add_argument("--docs", action="store_true", help="write the section of docs/performance.md")
    args = parser.parse_args()
    before = _load()
    rows = run(args.rounds, args.seconds, cached=False)
    if args.cached:
        rows += run(args.rounds, args.seconds, cached=True)
    for row in medians(rows):
        print("median", json.dumps(row))
    if args.docs:
        flags = f"--rounds {args.rounds} --seconds {args.seconds:g}" + (" --cached" if args.cached else "")
        text = section(rows, f"nice -n 10 python -m bench.server_kinds {flags} --docs", before, _load())
        page = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
        page.write_text(
            report.with_kept_section(
                page.read_text(encoding="utf-8"), report.SERVER_KINDS_BEGIN, report.SERVER_KINDS_END, text
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
