"""Out-of-time backtest of the risk model against baselines, with rolling origins.

Train on incidents before an origin, then ask: if a patrol (or a routing rule) could
only cover the top *x* % of the area, which share of the *next* ``test_days`` of
incidents would fall inside it?  ``splits`` consecutive test windows are evaluated
(rolling origin: each split trains on everything before its own origin), each is
reported and so is their mean.

**Candidate area, fixed before the test window is looked at**: the cells of the training
incidents and the road cells (``road_cells``), grown by one ring.  Test incidents outside
it count in the denominator of every hit rate (no method can find them) and are reported.

**Methods** (each ranks the same candidate cells, from training data only):

* ``model`` — :func:`geodata.adaptive.fit` then :func:`geodata.layers.build_layer` on the
  training incidents, ages from the origin, horizon = ``test_days``; a cell's score is its
  weekly mean intensity.  ``model-near_repeat``, ``model-background``, ``model-trend``: the
  same refitted without that part (the gain of each part is model minus these).
* ``kde`` — a time-decayed kernel density: each training incident spreads a Gaussian of
  its grid distance (bandwidth σ rings, up to 3 rings) weighted ``0.5^(age / h)``; σ and
  ``h`` are tuned on the training window alone (an inner split: train before
  ``origin − test_days``, validate on the last ``test_days`` of training; best mean hit
  rate over the area fractions, then log-likelihood).
* ``recent`` — training incidents of the last 90 days per cell;
* ``counts`` — all training incidents per cell;
* ``uniform`` — every cell equal: its hit rate at *x* is *x* (a sanity check);
* ``best`` — only when a ``reference`` forecast is given (the evaluation generator's own
  expected counts, bench/eval_data.py).

**Metrics.** Cells are about equal in area, so the top *x* % of the area is the top
``x · N`` of the ``N`` candidate cells.  *Hit rate*: weighted share of the test incidents
in those cells; *PAI* (predictive accuracy index): hit rate / *x*.  Ties are split
fractionally (the expected value under random tie-breaking; scores within a relative
``1e-6`` are ties, so float32 noise never decides).  *Log-likelihood*: the forecast as a
distribution over the candidate cells, ``p = 0.99 · score / Σ score + 0.01 / N`` (the
same 1 % uniform mix for every method, so no cell has probability 0), mean
``log(p · N)`` per test incident inside the area: nats gained over the uniform forecast
(uniform = 0; the multinomial log-likelihood of the test counts, per incident).

A test window with no incidents is reported as empty (no PAI, not PAI 0) and left out
of the mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3.api.basic_int as h3i
import numpy as np

from geodata.incidents import IncidentSet
from geodata.layers import BuildParams, _cells_of, build_layer
from geodata.ranking import AREA_FRACTIONS, hit_rates

CURVE_FRACTIONS = tuple(float(x) for x in np.round(np.linspace(0.005, 0.25, 50), 4))
BASELINES = ("kde", "recent", "counts", "uniform")
ABLATIONS = ("near_repeat", "background", "trend")
METHODS = ("model", *(f"model-{part}" for part in ABLATIONS), *BASELINES)
SECONDS_PER_DAY = 86400
RECENT_DAYS = 90
KDE_RINGS = 3
KDE_BANDWIDTHS = (0.5, 1.0, 2.0)
KDE_HALF_LIVES = (30.0, 90.0, 365.0, math.inf)
LOGLIK_UNIFORM_MIX = 0.01

Reference = Callable[[np.ndarray, int, int], np.ndarray]


@dataclass(frozen=True)
class MethodResult:
    """One method's hit rate and PAI at each area fraction, and its log-likelihood gain."""

    name: str
    hit_rate: dict[float, float]
    pai: dict[float, float]
    loglik: float = 0.0
    curve: tuple[float, ...] = ()  # PAI at CURVE_FRACTIONS
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hit_rate": {_key(x): float(v) for x, v in self.hit_rate.items()},
            "pai": {_key(x): float(v) for x, v in self.pai.items()},
            "loglik": float(self.loglik),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class SplitResult:
    """One origin: its counts and, unless the test window is empty, every method's result."""

    train_until_s: int
    test_days: int
    train_incidents: int
    test_incidents: int
    outside_area: int  # test incidents outside the candidate area
    candidate_cells: int
    methods: tuple[MethodResult, ...] | None  # None: no test incidents

    @property
    def empty(self) -> bool:
        return self.methods is None

    def method(self, name: str) -> MethodResult:
        for result in self.methods or ():
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_until_s": int(self.train_until_s),
            "train_until": _iso(self.train_until_s),
            "test_days": int(self.test_days),
            "train_incidents": int(self.train_incidents),
            "test_incidents": int(self.test_incidents),
            "outside_area": int(self.outside_area),
            "candidate_cells": int(self.candidate_cells),
            "empty": self.empty,
            "methods": None if self.methods is None else [m.to_dict() for m in self.methods],
        }


