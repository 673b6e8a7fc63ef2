"""Results of a bench run → the JSON file, a text summary, the plots and docs/performance.md.

``python -m bench.report bench/results/DATE.json`` redraws the plots and the document from a
saved run without measuring again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

CONTENDERS = {
    "routerisk": "routerisk (whole scoring, in-process)",
    "postgis-plain": "PostGIS, one ST_DWithin",
    "postgis-subdivided": "PostGIS, route subdivided",
    "geopandas": "GeoPandas buffer + STRtree",
}
TARGET_KM = 1000


def target_n(results: dict) -> int:
    """The incident count of the head-to-head comparison, the agreement check and the gRPC runs."""
    return int(results["plan"]["target_incidents"])


def save(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")


# ---- derived figures -----------------------------------------------------------------------


def scoring_at(results: dict, km: float, incidents: int) -> dict | None:
    """The scoring case nearest to ``km`` for ``incidents``."""
    cases = [c for c in results["scoring"] if c["incidents"] == incidents]
    return min(cases, key=lambda c: abs(c["km"] - km)) if cases else None


def targets(results: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, how, met) rows."""
    rows: list[tuple[str, str, str, bool | None]] = []
    case = scoring_at(results, TARGET_KM, target_n(results))
    if case:
        ours = case["timings"]["routerisk"]["p50_ms"]
        rows.append(("in-process scoring ≤ 2.5 ms (1,000 km, 100k incidents)", f"{ours:.2f} ms p50", "", ours <= 2.5))
        for name, goal in (("postgis-plain", 100), ("postgis-subdivided", 100), ("geopandas", 15)):
            if name in case["timings"]:
                ratio = case["timings"][name]["p50_ms"] / ours
                rows.append((f"≥ {goal}× faster than {CONTENDERS[name]}", f"{ratio:,.1f}×", "", ratio >= goal))
    for workers, cached, echo in throughput_pairs(results):
        share = cached / echo
        rows.append(
            (
                f"cached gRPC throughput ≥ 60 % of the bare echo service ({workers} worker{'s' * (workers > 1)})",
                f"{share:.0%} ({cached:,.0f} vs {echo:,.0f} req/s)",
                "",
                share >= 0.6,
            )
        )
    fit = linear_fit(results)
    if fit is not None:
        fixed, per_km, residual, r2 = fit
        rows.append(
            (
                "cost linear in route length",
                f"{fixed:.2f} ms + {per_km * 1000:.2f} µs/km, R² {r2:.4f}, worst point {residual:.0%} off the line",
                "",
                r2 >= 0.99,
            )
        )
    flat = incident_ratio(results)
    if flat is not None:
        lo, hi, ratio = flat
        rows.append(("cost flat in incident count", f"{ratio:.2f}× from {lo:,} to {hi:,} incidents", "", ratio <= 1.5))
    spearman = results.get("agreement", {}).get("spearman", {})
    if spearman:
        worst = min(spearman.values())
        rows.append(("the three agree on the ranking of risky routes", f"Spearman ≥ {worst:.3f}", "", worst >= 0.9))
    return rows


def throughput_pairs(results: dict) -> list[tuple[int, float, float]]:
    """(workers, best cached routerisk req/s, best echo req/s) at the smallest gRPC route length."""
    serving = results.get("serving") or {}
    if not serving.get("echo"):
        return []
    km = min(row["km"] for row in serving["cases"])
    pairs = []
    for workers in sorted({row["workers"] for row in serving["cases"]}):
        cached = [
            r["rps"] for r in serving["cases"] if r["workers"] == workers and r["km"] == km and r["cache"] != "none"
        ]
        echo = [r["rps"] for r in serving["echo"] if r["workers"] == workers and r["km"] == km]
        if cached and echo:
            pairs.append((workers, max(cached), max(echo)))
    return pairs


