"""Out-of-time backtest of a risk layer against simple baselines.

Train on incidents before ``train_until_s``, then ask: if a patrol (or a routing rule)
could only cover the top *x* % of the area, which share of the *next* ``test_days``
of incidents would fall inside it?  Every method ranks the same candidate cells:

* ``model``   — :func:`geodata.layers.build_layer` on the training incidents; a cell's
  score is its weekly mean intensity (0 when the layer does not have it);
* ``counts``  — (weighted) training incidents in the cell: the "training-window count"
  baseline;
* ``kde``     — a plain kernel density: each training incident spreads a Gaussian of
  its grid distance (bandwidth 1.5 rings) over ``grid_disk(cell, 3)``; no decay, no
  hour-of-week profile;
* ``uniform`` — every cell equal: its hit rate at *x* is *x* (a sanity check).

**Candidate area.** Resolution-``params.resolution`` cells within one ring of a cell
holding a training or test incident, plus ``road_cells`` when given.  Incidents after
the test window are ignored, also for the area.  Scoring against the whole country
would make every method look brilliant; this area is where incidents *can* happen.

**Metrics.** Cells are about equal in area, so the top *x* % of the area is the top
``x · N`` of the ``N`` candidate cells (``x · N`` need not be whole).  *Hit rate* is the
weighted share (:attr:`IncidentSet.weights`) of test incidents in those cells; *PAI*
(predictive accuracy index) is hit rate / *x*.

**Ties.** When the cut falls inside a block of equal scores (e.g. the many zero cells
of ``counts``), the block is included fractionally: the cells before the block count
fully, the block contributes ``(x · N − before) / block size`` of its test incidents.
That is the expected hit rate under random tie-breaking, so no method gains or loses
from the order in which tied cells happen to be stored.  Scores within a relative
``1e-6`` of each other are ties: layer intensities are float32, so two cells with the
same incidents but different hour profiles differ in their weekly mean by rounding
noise (~1e-8), which must not decide the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h3.api.basic_int as h3i
import numpy as np

from geodata.incidents import IncidentSet
from geodata.layers import BuildParams, build_layer

AREA_FRACTIONS = (0.01, 0.05, 0.10)
METHODS = ("model", "counts", "kde", "uniform")
SECONDS_PER_DAY = 86400
KDE_RINGS = 3
KDE_BANDWIDTH_RINGS = 1.5
TIE_RTOL = 1e-6


@dataclass(frozen=True)
class MethodResult:
    """One method's hit rate and PAI at each area fraction."""

    name: str
    hit_rate: dict[float, float]
    pai: dict[float, float]