@dataclass(frozen=True)
class BacktestReport:
    """Every split and, per method, the mean over the non-empty ones."""

    resolution: int
    test_days: int
    splits: tuple[SplitResult, ...]
    mean: tuple[MethodResult, ...]

    @property
    def methods(self) -> tuple[MethodResult, ...]:
        return self.mean

    def method(self, name: str) -> MethodResult:
        """The mean result of the method called ``name``."""
        for result in self.mean:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain ints/floats, area fractions as string keys (``"0.05"``)."""
        return {
            "resolution": int(self.resolution),
            "test_days": int(self.test_days),
            "area_fractions": [float(x) for x in (self.mean[0].hit_rate if self.mean else AREA_FRACTIONS)],
            "splits": [s.to_dict() for s in self.splits],
            "mean": [m.to_dict() for m in self.mean],
            "part_gains": part_gains(self),
            "non_empty_splits": sum(not s.empty for s in self.splits),
        }


def backtest(
    incidents: IncidentSet,
    *,
    train_until_s: int,
    test_days: int,
    params: BuildParams | None = None,
    road_cells: np.ndarray | None = None,
    area_fractions: Sequence[float] = AREA_FRACTIONS,
    splits: int = 1,
    reference: Reference | None = None,
    ablations: bool = True,
) -> BacktestReport:
    """Rolling-origin backtest: split ``k`` trains before ``train_until_s + k · test_days`` days.

    Raises ``ValueError`` when the first split has no training incidents, when
    ``test_days`` or ``splits`` is not positive, when an area fraction is outside
    ``(0, 1]``, or when ``road_cells`` are not cells of ``params.resolution``.
    """
    params = params or BuildParams()
    resolution = params.resolution
    fractions = tuple(float(x) for x in area_fractions)
    if not fractions or any(not (0.0 < x <= 1.0) for x in fractions):
        raise ValueError(f"area fractions must be in (0, 1], got {area_fractions!r}")
    if test_days <= 0:
        raise ValueError(f"test_days must be positive, got {test_days}")
    if splits <= 0:
        raise ValueError(f"splits must be positive, got {splits}")
    roads = _check_roads(road_cells, resolution)
    utc_s = np.asarray(incidents.utc_s, dtype=np.int64)
    weights = np.asarray(incidents.weights, dtype=np.float64)
    first = utc_s < train_until_s
    if not first.any() or weights[first].sum() <= 0:
        raise ValueError(f"no training incidents before {_iso(train_until_s)}")
    own = _cells_of(incidents, resolution)
    results = []
    for k in range(splits):
        origin = int(train_until_s) + k * int(test_days) * SECONDS_PER_DAY
        results.append(
            _split(incidents, own, origin, test_days, params, roads, fractions, reference, ablations, weights)
        )
    return BacktestReport(resolution, int(test_days), tuple(results), _mean(results, fractions))


def _split(
    incidents: IncidentSet,
    own: np.ndarray,
    origin: int,
    test_days: int,
    params: BuildParams,
    roads: np.ndarray | None,
    fractions: tuple[float, ...],
    reference: Reference | None,
    ablations: bool,
    weights: np.ndarray,
) -> SplitResult:
    utc_s = np.asarray(incidents.utc_s, dtype=np.int64)
    end = origin + int(test_days) * SECONDS_PER_DAY
    train_mask = utc_s < origin
    test_mask = (utc_s >= origin) & (utc_s < end)
    train = incidents.select(train_mask)
    train_cells, train_w, train_t = own[train_mask], weights[train_mask], utc_s[train_mask]
    candidates = candidate_cells(train_cells, roads)
    test_cells = own[test_mask]
    pos = np.minimum(np.searchsorted(candidates, test_cells), max(len(candidates) - 1, 0))
    inside = candidates[pos] == test_cells if len(candidates) else np.zeros(len(test_cells), dtype=bool)
    test_w = weights[test_mask]
    test_mass = np.bincount(pos[inside], weights=test_w[inside], minlength=len(candidates))
    total = float(test_w.sum())
    common = dict(
        train_until_s=origin,
        test_days=int(test_days),
        train_incidents=int(train_mask.sum()),
        test_incidents=int(test_mask.sum()),
        outside_area=int((~inside).sum()),
        candidate_cells=len(candidates),
    )
    if total <= 0 or not train_mask.any():
        return SplitResult(**common, methods=None)

    scores: dict[str, np.ndarray] = {}
    details: dict[str, dict[str, Any]] = {}
    parts = [()] + ([(part,) for part in ABLATIONS] if ablations else [])
    for without in parts:
        name = "model" if not without else f"model-{without[0]}"
        scores[name], details[name] = _model_scores(
            train, train_cells, params, roads, candidates, origin, test_days, without
        )
    scores["kde"], details["kde"] = _tuned_kde(
        train_cells, train_w, train_t, roads, origin, test_days, candidates, fractions
    )
    recent = train_t >= origin - RECENT_DAYS * SECONDS_PER_DAY
    scores["recent"] = _accumulate(train_cells[recent], train_w[recent], candidates)
    scores["counts"] = _accumulate(train_cells, train_w, candidates)
    scores["uniform"] = np.zeros(len(candidates))
    if reference is not None:
        scores["best"] = np.asarray(reference(candidates, origin, end), dtype=np.float64)
    methods = []
    for name, score in scores.items():
        hits = hit_rates(score, test_mass, fractions, total=total)
        curve = hit_rates(score, test_mass, CURVE_FRACTIONS, total=total) / np.array(CURVE_FRACTIONS)
        methods.append(
            MethodResult(
                name=name,
                hit_rate={x: float(h) for x, h in zip(fractions, hits, strict=True)},
                pai={x: float(h / x) for x, h in zip(fractions, hits, strict=True)},
                loglik=log_likelihood_gain(score, test_mass),
                curve=tuple(float(v) for v in curve),
                detail=details.get(name, {}),
            )
        )
    return SplitResult(**common, methods=tuple(methods))


def _mean(results: list[SplitResult], fractions: tuple[float, ...]) -> tuple[MethodResult, ...]:
    full = [r for r in results if not r.empty]
    if not full:
        return ()
    out = []
    for m in full[0].methods or ():
        each = [r.method(m.name) for r in full]
        out.append(
            MethodResult(
                name=m.name,
                hit_rate={x: float(np.mean([e.hit_rate[x] for e in each])) for x in fractions},
                pai={x: float(np.mean([e.pai[x] for e in each])) for x in fractions},
                loglik=float(np.mean([e.loglik for e in each])),
                curve=tuple(float(v) for v in np.mean([e.curve for e in each], axis=0)),
            )
        )
    return tuple(out)


def log_likelihood_gain(scores: np.ndarray, test_mass: np.ndarray) -> float:
    """Mean ``log(p · N)`` per test incident in the area, ``p`` the scores as a distribution mixed with 1 % uniform."""
    scores = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    n = len(scores)
    mass = float(np.sum(test_mass))
    if n == 0 or mass <= 0:
        return 0.0
    total = scores.sum()
    share = scores / total if total > 0 else np.full(n, 1.0 / n)
    p = (1 - LOGLIK_UNIFORM_MIX) * share + LOGLIK_UNIFORM_MIX / n
    return float(np.sum(test_mass * np.log(p * n)) / mass)


def candidate_cells(train_cells: np.ndarray, road_cells: np.ndarray | None) -> np.ndarray:
    """Sorted unique cells: the training incidents' cells and the road cells, grown by one ring."""
    seeds = np.unique(train_cells)
    if road_cells is not None:
        seeds = np.union1d(seeds, road_cells)
    if len(seeds) == 0:
        return np.zeros(0, dtype=np.uint64)
    disks = [h3i.grid_disk(int(c), 1) for c in seeds.tolist()]
    return np.unique(np.fromiter((c for d in disks for c in d), np.uint64))


