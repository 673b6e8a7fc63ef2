"""One run of every benchmark: routerisk against PostGIS and GeoPandas on the same data, its cost
curves, and the bare gRPC floor. Writes ``bench/results/<date>.json``, the plots and
``docs/performance.md``.

    python -m bench            # the full run (several minutes; what docs/performance.md shows)
    python -m bench --quick    # under two minutes; prints the tables, leaves the docs alone

Loopback only; every load is bounded in time. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pandas as pd

import seeds
from bench import contenders, report
from bench.data import BenchRoute, length_routes, ranking_routes, write_incidents
from bench.inprocess import build_from_file, cells_figures, decode_figures, sample, servicer_figures
from bench.serving import Server, batch_target, call_all, echo_target, measure, score_request, score_target
from geodata.border import load_border_data
from geodata.layer_store import LayerStore
from geodata.layers import BuildParams, RiskLayer
from service.usecases.scoring import ModelOptions, ScoreQuery, score_route

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEPARTURE_S = 1_741_752_000
SPEED_KMH = 60.0


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    incidents: tuple[int, ...]
    lengths_km: tuple[float, ...]
    ranking_routes: int
    runs: int
    budget_s: float
    load_seconds: float
    grpc_lengths_km: tuple[float, ...]
    concurrency: tuple[int, ...] = (1, 8, 32)
    workers: tuple[int, ...] = (1, 2)
    batch_size: int = 100
    # the comparison the targets name (1,000 km routes on 100k incidents), the agreement check, the gRPC runs
    target_incidents: int = 100_000

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls((10_000, 100_000), (10, 100, 1000), 12, 40, 0.4, 0.6, (100,))
        return cls((10_000, 100_000, 1_000_000), (10, 100, 1000, 3000), 24, 300, 3.0, 3.0, (100, 1000))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under two minutes")
    parser.add_argument("--corridor-km", type=float, default=2.0, help="the contenders' corridor half-width")
    parser.add_argument("--no-postgis", action="store_true", help="leave PostGIS out (no install)")
    parser.add_argument("--redis-url", default=os.environ.get("ROUTERISK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the results JSON goes")
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/performance.md and its plots (default: on for the full run)",
    )
    args = parser.parse_args(argv)
    plan = Plan.of(args.quick)
    started = time.perf_counter()
    results = run(plan, args)
    results["wall_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    name = datetime.now(UTC).strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    out = args.out / f"{name}.json"
    report.save(results, out)
    print(report.summary(results))
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", file=sys.stderr)
    if args.docs if args.docs is not None else not args.quick:
        report.write_docs(results, ROOT / "docs")
        print("docs/performance.md and docs/figures/ updated", file=sys.stderr)


def run(plan: Plan, args: argparse.Namespace) -> dict:
    results: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "plan": asdict(plan),
        "corridor_km": args.corridor_km,
    }
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    routes = length_routes(list(plan.lengths_km))
    ranking = ranking_routes(plan.ranking_routes)
    dsn = None if args.no_postgis else _postgis(results)
    results["routes"] = [{"name": r.name, "km": r.km, "vertices": len(r.path)} for r in routes]
    log("route decoding and route → cells")
    thousand = next(r for r in routes if r.km > 900)
    results["decode"] = decode_figures(thousand.path, plan.runs)
    results["cells"] = []
    for route in routes:
        timing, cells = cells_figures(route.path, 8, plan.runs)
        results["cells"].append({"km": route.km, "cells": cells, **asdict(timing)})
    results["layers"], results["scoring"], results["agreement"] = [], [], {}
    with tempfile.TemporaryDirectory(prefix="routerisk-bench-") as tmp:
        serving_store = None
        for count in plan.incidents:
            log(f"{count:,} incidents: file, layer, contenders")
            csv_path = Path(tmp) / f"incidents-{count}.csv"
            write_incidents(csv_path, count)
            store = LayerStore(Path(tmp) / f"store-{count}")
            incidents, layer, figures = build_from_file(csv_path, store)
            results["layers"].append(asdict(figures))
            rivals = _contenders(dsn, csv_path, incidents, args.corridor_km, results, count)
            try:
                for route in routes:
                    results["scoring"].append(_score_case(route, count, layer, border, rivals, plan))
                if count == plan.target_incidents:
                    results["agreement"] = agreement(ranking, layer, border, rivals)
                    results["servicer"] = servicer_figures(layer, border, grpc_requests(plan), plan.runs)
                    serving_store = store.root
            finally:
                for rival in rivals.values():
                    getattr(rival, "close", lambda: None)()
        log("serving through gRPC")
        results["serving"] = serving(plan, serving_store, args.redis_url)
    return results


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    mem_kib = (
        next(
            (
                int(line.split()[1])
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            0,
        )
        if Path("/proc/meminfo").exists()
        else 0
    )
    import geopandas
    import h3
    import shapely

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "h3": h3.__version__,
            "grpcio": grpc.__version__,
            "shapely": shapely.__version__,
            "geopandas": geopandas.__version__,
            "pandas": pd.__version__,
        },
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "argv": shlex.join(sys.argv),
    }


def _postgis(results: dict) -> str | None:
    try:
        dsn = contenders.ensure_postgis()
    except Exception as error:  # a missing contender is reported, not fatal
        results["postgis_error"] = f"{type(error).__name__}: {error}"
        log(f"PostGIS left out: {results['postgis_error']}")
        return None
    import psycopg

    with psycopg.connect(dsn) as connection:
        results["machine"]["versions"]["postgresql"] = connection.execute("SHOW server_version").fetchone()[0]
        results["machine"]["versions"]["postgis"] = connection.execute("SELECT postgis_lib_version()").fetchone()[0]
    return dsn


def _contenders(dsn: str | None, csv_path: Path, incidents, corridor_km: float, results: dict, count: int) -> dict:
    """The contenders for one incident file, set up (their setup timed apart from their queries)."""
    params = BuildParams()
    setup = results.setdefault("contender_setup", [])
    rivals: dict = {}
    started = time.perf_counter()
    rivals["geopandas"] = contenders.GeoPandasContender(incidents, params, corridor_km)
    setup.append({"contender": "geopandas", "incidents": count, "seconds": time.perf_counter() - started})
    if dsn is not None:
        started = time.perf_counter()
        rivals["postgis"] = contenders.PostGISContender(dsn, csv_path, incidents, params, corridor_km)
        setup.append({"contender": "postgis", "incidents": count, "seconds": time.perf_counter() - started})
    return rivals


def _query(route: BenchRoute) -> ScoreQuery:
    return ScoreQuery(route.path, DEPARTURE_S, SPEED_KMH)


def _score_case(route: BenchRoute, count: int, layer: RiskLayer, border, rivals: dict, plan: Plan) -> dict:
    query = _query(route)
    options = ModelOptions()
    case = {"km": route.km, "incidents": count, "timings": {}, "answers": {}}
    case["timings"]["routerisk"] = asdict(sample(lambda: score_route(query, layer, border, options), plan.runs))
    case["answers"]["routerisk"] = score_route(query, layer, border, options).expected
    for name, rival in rivals.items():
        variants = {"postgis": ("plain", "subdivided")}.get(name, ("",))
        for variant in variants:
            label = f"{name}-{variant}" if variant else name
            ask = (
                (lambda r=rival, v=variant: r.answer(route.path, v))
                if variant
                else (lambda r=rival: r.answer(route.path))
            )
            case["timings"][label] = asdict(sample(ask, plan.runs, plan.budget_s))
            case["answers"][label] = ask().weighted
    log(f"  {route.km:,.0f} km: " + ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in case["timings"].items()))
    return case


def agreement(routes: list[BenchRoute], layer: RiskLayer, border, rivals: dict) -> dict:
    """Rank correlation (Spearman) of the three answers over routes from safe to dangerous."""
    options = ModelOptions()
    answers = {"routerisk": [score_route(_query(r), layer, border, options).expected for r in routes]}
    for name, rival in rivals.items():
        answers[name] = [rival.answer(r.path).weighted for r in routes]
    ranks = pd.DataFrame(answers).rank()
    names = list(answers)
    pairs = {
        f"{a}~{b}": float(np.corrcoef(ranks[a], ranks[b])[0, 1]) for i, a in enumerate(names) for b in names[i + 1 :]
    }
    result = {"routes": [r.name for r in routes], "answers": answers, "spearman": pairs}
    if "postgis" in answers:
        pg, gp = np.asarray(answers["postgis"]), np.asarray(answers["geopandas"])
        result["postgis_geopandas_max_rel_diff"] = float(np.max(np.abs(pg - gp) / np.maximum(pg, 1e-9)))
    return result


def serving(plan: Plan, layer_dir: Path | None, redis_url: str) -> dict:
    """gRPC figures: routerisk cached and uncached at each concurrency and worker count, Redis,
    BatchScoreRoutes, and the echo floor with the same message sizes."""
    layer_env = {"ROUTERISK_LAYER_DIR": str(layer_dir)} if layer_dir else {}
    by_km = grpc_requests(plan)
    out: dict = {"cases": [], "batch": [], "echo": [], "sizes": {}}
    for workers in plan.workers:
        for cached in (True, False):
            env = {**layer_env, "ROUTERISK_CACHE_MAX_ENTRIES": "10000" if cached else "0"}
            with Server.routerisk(workers, env) as server:
                for km, requests in by_km.items():
                    target = score_target(requests)
                    responses = call_all(server.address, target)
                    out["sizes"][str(km)] = {
                        "request": max(r.ByteSize() for r in requests),
                        "response": max(r.ByteSize() for r in responses),
                    }
                    for c in plan.concurrency:
                        load = measure(server.address, target, c, plan.load_seconds)
                        out["cases"].append(
                            _load_row(load, km=km, workers=workers, cache="in-process" if cached else "none")
                        )
                if workers == 1:
                    out["batch"].append(_batch(server.address, by_km[min(by_km)], plan, cached))
    out["redis"] = _redis_case(plan, layer_env, by_km[min(by_km)], redis_url)
    for workers in plan.workers:
        for km, size in out["sizes"].items():
            with Server.echo(workers, size["response"]) as server:
                target = echo_target(size["request"])
                for c in plan.concurrency:
                    out["echo"].append(
                        _load_row(measure(server.address, target, c, plan.load_seconds), km=float(km), workers=workers)
                    )
    return out


def grpc_requests(plan: Plan) -> dict[float, list]:
    """The ScoreRoute requests of the gRPC runs, by route length."""
    return {km: [score_request(r.path) for r in _distinct_routes(km)] for km in plan.grpc_lengths_km}


def _distinct_routes(km: float) -> list[BenchRoute]:
    """Several different routes of this length (windows of the ranking tour), so a cache has to hold them all."""
    return ranking_routes(20 if km <= 200 else 6, km)


def _load_row(load, **labels) -> dict:
    return {
        **labels,
        "concurrency": load.concurrency,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "rps": load.rps,
        "calls": load.calls,
    }


def _batch(address: str, requests: list, plan: Plan, cached: bool) -> dict:
    target = batch_target(requests, plan.batch_size)
    call_all(address, target)
    load = measure(address, target, 1, max(plan.load_seconds, 1.0))
    return {
        "cache": "in-process" if cached else "none",
        "size": plan.batch_size,
        "p50_ms": load.p50_ms,
        "routes_per_s": load.rps * plan.batch_size,
    }


def _redis_case(plan: Plan, layer_env: dict, requests: list, url: str) -> dict:
    """Cached answers served from Redis alone (no in-process tier), one worker."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        return {"skipped": f"Redis at {url} not reachable: {error}"}
    prefix = f"routerisk-bench:{uuid.uuid4().hex}:"
    env = {
        **layer_env,
        "ROUTERISK_REDIS_URL": url,
        "ROUTERISK_REDIS_PREFIX": prefix,
        "ROUTERISK_CACHE_MAX_ENTRIES": "0",
    }
    try:
        with Server.routerisk(1, env) as server:
            target = score_target(requests)
            call_all(server.address, target)
            rows = [
                _load_row(measure(server.address, target, c, plan.load_seconds), workers=1) for c in plan.concurrency
            ]
    finally:
        for key in client.scan_iter(match=prefix + "*", count=1000):  # our keys only; never FLUSHALL
            client.delete(key)
    return {"rows": rows}