def linear_fit(results: dict, contender: str = "routerisk") -> tuple[float, float, float, float] | None:
    """time = fixed + per_km · length, least squares over every length at the target incident count:
    (fixed ms, ms per km, largest relative distance of a measured point from the line, R²)."""
    cases = [c for c in results["scoring"] if c["incidents"] == target_n(results) and contender in c["timings"]]
    if len(cases) < 3:
        return None
    km = np.array([c["km"] for c in cases])
    ms = np.array([c["timings"][contender]["p50_ms"] for c in cases])
    per_km, fixed = np.polyfit(km, ms, 1)
    fitted = fixed + per_km * km
    r2 = 1.0 - float(np.sum((ms - fitted) ** 2) / np.sum((ms - ms.mean()) ** 2))
    return float(fixed), float(per_km), float(np.max(np.abs(fitted - ms) / ms)), r2


def incident_ratio(results: dict, contender: str = "routerisk") -> tuple[int, int, float] | None:
    counts = sorted({c["incidents"] for c in results["scoring"]})
    if len(counts) < 2:
        return None
    lo, hi = scoring_at(results, TARGET_KM, counts[0]), scoring_at(results, TARGET_KM, counts[-1])
    return counts[0], counts[-1], hi["timings"][contender]["p50_ms"] / lo["timings"][contender]["p50_ms"]


# ---- text ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def comparison_table(results: dict) -> str:
    names = [n for n in CONTENDERS if any(n in c["timings"] for c in results["scoring"])]
    header = ["incidents", "route", *[f"{CONTENDERS[n]} p50 ms" for n in names]]
    rows = []
    for case in sorted(results["scoring"], key=lambda c: (c["incidents"], c["km"])):
        ours = case["timings"]["routerisk"]["p50_ms"]
        cells = [f"{case['incidents']:,}", f"{case['km']:,.0f} km", _ms(ours)]
        for name in names[1:]:
            if name in case["timings"]:
                theirs = case["timings"][name]["p50_ms"]
                cells.append(f"{_ms(theirs)} ({theirs / ours:,.0f}×)")
            else:
                cells.append("–")
        rows.append(cells)
    return _table(header, rows)


def targets_table(results: dict) -> str:
    marks = {True: "met", False: "**not met**", None: ""}
    return _table(["target", "measured", "verdict"], [[t, m, marks[ok]] for t, m, _, ok in targets(results)])


def serving_table(results: dict) -> str:
    serving = results["serving"]
    rows = []
    for row in serving["cases"]:
        rows.append(
            [
                f"ScoreRoute, {row['cache']} cache",
                f"{row['km']:,.0f} km",
                str(row["workers"]),
                str(row["concurrency"]),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                f"{row['rps']:,.0f}",
            ]
        )
    for row in (serving.get("redis") or {}).get("rows", []):
        rows.append(
            [
                "ScoreRoute, Redis cache only",
                f"{min(r['km'] for r in serving['cases']):,.0f} km",
                "1",
                str(row["concurrency"]),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                f"{row['rps']:,.0f}",
            ]
        )
    for row in serving["echo"]:
        rows.append(
            [
                "bare grpcio echo, same message sizes",
                f"{row['km']:,.0f} km",
                str(row["workers"]),
                str(row["concurrency"]),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                f"{row['rps']:,.0f}",
            ]
        )
    return _table(["case", "route", "workers", "in flight", "p50 ms", "p99 ms", "req/s"], rows)


def summary(results: dict) -> str:
    """The tables a terminal shows at the end of a run."""
    parts = [
        "Targets",
        targets_table(results),
        "",
        "Against the contenders (× = contender time / routerisk time)",
        comparison_table(results),
        "",
    ]
    if results.get("agreement"):
        parts += [
            "Ranking agreement (Spearman)",
            ", ".join(f"{k} {v:.3f}" for k, v in results["agreement"]["spearman"].items()),
            "",
        ]
    parts += ["Serving", serving_table(results), f"wall time {results.get('wall_s', 0):.0f} s"]
    return "\n".join(parts)


# ---- plots ---------------------------------------------------------------------------------