def _check_roads(road_cells: np.ndarray | None, resolution: int) -> np.ndarray | None:
    if road_cells is None:
        return None
    roads = np.unique(np.asarray(road_cells, dtype=np.uint64))
    mode = (roads >> np.uint64(59)) & np.uint64(15)  # 1 = cell index
    res = (roads >> np.uint64(52)) & np.uint64(15)
    if np.any(mode != 1) or np.any(res != resolution):
        raise ValueError(f"road_cells must be H3 cells of resolution {resolution}")
    return roads


def _model_scores(
    train: IncidentSet,
    train_cells: np.ndarray,
    params: BuildParams,
    roads: np.ndarray | None,
    candidates: np.ndarray,
    origin: int,
    test_days: int,
    without: tuple[str, ...],
) -> tuple[np.ndarray, dict[str, Any]]:
    from geodata.adaptive import fit

    report = fit(
        train,
        params,
        road_cells=roads,
        horizon_days=float(test_days),
        as_of_s=origin,
        own_cells=train_cells,
        without=without,
    )
    layer = build_layer(train, report.params, road_cells=roads, as_of_s=origin, own_cells=train_cells, name="backtest")
    if len(layer.cells) == 0:
        return np.zeros(len(candidates)), report.to_dict()
    rows, found = layer.index(candidates)
    return np.where(found, layer.weekly_mean[rows], 0.0), report.to_dict()