@dataclass(frozen=True)
class BacktestReport:
    """The outcome of one train/test split."""

    train_until_s: int
    test_days: int
    train_incidents: int
    test_incidents: int
    candidate_cells: int
    resolution: int
    methods: tuple[MethodResult, ...]

    def method(self, name: str) -> MethodResult:
        """The result of the method called ``name``."""
        for result in self.methods:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain ints/floats, area fractions as string keys (``"0.05"``)."""
        return {
            "train_until_s": int(self.train_until_s),
            "train_until": _iso(self.train_until_s),
            "test_days": int(self.test_days),
            "train_incidents": int(self.train_incidents),
            "test_incidents": int(self.test_incidents),
            "candidate_cells": int(self.candidate_cells),
            "resolution": int(self.resolution),
            "methods": [
                {
                    "name": m.name,
                    "hit_rate": {_key(x): float(v) for x, v in m.hit_rate.items()},
                    "pai": {_key(x): float(v) for x, v in m.pai.items()},
                }
                for m in self.methods
            ],
        }


def backtest(
    incidents: IncidentSet,
    *,
    train_until_s: int,
    test_days: int,
    params: BuildParams | None = None,
    road_cells: np.ndarray | None = None,
    area_fractions: Sequence[float] = AREA_FRACTIONS,
) -> BacktestReport:
    """Train before ``train_until_s``, test on ``[train_until_s, train_until_s + test_days days)``.

    Raises ``ValueError`` when either period has no incidents (or no weight), when
    ``test_days`` is not positive, when an area fraction is outside ``(0, 1]``, or when
    ``road_cells`` are not cells of ``params.resolution``.
    """
    params = params or BuildParams()
    resolution = params.resolution
    fractions = tuple(float(x) for x in area_fractions)
    if not fractions or any(not (0.0 < x <= 1.0) for x in fractions):
        raise ValueError(f"area fractions must be in (0, 1], got {area_fractions!r}")
    if test_days <= 0:
        raise ValueError(f"test_days must be positive, got {test_days}")

    utc_s = np.asarray(incidents.utc_s, dtype=np.int64)
    test_end_s = int(train_until_s) + int(test_days) * SECONDS_PER_DAY
    train_mask = utc_s < train_until_s
    test_mask = (utc_s >= train_until_s) & (utc_s < test_end_s)
    weights = np.asarray(incidents.weights, dtype=np.float64)
    if not train_mask.any() or weights[train_mask].sum() <= 0:
        raise ValueError(f"no training incidents before {_iso(train_until_s)}")
    if not test_mask.any() or weights[test_mask].sum() <= 0:
        raise ValueError(f"no test incidents in [{_iso(train_until_s)}, {_iso(test_end_s)})")

    used = train_mask | test_mask
    own = np.zeros(len(utc_s), dtype=np.uint64)
    own[used] = _cells_of(incidents.lat[used], incidents.lng[used], resolution)
    candidates = _candidate_cells(np.unique(own[used]), road_cells, resolution)

    train = incidents.select(train_mask)
    train_cells, train_w = own[train_mask], weights[train_mask]
    test_rows = np.searchsorted(candidates, own[test_mask])  # every test cell is a candidate
    test_mass = np.bincount(test_rows, weights=weights[test_mask], minlength=len(candidates))

    scores = {
        "model": _model_scores(train, params, candidates),
        "counts": _count_scores(train_cells, train_w, candidates),
        "kde": _kde_scores(train_cells, train_w, candidates),
        "uniform": np.zeros(len(candidates)),
    }
    methods = []
    for name in METHODS:
        hits = hit_rates(scores[name], test_mass, fractions)
        methods.append(
            MethodResult(
                name=name,
                hit_rate={x: float(h) for x, h in zip(fractions, hits, strict=True)},
                pai={x: float(h / x) for x, h in zip(fractions, hits, strict=True)},
            )
        )
    return BacktestReport(
        train_until_s=int(train_until_s),
        test_days=int(test_days),
        train_incidents=int(train_mask.sum()),
        test_incidents=int(test_mask.sum()),
        candidate_cells=len(candidates),
        resolution=resolution,
        methods=tuple(methods),
    )


def hit_rates(scores: np.ndarray, test_mass: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Expected share of ``test_mass`` in the top ``x`` of cells by ``scores``, per ``x``.

    Cells are ranked by descending score; a block of tied scores straddling the cut is
    included in proportion to how much of it fits (random tie-breaking in expectation).
    """
    scores = np.asarray(scores, dtype=np.float64)
    test_mass = np.asarray(test_mass, dtype=np.float64)
    n = len(scores)
    total = test_mass.sum()
    if n == 0 or total <= 0:
        raise ValueError("hit rates need candidate cells and test incidents")
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    mass = test_mass[order]
    new_block = np.ones(n, dtype=bool)
    new_block[1:] = ~np.isclose(ranked[1:], ranked[:-1], rtol=TIE_RTOL, atol=0.0)
    starts = np.flatnonzero(new_block)
    sizes = np.diff(np.append(starts, n))
    block_mass = np.add.reduceat(mass, starts)
    cut = np.asarray(fractions, dtype=np.float64)[:, None] * n  # cells inside the top x
    included = np.clip((cut - starts[None, :]) / sizes[None, :], 0.0, 1.0)
    return (included * block_mass[None, :]).sum(axis=1) / total