def write_plots(results: dict, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for name, draw in (
        ("bench-length.png", _plot_length),
        ("bench-incidents.png", _plot_incidents),
        ("bench-concurrency.png", _plot_concurrency),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        draw(results, ax)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / name)
        plt.close(fig)
        names.append(name)
    return names


def _plot_length(results: dict, ax) -> None:
    cases = sorted((c for c in results["scoring"] if c["incidents"] == target_n(results)), key=lambda c: c["km"])
    for name, label in CONTENDERS.items():
        points = [(c["km"], c["timings"][name]["p50_ms"]) for c in cases if name in c["timings"]]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    cells = sorted(results["cells"], key=lambda c: c["km"])
    ax.plot(
        [c["km"] for c in cells],
        [c["p50_ms"] for c in cells],
        marker=".",
        linestyle="--",
        label="routerisk route → cells",
    )
    grpc_rows = [
        r for r in results["serving"]["cases"] if r["cache"] == "none" and r["workers"] == 1 and r["concurrency"] == 1
    ]
    if grpc_rows:
        ax.plot(
            [r["km"] for r in grpc_rows],
            [r["p50_ms"] for r in grpc_rows],
            marker="s",
            linestyle=":",
            label="routerisk through gRPC, uncached",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="route length (km)",
        ylabel="p50 per route (ms)",
        title=f"Cost against route length ({target_n(results):,} incidents)",
    )


def _plot_incidents(results: dict, ax) -> None:
    counts = sorted({c["incidents"] for c in results["scoring"]})
    for name, label in CONTENDERS.items():
        points = []
        for count in counts:
            case = scoring_at(results, TARGET_KM, count)
            if case and name in case["timings"]:
                points.append((count, case["timings"][name]["p50_ms"]))
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    km = scoring_at(results, TARGET_KM, counts[0])["km"]
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="incidents",
        ylabel="p50 per route (ms)",
        title=f"Cost against incident count ({km:,.0f} km route)",
    )


def _plot_concurrency(results: dict, ax) -> None:
    serving = results["serving"]
    km = min(r["km"] for r in serving["cases"])
    series: dict[str, list[tuple[int, float]]] = {}
    for row in serving["cases"]:
        if row["km"] == km:
            label = f"routerisk, {'cached' if row['cache'] != 'none' else 'uncached'}, {row['workers']} worker(s)"
            series.setdefault(label, []).append((row["concurrency"], row["rps"]))
    for row in serving["echo"]:
        if row["km"] == km:
            series.setdefault(f"bare grpcio echo, {row['workers']} worker(s)", []).append(
                (row["concurrency"], row["rps"])
            )
    for label, points in series.items():
        ax.plot(*zip(*sorted(points), strict=True), marker="o", label=label, linestyle="--" if "echo" in label else "-")
    ax.set(
        xscale="log",
        xlabel="calls in flight",
        ylabel="requests/s",
        title=f"Throughput against concurrency ({km:,.0f} km routes, one client process)",
    )
    ax.set_xticks(sorted({p[0] for pts in series.values() for p in pts}))
    ax.get_xaxis().set_major_formatter(__import__("matplotlib").ticker.ScalarFormatter())


# ---- the document --------------------------------------------------------------------------


# ``python -m bench.hotpath --docs`` keeps its own section of the page between these lines; a full
# run of ``python -m bench`` redraws the rest and keeps that section as it is
HOTPATH_BEGIN = "<!-- bench.hotpath: begin -->"
HOTPATH_END = "<!-- bench.hotpath: end -->"
# and ``python -m bench.http --docs`` its own (Connect JSON against gRPC), kept the same way
HTTP_BEGIN = "<!-- bench.http: begin -->"
HTTP_END = "<!-- bench.http: end -->"
# and ``python -m bench.server_kinds --docs`` its own (the asyncio server against the thread server)
SERVER_KINDS_BEGIN = "<!-- bench.server_kinds: begin -->"
SERVER_KINDS_END = "<!-- bench.server_kinds: end -->"
KEPT_MARKERS = ((HOTPATH_BEGIN, HOTPATH_END), (HTTP_BEGIN, HTTP_END), (SERVER_KINDS_BEGIN, SERVER_KINDS_END))


def write_docs(results: dict, docs: Path) -> None:
    plots = write_plots(results, docs / "figures")
    page = docs / "performance.md"
    old = page.read_text(encoding="utf-8") if page.exists() else ""
    kept = [kept_section(old, begin, end) for begin, end in KEPT_MARKERS]
    text = render(results, plots)
    page.write_text(text + "".join("\n" + k + "\n" for k in kept if k), encoding="utf-8")