class _Disks:
    """Each source cell's disk up to KDE_RINGS rings: (source index, target cell, grid distance)."""

    def __init__(self, sources: np.ndarray) -> None:
        src: list[int] = []
        tgt: list[int] = []
        dist: list[int] = []
        for i, cell in enumerate(sources.tolist()):
            for k in range(KDE_RINGS + 1):
                ring = [cell] if k == 0 else h3i.grid_ring(cell, k)
                src.extend([i] * len(ring))
                tgt.extend(ring)
                dist.extend([k] * len(ring))
        self.source = np.array(src, dtype=np.int64)
        self.target = np.array(tgt, dtype=np.uint64)
        self.distance = np.array(dist, dtype=np.int64)

    def density(self, mass: np.ndarray, bandwidth: float, candidates: np.ndarray) -> np.ndarray:
        kernel = np.exp(-(np.arange(KDE_RINGS + 1) ** 2) / (2 * bandwidth**2))[self.distance]
        norm = np.bincount(self.source, weights=kernel, minlength=len(mass))
        share = kernel * (mass / np.maximum(norm, 1e-300))[self.source]
        return _accumulate(self.target, share, candidates)


def _tuned_kde(
    cells: np.ndarray,
    weights: np.ndarray,
    utc_s: np.ndarray,
    roads: np.ndarray | None,
    origin: int,
    test_days: int,
    candidates: np.ndarray,
    fractions: tuple[float, ...],
) -> tuple[np.ndarray, dict[str, Any]]:
    """Time-decayed KDE; bandwidth and half-life chosen on an inner split of the training window."""
    sources, inverse = np.unique(cells, return_inverse=True)
    disks = _Disks(sources)

    def density(before: int, bandwidth: float, half_life: float, where: np.ndarray, upto: np.ndarray) -> np.ndarray:
        age = (before - utc_s[upto]) / SECONDS_PER_DAY
        decay = np.ones(len(age)) if math.isinf(half_life) else np.power(0.5, age / half_life)
        mass = np.bincount(inverse[upto], weights=weights[upto] * decay, minlength=len(sources))
        return disks.density(mass, bandwidth, where)

    inner = origin - int(test_days) * SECONDS_PER_DAY
    fit_mask = utc_s < inner
    check = (utc_s >= inner) & (utc_s < origin)
    choice = (1.0, 365.0)
    tuned = False
    if fit_mask.any() and weights[check].sum() > 0:
        inner_candidates = candidate_cells(cells[fit_mask], roads)
        pos = np.minimum(np.searchsorted(inner_candidates, cells[check]), len(inner_candidates) - 1)
        ok = inner_candidates[pos] == cells[check]
        mass = np.bincount(pos[ok], weights=weights[check][ok], minlength=len(inner_candidates))
        total = float(weights[check].sum())
        best = None
        for bandwidth in KDE_BANDWIDTHS:
            for half_life in KDE_HALF_LIVES:
                score = density(inner, bandwidth, half_life, inner_candidates, fit_mask)
                key = (float(hit_rates(score, mass, fractions, total=total).mean()), log_likelihood_gain(score, mass))
                if best is None or key > best[0]:
                    best = (key, (bandwidth, half_life))
        assert best is not None
        choice, tuned = best[1], True
    bandwidth, half_life = choice
    everything = np.ones(len(utc_s), dtype=bool)
    scores = density(origin, bandwidth, half_life, candidates, everything)
    detail = {"bandwidth_rings": bandwidth, "half_life_days": None if math.isinf(half_life) else half_life}
    return scores, {**detail, "tuned": tuned}


