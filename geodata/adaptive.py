"""The adaptive model: background + near-repeat (self-exciting) + trend, fitted on the data.

In the spirit of Mohler et al. (2011, "Self-exciting point process modeling of crime",
JASA 106:100–108) and of ETAS forecasts, the expected number of incidents in cell ``c``
over the next ``V`` days (the horizon) is

    λ_c = g_c · ( Σ_k a_k · D_k(c) + Σ_k b_k · R_k(c) + Σ_k e_k · W_k(c) + f )

* ``D_k(c)`` = Σ over past incidents in the cell of ``v·s · (ln2/h_k) · 0.5^(age/h_k)``:
  exponential time kernels of half-life ``h_k`` (3 days … 4 years), in incidents per day;
  ``R_k`` the same spread evenly over the cell and its ring, ``W_k`` as a Gaussian of the
  grid distance (σ = 1 ring, out to 2 rings), each normalised over its disk (with a road
  layer, over the disk's road cells and cells with incidents; mass that lands outside the
  layer's cells is dropped).  Each (time, space) kernel has its own weight: the mixture
  learns how fast and how far risk spreads.  Short half-lives are the self-exciting,
  near-repeat part (an incident raises the risk nearby for days to weeks, then fades: the
  ETAS forecast of a triggering kernel ``θ ω e^(−ω t)`` over a window is exactly such a
  decayed count); long half-lives and ``f`` (a uniform floor per layer cell) are the
  long-term background.  ``v`` = 1.5 for violent, ``s`` = the entry's share.
* every layer cell keeps at least 1 % of the mean cell's rate (``MIN_FLOOR_SHARE``): a
  neighbour of a hotspot is never risk-free.
* ``g_c = ((S_c + a) / (L_c + a))^β`` is the trend: ``S`` and ``L`` are the cell's
  ring-smoothed rates at half-lives of 60 days and 4 years; ``β > 0`` extrapolates
  rising hotspots up and fading ones down.

**Fitting (no tuning by the user).**  Rolling origins inside the data: ``o_j = end − j·V``
(``j = 1..J``, ``J`` = max(3, 630 days / V) up to 40, as far as the data allow with at least
``V`` days before each, and no more than 3 once the windows hold 20,000 validation incidents).  For each
origin the maps above are computed from the incidents before it and scored against the
incidents of ``[o_j, o_j + V)`` by Poisson log-likelihood on the cells the model covers.
The non-negative weights ``a, b, e, f`` maximise that likelihood (EM: multiplicative
updates, concave, so the optimum is global), for each candidate trend (``β`` ∈ {0, ¼, ½, 1},
``S``'s half-life ∈ {30, 60, 120} days, ``a`` ∈ {0.01, 0.003, 0.001}/day).  Candidates whose
validation log-likelihood is within ``LIKELIHOOD_TOLERANCE`` (2 nats, a likelihood-ratio
threshold) of the best are not told apart by the likelihood; among them the one with the best
mean validation hit rate at 1, 5 and 10 % of the covered cells wins (the ranking a patrol
uses; then the likelihood).  The weights are then applied with ages counted from the end of
the data.
Everything is recorded in the layer's ``params``.

**Fallback** (documented, never a crash): with fewer than ``MIN_FIT_INCIDENTS`` incidents
or less than two horizons of history, the fixed mix ``FALLBACK`` (half cell, half ring,
365-day half-life, no trend) is used and the report says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from geodata.incidents import IncidentSet
from geodata.layers import BuildParams, RiskLayer, _cells_of, build_layer
from geodata.mixture import (
    DISK_RINGS as DISK_RINGS,
)
from geodata.mixture import (
    MIN_FLOOR_SHARE as MIN_FLOOR_SHARE,
)
from geodata.mixture import (
    NEAR_REPEAT_DAYS as NEAR_REPEAT_DAYS,
)
from geodata.mixture import (
    SPATIAL_KERNELS as SPATIAL_KERNELS,
)
from geodata.mixture import (
    Disks,
    kernel_rates,
)

HALF_LIVES = (3.0, 10.0, 30.0, 90.0, 365.0, 1460.0)
# kernels with half-lives up to this are the near-repeat (self-exciting) part; from BACKGROUND_DAYS on,
# with the floor, the background
BACKGROUND_DAYS = 365.0
TREND_EXPONENTS = (0.0, 0.25, 0.5, 1.0)
# the trend's short half-life and prior (incidents/day) are fitted too, from these
TREND_SHORT_HALF_LIVES = (30.0, 60.0, 120.0)
TREND_PRIORS = (0.01, 0.003, 0.001)
# candidates whose validation log-likelihood is within this many nats of the best one are not told apart
# by the likelihood (a likelihood-ratio threshold, ≈ χ²₁ 95 % / 2 ≈ 1.92); among them the best mean
# validation hit rate at AREA_FRACTIONS (what a patrol covering the top cells gets) wins
LIKELIHOOD_TOLERANCE = 2.0
# rolling origins: at least 3, and enough to cover VALIDATION_DAYS of validation windows (at most 40)
MIN_ORIGINS = 3
MAX_ORIGINS = 40
VALIDATION_DAYS = 630.0
# ... unless the windows already hold this many validation incidents (then at least MIN_ORIGINS)
MAX_VALIDATION_INCIDENTS = 20_000.0
MIN_FIT_INCIDENTS = 30
EM_ITERATIONS = 300
# updates per trended candidate when screening them (from the no-trend weights)
SCREEN_ITERATIONS = 40
PARTS = ("near_repeat", "background", "trend")


@dataclass(frozen=True)
class FitReport:
    """What was fitted, on what, and how well (per validation incident, nats)."""

    params: BuildParams
    horizon_days: float
    origins_s: tuple[int, ...]
    validation_incidents: float
    loglik_per_incident: float  # mean log-likelihood gain over a uniform spread on the covered cells
    fallback: str | None = None
    without: tuple[str, ...] = ()

    part_shares: tuple[tuple[str, float], ...] = ()
    # mean hit rate at 1, 5 and 10 % of the covered cells on the validation windows
    validation_hit_rate: float = 0.0

    def shares(self) -> dict[str, float]:
        """Share of the fitted forecast on the validation windows by part: near-repeat (kernels of
        half-life ≤ 30 days), medium, background (≥ 365 days, and the floor)."""
        return dict(self.part_shares) or {"near_repeat": 0.0, "medium": 0.0, "background": 1.0}

    def to_dict(self) -> dict[str, Any]:
        p = self.params
        return {
            "horizon_days": self.horizon_days,
            "origins_s": list(self.origins_s),
            "validation_incidents": self.validation_incidents,
            "loglik_per_incident": self.loglik_per_incident,
            "fallback": self.fallback,
            "without": list(self.without),
            "half_lives": list(p.decay_half_lives),
            "weights_cell": list(p.decay_weights_cell),
            "weights_ring": list(p.decay_weights_ring),
            "weights_wide": list(p.decay_weights_wide),
            "floor_per_cell_day": p.floor_per_cell_day,
            "trend_exponent": p.trend_exponent,
            "trend_half_lives": list(p.trend_half_lives),
            "trend_prior_per_day": p.trend_prior_per_day,
            "validation_hit_rate": self.validation_hit_rate,
            "shares": self.shares(),
        }

    def describe(self) -> str:
        """A few lines for ``layers build``: what was fitted."""
        p = self.params
        if self.fallback:
            head = f"adaptive model: fallback ({self.fallback})"
        else:
            head = (
                f"adaptive model fitted on {len(self.origins_s)} rolling origin(s), horizon {self.horizon_days:g} d, "
                f"{self.validation_incidents:g} validation incidents, "
                f"log-likelihood gain {self.loglik_per_incident:+.3f} nats/incident over uniform"
            )
        kernels = ", ".join(
            f"{h:g}d {c:.3g}/{r:.3g}/{w:.3g}"
            for h, c, r, w in zip(
                p.decay_half_lives, p.decay_weights_cell, p.decay_weights_ring, p.decay_weights_wide, strict=True
            )
        )
        share = self.shares()
        return "\n".join(
            [
                head,
                f"  time kernels (half-life: cell/ring/wide weight): {kernels}",
                f"  floor {p.floor_per_cell_day:.3g} incidents/cell/day, trend exponent {p.trend_exponent:g} "
                f"(short half-life {p.trend_half_lives[0]:g} d, prior {p.trend_prior_per_day:g}/day), "
                f"validation hit rate at 1/5/10 % {self.validation_hit_rate:.3f}",
                f"  share of the forecast: near-repeat {share['near_repeat']:.0%}, medium {share['medium']:.0%}, "
                f"background {share['background']:.0%}",
            ]
        )


def fallback_params(params: BuildParams) -> BuildParams:
    """The fixed mix used when there is too little data to fit."""
    return replace(
        params,
        decay_half_lives=(365.0,),
        decay_weights_cell=(0.5,),
        decay_weights_ring=(0.5,),
        decay_weights_wide=(0.0,),
        floor_per_cell_day=0.0,
        trend_exponent=0.0,
    )


def fit(
    incidents: IncidentSet,
    params: BuildParams | None = None,
    *,
    road_cells: np.ndarray | None = None,
    horizon_days: float = 90.0,
    as_of_s: int | None = None,
    own_cells: np.ndarray | None = None,
    without: Iterable[str] = (),
) -> FitReport:
    """Fit the adaptive model's parameters on ``incidents`` (all before ``as_of_s``).

    ``without`` drops parts (``near_repeat``, ``background``, ``trend``): the backtest's
    ablations.  Deterministic for the same inputs.
    """
    params = params or BuildParams()
    without = tuple(sorted(set(without)))
    unknown_parts = set(without) - set(PARTS)
    if unknown_parts:
        raise ValueError(f"unknown model parts {sorted(unknown_parts)} (one of {', '.join(PARTS)})")
    if not horizon_days > 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    n = len(incidents)
    if n == 0:
        return FitReport(fallback_params(params), horizon_days, (), 0.0, 0.0, "no incidents", without)
    utc = np.asarray(incidents.utc_s, dtype=np.int64)
    end = int(utc.max()) if as_of_s is None else int(as_of_s)
    start = int(utc.min())
    horizon_s = int(horizon_days * 86400)
    count = min(max(MIN_ORIGINS, math.ceil(VALIDATION_DAYS / horizon_days)), MAX_ORIGINS)
    origins = [end - j * horizon_s for j in range(1, count + 1) if end - j * horizon_s - horizon_s >= start]
    weights = incidents.weights
    # beyond MAX_VALIDATION_INCIDENTS (and MIN_ORIGINS), older windows add cost, not precision
    kept: list[int] = []
    validating = 0.0
    for origin in origins:
        if len(kept) >= MIN_ORIGINS and validating >= MAX_VALIDATION_INCIDENTS:
            break
        kept.append(origin)
        validating += float(weights[(utc >= origin) & (utc < origin + horizon_s)].sum())
    origins = kept
    if n < MIN_FIT_INCIDENTS or not origins:
        why = (
            f"{n} incidents, fewer than {MIN_FIT_INCIDENTS}"
            if n < MIN_FIT_INCIDENTS
            else f"{(end - start) / 86400:.0f} days of data, fewer than two {horizon_days:g}-day horizons"
        )
        return FitReport(fallback_params(params), horizon_days, (), 0.0, 0.0, why, without)

    half_lives = tuple(
        h
        for h in HALF_LIVES
        if not ("near_repeat" in without and h <= NEAR_REPEAT_DAYS)
        and not ("background" in without and h >= BACKGROUND_DAYS)
    )
    own = _cells_of(incidents, params.resolution) if own_cells is None else np.asarray(own_cells, dtype=np.uint64)
    sources, rows = np.unique(own, return_inverse=True)
    support = None if road_cells is None else np.union1d(sources, np.asarray(road_cells, dtype=np.uint64))
    disks = Disks(sources, support)
    base = np.where(incidents.violent, params.violent_weight, 1.0) * weights
    # trend candidates: every short half-life against the long one
    kernels = (*half_lives, *TREND_SHORT_HALF_LIVES, params.trend_half_lives[1])
    k = len(half_lives)
    spatial = tuple(SPATIAL_KERNELS)

    # per origin: the covered cells (sources before it and their rings), [k maps per spatial kernel | floor],
    # the trend's short and long rates, and the validation counts
    blocks_x, blocks_y, blocks_trend = [], [], []
    validation = 0.0
    for origin in origins:
        before = utc < origin
        after = (utc >= origin) & (utc < origin + horizon_s)
        per_entry = kernel_rates(utc[before], base[before], kernels, origin)
        per_source = np.column_stack(
            [np.bincount(rows[before], weights=per_entry[:, j], minlength=len(sources)) for j in range(len(kernels))]
        )
        seen = np.unique(rows[before])
        covered = np.unique(disks.target[np.isin(disks.source, seen) & (disks.distance <= 1)])
        maps = [disks.spread(per_source[:, :k], name, covered) for name in spatial]
        trend = disks.spread(per_source[:, k:], "ring", covered)
        observed = np.zeros(len(covered))
        pos = np.minimum(np.searchsorted(covered, own[after]), len(covered) - 1)
        inside = covered[pos] == own[after]
        np.add.at(observed, pos[inside], weights[after][inside])
        validation += float(weights[after].sum())
        floor = np.zeros((len(covered), 1)) if "background" in without else np.ones((len(covered), 1))
        blocks_x.append(np.column_stack([*maps, floor]) * horizon_days)
        blocks_y.append(observed)
        blocks_trend.append(trend)
    x_all = np.concatenate(blocks_x)
    y_all = np.concatenate(blocks_y)
    trend_all = np.concatenate(blocks_trend)
    # candidates: the trend exponent, its short half-life and prior; the weights of each by maximum likelihood
    settings = [(0.0, params.trend_half_lives[0], params.trend_prior_per_day)]
    if "trend" not in without:
        settings += [
            (beta, short, prior)
            for beta in TREND_EXPONENTS
            if beta != 0.0
            for short in TREND_SHORT_HALF_LIVES
            for prior in TREND_PRIORS
        ]

    keep = y_all > 0
    x_keep, y_keep = x_all[keep], y_all[keep]

    def trended(beta: float, short: float, prior: float) -> np.ndarray:
        """The trend factor of each validation row."""
        column = TREND_SHORT_HALF_LIVES.index(short) if short in TREND_SHORT_HALF_LIVES else 0
        return ((trend_all[:, column] + prior) / (trend_all[:, -1] + prior)) ** beta

    def weights_for(factor: np.ndarray, iterations: int, init: np.ndarray | None) -> np.ndarray:
        return _em_rows(x_keep * factor[keep][:, None], y_keep, x_all.T @ factor, iterations, init)

    # the first setting (no trend) is fitted in full; the trended ones are screened from its weights with
    # SCREEN_ITERATIONS updates (the objective is concave and they start close), the chosen one fitted in full
    candidates = []
    untrended: np.ndarray | None = None
    for beta, short, prior in settings:
        factor = trended(beta, short, prior)
        w = weights_for(factor, EM_ITERATIONS if untrended is None else SCREEN_ITERATIONS, untrended)
        untrended = w if untrended is None else untrended
        lam = factor * (x_all @ w)
        loglik = float(np.sum(y_all * np.log(np.maximum(lam, 1e-300))) - lam.sum())
        candidates.append((loglik, beta, short, prior, w))
    top = max(c[0] for c in candidates)
    # among the candidates the likelihood cannot tell apart, the best at ranking (then the likelihood)
    _, _, beta, short, prior, w = max(
        (
            (round(_validation_hits(trended(b, sh, pr) * (x_all @ cw), blocks_y), 9), ll, b, sh, pr, cw)
            for ll, b, sh, pr, cw in candidates
            if ll >= top - LIKELIHOOD_TOLERANCE
        ),
        key=lambda c: (c[0], c[1]),
    )
    factor = trended(beta, short, prior)
    if beta != 0.0:
        w = weights_for(factor, EM_ITERATIONS, w)
    xg = x_all * factor[:, None]
    hits = _validation_hits(xg @ w, blocks_y)
    gain = _gain_over_uniform(xg @ w, blocks_y)
    per_column = (xg * w[None, :]).sum(axis=0)
    h_all = np.array([*half_lives * len(spatial), math.inf])
    total = max(float(per_column.sum()), 1e-300)
    near = float(per_column[h_all <= NEAR_REPEAT_DAYS].sum()) / total
    back = float(per_column[h_all >= BACKGROUND_DAYS].sum()) / total
    shares = (("near_repeat", near), ("medium", max(1.0 - near - back, 0.0)), ("background", back))
    fitted = replace(
        params,
        decay_half_lives=tuple(float(h) for h in half_lives),
        decay_weights_cell=tuple(float(v) for v in w[0:k]),
        decay_weights_ring=tuple(float(v) for v in w[k : 2 * k]),
        decay_weights_wide=tuple(float(v) for v in w[2 * k : 3 * k]),
        floor_per_cell_day=float(w[3 * k]),
        trend_exponent=float(beta),
        trend_half_lives=(float(short), float(params.trend_half_lives[1])),
        trend_prior_per_day=float(prior),
    )
    origins_s = tuple(int(o) for o in origins)
    return FitReport(fitted, float(horizon_days), origins_s, validation, gain, None, without, shares, hits)


def _validation_hits(lam: np.ndarray, blocks_y: list[np.ndarray]) -> float:
    """Mean hit rate at the backtest's area fractions (1, 5, 10 % of the covered cells), over the
    validation windows with incidents: the ranking quality that the likelihood does not measure."""
    from geodata.ranking import AREA_FRACTIONS, hit_rates

    out, lo, count = 0.0, 0, 0
    for y in blocks_y:
        part = lam[lo : lo + len(y)]
        lo += len(y)
        if len(y) == 0 or y.sum() <= 0:
            continue
        out += float(hit_rates(part, y, AREA_FRACTIONS).mean())
        count += 1
    return out / count if count else 0.0


def _gain_over_uniform(lam: np.ndarray, blocks_y: list[np.ndarray]) -> float:
    """Mean log-likelihood per validation incident of the normalised forecast, minus a uniform one's."""
    total, gain, lo = 0.0, 0.0, 0
    for y in blocks_y:
        part = lam[lo : lo + len(y)]
        lo += len(y)
        if y.sum() <= 0 or part.sum() <= 0:
            continue
        p = np.maximum(part / part.sum(), 1e-300)
        gain += float(np.sum(y * (np.log(p) + math.log(len(y)))))
        total += float(y.sum())
    return gain / total if total > 0 else 0.0