def kept_section(text: str, begin_marker: str, end_marker: str) -> str:
    """The section a separate command wrote into ``text`` between its markers, markers included ("" when none)."""
    begin, end = text.find(begin_marker), text.find(end_marker)
    return text[begin : end + len(end_marker)] if 0 <= begin < end else ""


def hotpath_section(text: str) -> str:
    """The section ``bench.hotpath`` wrote into ``text``, markers included ("" when none)."""
    return kept_section(text, HOTPATH_BEGIN, HOTPATH_END)


def with_hotpath_section(text: str, section: str) -> str:
    """``text`` with its ``bench.hotpath`` section replaced by ``section`` (appended when none)."""
    return with_kept_section(text, HOTPATH_BEGIN, HOTPATH_END, section)


def with_kept_section(text: str, begin_marker: str, end_marker: str, section: str) -> str:
    """``text`` with the section between these markers replaced by ``section`` (appended when none)."""
    old = kept_section(text, begin_marker, end_marker)
    block = f"{begin_marker}\n{section.strip()}\n{end_marker}"
    return text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block + "\n"


def _machine(results: dict) -> str:
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    blas = f"; OPENBLAS_CORETYPE={m['openblas_coretype']}" if m.get("openblas_coretype") else ""
    return (
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['system']}, Python {m['python']}; {versions}{blas}"
    )