def _accumulate(cells: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Sum ``weights`` per candidate cell (cells outside the candidates are dropped)."""
    if len(candidates) == 0 or len(cells) == 0:
        return np.zeros(len(candidates))
    rows = np.minimum(np.searchsorted(candidates, cells), len(candidates) - 1)
    inside = candidates[rows] == cells
    return np.bincount(rows[inside], weights=weights[inside], minlength=len(candidates))


def format_table(report: BacktestReport) -> str:
    """Plain text: per split and for the mean, one row per method (hit %, PAI per area, log-likelihood)."""
    fractions = list(report.mean[0].hit_rate) if report.mean else list(AREA_FRACTIONS)
    groups = "".join(f" | {f'top {_pct(x)} of area':^17}" for x in fractions)
    sub = "".join(f" | {'hit %':>8} {'PAI':>8}" for _ in fractions)
    lines = [f"Backtest: H3 res {report.resolution}, {len(report.splits)} split(s) of {report.test_days} days"]

    def table(methods: Sequence[MethodResult]) -> None:
        lines.append(f"{'method':<18}{groups} | {'loglik':>7}")
        lines.append(f"{'':<18}{sub} | {'nats':>7}")
        lines.append("-" * len(lines[-1]))
        for m in methods:
            cells = "".join(f" | {100 * m.hit_rate[x]:>8.2f} {m.pai[x]:>8.2f}" for x in fractions)
            lines.append(f"{m.name:<18}{cells} | {m.loglik:>7.3f}")

    for split in report.splits:
        lines.append("")
        lines.append(
            f"train < {_iso(split.train_until_s)} ({split.train_incidents} incidents), "
            f"test {split.test_days} days ({split.test_incidents} incidents, {split.outside_area} outside the area), "
            f"{split.candidate_cells} candidate cells"
        )
        if split.empty:
            lines.append("  no test incidents in this window: nothing to score")
            continue
        table(split.methods or ())
    if report.mean and len(report.splits) > 1:
        full = sum(not s.empty for s in report.splits)
        lines.append("")
        lines.append(f"mean of {full} non-empty split(s)")
        table(report.mean)
    for part, gain in part_gains(report).items():
        pai = " ".join(f"{_pct(float(x))} {v:+.2f}" for x, v in gain["pai"].items())
        lines.append(
            f"gain of the {part.replace('_', '-')} part (model minus model without it): PAI {pai}, "
            f"log-likelihood {gain['loglik']:+.3f}"
        )
    if not report.mean:
        lines.append("")
        lines.append("every test window is empty: no figures")
    return "\n".join(lines)


def part_gains(report: BacktestReport) -> dict[str, dict[str, Any]]:
    """Per model part, the mean model's PAI (per area fraction) and log-likelihood minus those without it."""
    names = {m.name: m for m in report.mean}
    if "model" not in names:
        return {}
    model = names["model"]
    out = {}
    for part in ABLATIONS:
        other = names.get(f"model-{part}")
        if other is not None:
            out[part] = {
                "pai": {_key(x): model.pai[x] - other.pai[x] for x in model.pai},
                "loglik": model.loglik - other.loglik,
            }
    return out


def plot_pai(report: BacktestReport, path: str | Path) -> None:
    """PNG of PAI against area share (mean over the non-empty splits), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    shares = 100 * np.array(CURVE_FRACTIONS)
    for m in report.mean:
        style = "-" if m.name in ("model", "best") else ("--" if m.name.startswith("model-") else ":")
        ax.plot(shares, m.curve, style, label=m.name, linewidth=2 if m.name == "model" else 1)
    ax.set_xlabel("area share (% of candidate cells)")
    ax.set_ylabel("PAI (hit rate / area share)")
    ax.set_title(f"Backtest: {sum(not s.empty for s in report.splits)} split(s) of {report.test_days} days")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).isoformat().replace("+00:00", "Z")


def _key(x: float) -> str:
    return repr(float(x))


def _pct(x: float) -> str:
    return f"{100 * x:g}%"