def format_table(report: BacktestReport) -> str:
    """A plain-text table: one row per method, hit rate % and PAI per area fraction."""
    fractions = list(report.methods[0].hit_rate) if report.methods else []
    header = (
        f"Backtest: train < {_iso(report.train_until_s)} ({report.train_incidents} incidents), "
        f"test {report.test_days} days ({report.test_incidents} incidents), "
        f"H3 res {report.resolution}, {report.candidate_cells} candidate cells"
    )
    groups = "".join(f" | {f'top {_pct(x)} of area':^17}" for x in fractions)
    sub = "".join(f" | {'hit %':>8} {'PAI':>8}" for _ in fractions)
    lines = [header, f"{'method':<10}{groups}", f"{'':<10}{sub}"]
    lines.append("-" * len(lines[-1]))
    for m in report.methods:
        cells = "".join(f" | {100 * m.hit_rate[x]:>8.2f} {m.pai[x]:>8.2f}" for x in fractions)
        lines.append(f"{m.name:<10}{cells}")
    return "\n".join(lines)


def _cells_of(lat: np.ndarray, lng: np.ndarray, resolution: int) -> np.ndarray:
    pairs = zip(np.asarray(lat).tolist(), np.asarray(lng).tolist(), strict=True)
    return np.array([h3i.latlng_to_cell(a, b, resolution) for a, b in pairs], dtype=np.uint64)


def _candidate_cells(incident_cells: np.ndarray, road_cells: np.ndarray | None, resolution: int) -> np.ndarray:
    """Sorted unique cells: one ring around each incident cell, plus road cells."""
    parts = [np.array(h3i.grid_disk(int(c), 1), dtype=np.uint64) for c in incident_cells.tolist()]
    if road_cells is not None:
        roads = np.unique(np.asarray(road_cells, dtype=np.uint64))
        mode = (roads >> np.uint64(59)) & np.uint64(15)  # 1 = cell index
        res = (roads >> np.uint64(52)) & np.uint64(15)
        if np.any(mode != 1) or np.any(res != resolution):
            raise ValueError(f"road_cells must be H3 cells of resolution {resolution}")
        parts.append(roads)
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def _model_scores(train: IncidentSet, params: BuildParams, candidates: np.ndarray) -> np.ndarray:
    layer = build_layer(train, params, name="backtest")
    if len(layer.cells) == 0:
        return np.zeros(len(candidates))
    weekly_mean = layer.intensity.astype(np.float64).mean(axis=1)
    rows, found = layer.index(candidates)
    return np.where(found, weekly_mean[rows], 0.0)


def _count_scores(cells: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    return _accumulate(cells, weights, candidates)


def _kde_scores(cells: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Gaussian-in-grid-distance kernel over ``grid_disk(cell, 3)``; each incident's kernel sums to its weight."""
    unique, inverse = np.unique(cells, return_inverse=True)
    mass = np.bincount(inverse, weights=weights, minlength=len(unique))
    kernel = [math.exp(-(k**2) / (2 * KDE_BANDWIDTH_RINGS**2)) for k in range(KDE_RINGS + 1)]
    targets: list[np.ndarray] = []
    shares: list[np.ndarray] = []
    for cell, m in zip(unique.tolist(), mass.tolist(), strict=True):
        rings = [[cell]] + [h3i.grid_ring(cell, k) for k in range(1, KDE_RINGS + 1)]
        share = np.concatenate([np.full(len(r), kernel[k]) for k, r in enumerate(rings)])
        targets.append(np.array([c for r in rings for c in r], dtype=np.uint64))
        shares.append(share * (m / share.sum()))
    if not targets:
        return np.zeros(len(candidates))
    return _accumulate(np.concatenate(targets), np.concatenate(shares), candidates)


def _accumulate(cells: np.ndarray, weights: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Sum ``weights`` per candidate cell (cells outside the candidates are dropped)."""
    if len(candidates) == 0 or len(cells) == 0:
        return np.zeros(len(candidates))
    rows = np.minimum(np.searchsorted(candidates, cells), len(candidates) - 1)
    inside = candidates[rows] == cells
    return np.bincount(rows[inside], weights=weights[inside], minlength=len(candidates))


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).isoformat().replace("+00:00", "Z")


def _key(x: float) -> str:
    return repr(float(x))


def _pct(x: float) -> str:
    return f"{100 * x:g}%"