def render(results: dict, plots: list[str]) -> str:
    layers = _table(
        [
            "incidents",
            "CSV",
            "layer cells",
            "ingest + validate",
            "build",
            "write + activate",
            "load (mmap)",
            "peak RSS",
        ],
        [
            [
                f"{r['incidents']:,}",
                f"{r['csv_mib']:.0f} MiB",
                f"{r['cells']:,}",
                f"{r['ingest_s']:.2f} s",
                f"{r['build_s']:.2f} s",
                f"{r['write_activate_s']:.3f} s",
                f"{r['load_ms']:.1f} ms",
                f"{r['peak_rss_mib']:,.0f} MiB",
            ]
            for r in results["layers"]
        ],
    )
    cells = _table(
        ["route", "vertices", "cells (res 8)", "route → cells p50", "p99", "whole scoring p50 (100k incidents)"],
        [
            [
                f"{c['km']:,.0f} km",
                f"{r['vertices']:,}",
                f"{c['cells']:,}",
                f"{c['p50_ms']:.2f} ms",
                f"{c['p99_ms']:.2f} ms",
                f"{scoring_at(results, c['km'], target_n(results))['timings']['routerisk']['p50_ms']:.2f} ms",
            ]
            for c, r in zip(results["cells"], results["routes"], strict=True)
        ],
    )
    decode = _table(
        ["input", "p50", "p99"],
        [[k, f"{v['p50_ms']:.2f} ms", f"{v['p99_ms']:.2f} ms"] for k, v in results["decode"].items()],
    )
    setup = _table(
        ["contender", "incidents", "setup (load, index)"],
        [[s["contender"], f"{s['incidents']:,}", f"{s['seconds']:.2f} s"] for s in results.get("contender_setup", [])],
    )
    agreement = results.get("agreement") or {}
    spearman = ", ".join(f"{k.replace('~', ' ~ ')} **{v:.3f}**" for k, v in agreement.get("spearman", {}).items())
    pg_gp = agreement.get("postgis_geopandas_max_rel_diff")
    batch = _table(
        ["cache", "routes per call", "p50 per call", "routes/s"],
        [
            [b["cache"], str(b["size"]), f"{b['p50_ms']:.1f} ms", f"{b['routes_per_s']:,.0f}"]
            for b in results["serving"]["batch"]
        ],
    )
    redis = results["serving"].get("redis") or {}
    sizes = results["serving"]["sizes"]
    size_text = "; ".join(
        f"{float(k):,.0f} km: request {v['request']:,} B, response {v['response']:,} B" for k, v in sizes.items()
    )
    figures = "\n".join(f"![{p}](figures/{p})" for p in plots)
    pg_note = (
        f"\n\nPostGIS was left out of this run: {results['postgis_error']}" if results.get("postgis_error") else ""
    )
    decode_km = next(r["km"] for r in results["routes"] if r["km"] > 900)
    batch_size = results["serving"]["batch"][0]["size"] if results["serving"]["batch"] else 0
    redis_text = (
        "Redis case: " + redis["skipped"]
        if redis.get("skipped")
        else "The Redis rows serve every answer from Redis (no in-process tier in front): each call makes the "
        "round trip to Redis on loopback."
    )
    pg_gp_text = (
        f" PostGIS and GeoPandas differ by at most {pg_gp:.1%} in their weighted counts (PostGIS measures the "
        "exact distance to the line; GEOS's buffer polygon approximates its round ends)."
        if pg_gp is not None
        else ""
    )
    return f"""# Performance

Every figure on this page comes from one run of one command, on one machine, on {results["started"][:10]}:

```bash
.venv/bin/pip install -e '.[bench]' && .venv/bin/python -m bench
```

(`{results["command"]}`, {results.get("wall_s", 0) / 60:.1f} minutes; raw results in
`bench/results/{results["started"][:10]}.json`; `python -m bench --quick` is the everyday
check, under two minutes, and leaves this page alone; `python -m bench.report FILE.json`
redraws the page from a saved run.) Nothing in the test suite asserts a time.

**Machine:** {_machine(results)}. A shared virtual machine: absolute times drift by tens of
per cent between runs minutes apart, ratios measured in the same run hold much better, so
read the ratios. The benchmark's client runs on the same two cores as the servers.

## Targets

{targets_table(results)}

The ratio targets were set against contender times measured before this benchmark existed
(PostGIS 340–480 ms, GeoPandas about 39 ms for a 1,000 km route on 100,000 incidents); the
contenders below are tuned, and their times are this run's.

## The same question, three ways

Every contender gets the same incident file and the same routes. The incidents are the seed
incidents resampled with ±1 km and ±30 days of jitter (they stay on the freight corridors);
the routes follow the seed corridors Nogales → Mexico City → Nuevo Laredo at two vertices per km
(the shorter ones start in Mexico City heading north on 57D).

- **routerisk**: the whole `score_route` (cells, local hours, layer rates, border, segments,
  hotspots), on a layer built from the file. It answers more than the others: rates by local hour
  of week, the crossing and its wait, the reasons.
- **PostGIS**: incidents loaded with COPY into a table of points in EPSG:6372 (Mexico LCC,
  metres) with a GiST index; the recency-weighted count (violent ×1.5, halved every 365 days,
  the weights a layer build uses) of incidents within {results["corridor_km"]:g} km of the route.
  *One ST_DWithin*: what one writes first. *Route subdivided*: the route cut by `ST_Subdivide`
  into pieces of at most 32 vertices, joined to the points with `ST_DWithin` and de-duplicated,
  the usual tuning (its index boxes hug the road instead of covering the whole trip). Both run
  with JIT off and without prepared statements: seen while this benchmark was built (not measured
  by the run), JIT compiled each plan anew for
  about 150 ms, and the generic plan PostgreSQL switches a prepared plain query to (psycopg
  prepares a query by itself from its fifth call) scans every row, 27 s instead of 0.1 s for a
  1,000 km route on 100,000 incidents.
- **GeoPandas**: the points projected to EPSG:6372 with their STRtree built once; per route, the
  route projected, buffered by {results["corridor_km"]:g} km, `sindex.query(..., predicate="intersects")`,
  and the same weighted sum.

p50 per route, and in brackets how many times longer the contender took than routerisk:

{comparison_table(results)}

Setup, paid once per incident file (not in the times above):

{setup}

**Do they agree?** Over {len(agreement.get("routes", []))} routes of 100 km (windows along the tour, half on the
road and half moved 0.1–0.3° off it) on {target_n(results):,} incidents, the rank correlations of the three answers
are {spearman}.{pg_gp_text}{pg_note}

## Cost curves

{figures}

{curves_text(results)}

## routerisk in-process

Route → cells (gap-free H3 chain) and whole scoring:

{cells}

Decoding and validating a route (the {decode_km:,.0f} km route):

{decode}

Layers from a file (what `routerisk layers build --activate` does) and a server's load of it;
peak RSS is the benchmark process's so far:

{layers}

Since issue 15 a server's load **checks** the layer and **reads it into memory** instead of
mapping it (`docs/operations.md`, "Roll out a layer"): a file truncated under a running server can no
longer kill it with SIGBUS. Measured on 2026-12-02 (same machine, 3 loads each, a fresh process per load;
memory is the process's growth once every page is touched):

| layer | on disk | load, mapped (before) | load, checked into memory | memory, mapped | memory, in memory |
|---|---|---|---|---|---|
| seed incidents (20,000; 7,523 cells) | 5.1 MiB | 2–7 ms | 29–33 ms | 5.0 MiB shared page cache | 5.9 MiB private |
| 100,000 incidents (18,680 cells) | 13 MiB | 2–10 ms | 58–94 ms | 12.1 MiB shared page cache | 15.5 MiB private |

The load reads each file once (SHA-256 and the read in one pass) and checks the values with numpy:
5–7 ms per MiB here. The memory is private per worker process (`ROUTERISK_WORKERS=N` holds N
copies instead of sharing one page cache) and two layers are held during a swap.

## Through gRPC

`routerisk serve` as a subprocess on the layer built from {target_n(results):,} incidents, routes sent as
encoded polylines as a TMS sends them (20 distinct 100 km routes, 6 distinct 1,000 km routes;
{size_text}). At one call in flight a blocking stub calls back to back; at 8 and 32, `grpc.aio`
over four channels. The floor is a bare grpcio service (`bench/echo.py`: the same thread pool,
no interceptors, a fixed answer) with the same request and response sizes, loaded by the same
client.

{serving_table(results)}

{redis_text}

The servicer's own share, `ScoreRoute` called in-process without gRPC (validation, cache key,
cache lookup, response; uncached: the whole scoring too):

{servicer_table(results)}

![throughput](figures/bench-concurrency.png)

BatchScoreRoutes, {batch_size} routes of 100 km per call, one call at a time:

{batch}

How to read the gRPC rows: the client is a Python process on the same two cores as the server
processes, so with two workers three processes share two cores and the client's own cost caps
what is measured. The echo rows show that cap for a service that does nothing: the distance from
an echo row to the routerisk row beside it is what routerisk itself costs per call.
"""