def _em_poisson(x: np.ndarray, y: np.ndarray, iterations: int = EM_ITERATIONS) -> np.ndarray:
    """Non-negative ``w`` maximising Σ y·log(x·w) − Σ x·w (EM / multiplicative updates).

    Each update multiplies ``w_k`` by Σ_c y_c x_ck / λ_c ÷ Σ_c x_ck; the objective is concave
    in ``w`` and the updates increase it monotonically. Columns that are all zero get 0.
    """
    keep = y > 0
    return _em_rows(x[keep], y[keep], x.sum(axis=0), iterations)


def _em_rows(
    xy: np.ndarray, yy: np.ndarray, column_mass: np.ndarray, iterations: int, init: np.ndarray | None = None
) -> np.ndarray:
    """The EM updates of :func:`_em_poisson` on the rows with counts (``xy``, ``yy``) and every row's column
    sums, from ``init`` (default: equal weights)."""
    active = column_mass > 0
    w = np.zeros(len(column_mass))
    if not active.any() or yy.sum() <= 0:
        return w
    xa = xy[:, active]
    ca = column_mass[active]
    wa = np.full(int(active.sum()), yy.sum() / ca.sum()) if init is None else np.asarray(init, float)[active].copy()
    for _ in range(iterations):
        lam = np.maximum(xa @ wa, 1e-300)
        wa = wa * ((xa.T @ (yy / lam)) / ca)
    w[active] = wa
    return w


def build_fitted_layer(
    incidents: IncidentSet,
    params: BuildParams | None = None,
    *,
    road_cells: np.ndarray | None = None,
    horizon_days: float = 90.0,
    own_cells: np.ndarray | None = None,
    **metadata: Any,
) -> tuple[RiskLayer, FitReport]:
    """Fit the model on ``incidents`` and build its layer (what ``layers build`` and the seed layer do);
    the fit is recorded in the layer's metadata under ``fit``."""
    params = params or BuildParams()
    own = _cells_of(incidents, params.resolution) if own_cells is None else own_cells
    report = fit(incidents, params, road_cells=road_cells, horizon_days=horizon_days, own_cells=own)
    layer = build_layer(
        incidents, report.params, road_cells=road_cells, own_cells=own, fit=report.to_dict(), **metadata
    )
    return layer, report
