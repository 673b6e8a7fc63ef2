"""The asyncio server against the thread server (``ROUTERISK_SERVER_KIND``), same code otherwise:
``python -m bench.server_kinds [--rounds 4] [--seconds 3]``.

Both serve ``routerisk serve`` (1 worker, seed layer, ``ROUTERISK_MAX_CONCURRENT_RPCS=32``, the
same cap) to the same client (:func:`bench.serving.measure`), in turns, round after round, so
that outside load on the shared machine falls on both alike. Uncached: no result cache, every
call scores its 100 km route; cached: the in-process cache, every route answered once before.
Prints one JSON line per measurement and the medians; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_kinds", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cached", action="store_true", help="also the cached case")
    args = parser.parse_args()
    rows = run(args.rounds, args.seconds, cached=False)
    if args.cached:
        rows += run(args.rounds, args.seconds, cached=True)
    for row in medians(rows):
        print("median", json.dumps(row))


if __name__ == "__main__":
    main()