def curves_text(results: dict) -> str:
    """routerisk's straight line against length; every contender's growth with length and incidents."""
    lines = []
    fit = linear_fit(results)
    if fit is not None:
        fixed, per_km, residual, r2 = fit
        lines.append(
            f"- routerisk, fitted at {target_n(results):,} incidents: {fixed:,.2f} ms + {per_km * 1000:,.2f} µs per km "
            f"(R² {r2:.4f}; no measured point more than {residual:.0%} off the line)."
        )
    cases = sorted((c for c in results["scoring"] if c["incidents"] == target_n(results)), key=lambda c: c["km"])
    for name, label in CONTENDERS.items():
        longest, shortest = cases[-1]["timings"].get(name), next((c for c in cases if c["km"] >= 90), cases[0])
        ratio = incident_ratio(results, name) if name in cases[-1]["timings"] else None
        if longest is None or ratio is None:
            continue
        grow = longest["p50_ms"] / shortest["timings"][name]["p50_ms"]
        lines.append(
            f"- {label}: {grow:,.1f}× the time from {shortest['km']:,.0f} to {cases[-1]['km']:,.0f} km "
            f"({cases[-1]['km'] / shortest['km']:,.0f}× the length); {ratio[2]:,.2f}× from {ratio[0]:,} to "
            f"{ratio[1]:,} incidents ({TARGET_KM:,} km route)."
        )
    return "\n".join(lines)


def servicer_table(results: dict) -> str:
    rows = [
        [f"{r['km']:,.0f} km", r["cache"], f"{r['p50_ms'] * 1000:,.0f} µs", f"{r['p99_ms'] * 1000:,.0f} µs"]
        for r in results.get("servicer", [])
    ]
    return _table(["route", "cache", "ScoreRoute p50", "p99"], rows)


def main() -> None:
    path = Path(sys.argv[1])
    results = json.loads(path.read_text(encoding="utf-8"))
    print(summary(results))
    write_docs(results, Path(__file__).resolve().parent.parent / "docs")


if __name__ == "__main__":
    main()
