"""Risk layers: immutable H3 cell × local-hour-of-week incident intensities.

A layer holds a sorted ``uint64`` array of cells and a ``float32`` matrix
cells × 168 of *expected incidents per truck-hour* at each local hour of week,
plus per-cell counts, the latest incident and a 90 % interval for the weekly
mean. Smoothing (a one-ring spatial kernel, a circular ±1 h kernel, shrinkage of
each cell's hour profile towards the global one) and recency decay happen once at
build time, so a whole route is scored with one ``searchsorted`` and one gather.
The version is a content hash: same inputs, same version, and every cache key
that includes it changes with a new layer, without a flush. The formulas and
their reasons are in docs/model.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import h3.api.basic_int as h3i
import numpy as np

from geodata import layer_files
from geodata.incidents import UNKNOWN_HOUR, IncidentSet
from geodata.mixture import adaptive_totals
from geodata.timezones import HOURS_PER_WEEK

WEEKS_PER_YEAR = 365.25 / 7
# one-sided 95 % normal quantile: the bounds form a 90 % interval
Z_95 = 1.6448536269514722
# rows processed at a time after the spatial spread, to bound peak memory
CHUNK_ROWS = 65_536
ARRAY_NAMES = (
    "cells",
    "intensity",
    "incident_count",
    "violent_count",
    "last_incident_s",
    "lower",
    "upper",
    "recent_share",
    "recent_since_s",
    "coverage",
)
# a cell whose near-repeat share of its rate reaches this is "elevated by recent activity"
ELEVATED_SHARE = 0.25


@dataclass(frozen=True)
class BuildParams:
    """How incidents become intensities (recorded in the layer's metadata)."""

    resolution: int = 8
    # share of an incident kept in its own cell; the rest spread evenly over the ring around it
    center_weight: float = 0.4
    half_life_days: float = 365.0
    # pseudo-incidents pulling a cell's hour profile towards the global profile
    profile_prior: float = 24.0
    # share of the global hour profile spread evenly over the week: no hour is ever risk-free
    uniform_floor: float = 0.05
    # trucks assumed present in a corridor cell at any time: turns incidents per hour into per truck-hour
    trucks_per_cell: float = 10.0
    violent_weight: float = 1.5
    # a cell with (decayed) count n keeps cw + (1 - cw)·n/(n + kappa) of it: well-observed cells barely
    # spread, sparse ones borrow from their neighbours (0 turns this off)
    spread_kappa: float = 5.0
    # a shorter observation period is stretched to this, so a small file cannot inflate yearly rates
    min_period_days: float = 365.0
    # --- the adaptive model (geodata/adaptive.py fits these; empty half-lives = the fixed recipe above) ---
    # half-lives (days) of the exponential time kernels; each has a weight per spatial kernel: kept in
    # the incident's own cell, spread evenly over the cell and its ring, or a Gaussian (σ 1 ring) to 2 rings
    decay_half_lives: tuple[float, ...] = ()
    decay_weights_cell: tuple[float, ...] = ()
    decay_weights_ring: tuple[float, ...] = ()
    decay_weights_wide: tuple[float, ...] = ()
    # expected incidents per day added to every layer cell (the background floor)
    floor_per_cell_day: float = 0.0
    # trend: a cell's rate is multiplied by ((short + a) / (long + a))^trend_exponent, short and long
    # being its ring-smoothed decayed rates at the two half-lives below, a = trend_prior_per_day
    trend_exponent: float = 0.0
    trend_half_lives: tuple[float, float] = (60.0, 1460.0)
    trend_prior_per_day: float = 0.01

    @property
    def adaptive(self) -> bool:
        """Whether the fitted (adaptive) model is used instead of the fixed recipe."""
        return len(self.decay_half_lives) > 0


@dataclass(frozen=True, eq=False)
class RiskLayer:
    """One immutable, versioned layer."""

    resolution: int
    cells: np.ndarray  # uint64, sorted, unique
    intensity: np.ndarray  # float32 (n, 168), expected incidents per truck-hour
    incident_count: np.ndarray  # int32 (n,), incidents whose own cell this is
    last_incident_s: np.ndarray  # int64 (n,), epoch seconds of the latest, 0 when none
    violent_count: np.ndarray | None = None  # int32 (n,)
    lower: np.ndarray | None = None  # float32 (n,), 5 % bound of the weekly mean intensity
    upper: np.ndarray | None = None  # float32 (n,), 95 % bound of the weekly mean intensity
    # adaptive layers: share of the rate from the near-repeat part, and the earliest recent incident in
    # the cell or its ring behind it (epoch seconds, 0 when none)
    recent_share: np.ndarray | None = None  # float32 (n,)
    recent_since_s: np.ndarray | None = None  # int64 (n,)
    # the area the layer's data covers: compacted H3 cells, sorted (geodata.coverage); None for a
    # layer built before coverage was recorded
    coverage: np.ndarray | None = None  # uint64
    metadata: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""

    @property
    def synthetic(self) -> bool:
        return bool(self.metadata.get("synthetic", False))

    @cached_property
    def weekly_mean(self) -> np.ndarray:
        """Mean intensity over the 168 hours of the week, per cell (float64)."""
        mean: np.ndarray = self.intensity.mean(axis=1, dtype=np.float64)
        return mean

    @cached_property
    def centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude of every cell's centre (computed on first use)."""
        points = np.array([h3i.cell_to_latlng(c) for c in self.cells.tolist()], dtype=np.float64).reshape(-1, 2)
        return points[:, 0], points[:, 1]

    def index(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each cell in the layer and whether it is present."""
        if len(self.cells) == 0:
            return np.zeros(len(cells), dtype=np.intp), np.zeros(len(cells), dtype=bool)
        rows = np.minimum(np.searchsorted(self.cells, cells), len(self.cells) - 1)
        return rows, self.cells[rows] == cells

    def recent_activity(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per layer row: elevated by recent activity (near-repeat share ≥ ELEVATED_SHARE), the share,
        and since when (epoch seconds, 0 when not elevated or not an adaptive layer)."""
        rows = np.asarray(rows, dtype=np.intp)
        if self.recent_share is None or self.recent_since_s is None or len(self.cells) == 0:
            zeros = np.zeros(len(rows))
            return zeros.astype(bool), zeros, zeros.astype(np.int64)
        share = np.asarray(self.recent_share[rows], dtype=np.float64)
        elevated = (share >= ELEVATED_SHARE) & (self.recent_since_s[rows] > 0)
        return elevated, share, np.where(elevated, self.recent_since_s[rows], 0).astype(np.int64)

    def rates(self, cells: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """Expected incidents per truck-hour for each (cell, local hour of week)."""
        rows, found = self.index(cells)
        values = self.intensity[rows, hours].astype(np.float64) if len(self.cells) else np.zeros(len(cells))
        return np.where(found, values, 0.0)


def build_layer(
    incidents: IncidentSet,
    params: BuildParams | None = None,
    *,
    road_cells: np.ndarray | None = None,
    as_of_s: int | None = None,
    own_cells: np.ndarray | None = None,
    **metadata: Any,
) -> RiskLayer:
    """Build a layer from incidents; deterministic for the same inputs.

    With ``road_cells`` (cells of a road layer at the layer's resolution), the spatial
    spread goes only to neighbours on a road or with incidents of their own: risk moves
    along the road, not into the fields beside it.  Ages are counted from ``as_of_s``
    (default: the latest incident).  ``own_cells`` are the incidents' cells when the
    caller already has them.  With ``params.adaptive`` the cell totals come from the
    fitted mixture of time kernels (:mod:`geodata.adaptive`), the hour profiles and the
    bounds' evidence from the fixed recipe.
    """
    params = params or BuildParams()
    own = _cells_of(incidents, params.resolution) if own_cells is None else np.asarray(own_cells, dtype=np.uint64)
    source_cells, source_rows = np.unique(own, return_inverse=True)
    as_of = int(incidents.utc_s.max()) if as_of_s is None and len(incidents) else int(as_of_s or 0)
    weights = _decayed_weights(incidents, params, as_of)
    known, unknown = _hour_counts(source_rows, len(source_cells), incidents.local_how, weights)
    support = None if road_cells is None else np.union1d(source_cells, np.asarray(road_cells, dtype=np.uint64))
    cells, known, unknown = _spread(source_cells, known, unknown, params, support)
    years = _effective_years(incidents, params)
    totals = recent_share = recent_since = None
    if params.adaptive:
        totals, recent_share, recent_since = adaptive_totals(
            incidents, source_rows, source_cells, cells, params, support, as_of
        )
    intensity, lower, upper = _intensity(known, unknown, years, params, totals)
    own_rows = np.searchsorted(cells, own)
    raw = incidents.weights
    meta = {
        **metadata,
        "incidents": len(incidents),
        "sources": list(incidents.sources),
        "params": asdict(params),
        "period_start_s": int(incidents.utc_s.min()) if len(incidents) else 0,
        "period_end_s": int(incidents.utc_s.max()) if len(incidents) else 0,
        "as_of_s": as_of,
    }
    layer = RiskLayer(
        resolution=params.resolution,
        cells=cells,
        intensity=intensity,
        incident_count=np.rint(np.bincount(own_rows, weights=raw, minlength=len(cells))).astype(np.int32),
        last_incident_s=_latest(own_rows, incidents.utc_s, len(cells)),
        violent_count=np.rint(np.bincount(own_rows, weights=raw * incidents.violent, minlength=len(cells))).astype(
            np.int32
        ),
        lower=lower,
        upper=upper,
        recent_share=recent_share,
        recent_since_s=recent_since,
        metadata=meta,
    )
    return with_version(layer)


def _cells_of(incidents: IncidentSet, resolution: int) -> np.ndarray:
    to_cell = h3i.latlng_to_cell
    lat, lng = incidents.lat.tolist(), incidents.lng.tolist()
    return np.fromiter((to_cell(a, b, resolution) for a, b in zip(lat, lng, strict=True)), np.uint64, len(lat))


def _hour_counts(rows: np.ndarray, n: int, how: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted counts per (own cell, local hour) and, for entries of unknown hour, per cell."""
    known_mask = how != UNKNOWN_HOUR
    flat = rows[known_mask].astype(np.int64) * HOURS_PER_WEEK + how[known_mask]
    known = np.bincount(flat, weights=weights[known_mask], minlength=n * HOURS_PER_WEEK)
    unknown = np.bincount(rows[~known_mask], weights=weights[~known_mask], minlength=n)
    return known.reshape(n, HOURS_PER_WEEK).astype(np.float32), unknown


def _decayed_weights(incidents: IncidentSet, params: BuildParams, as_of: int) -> np.ndarray:
    """Weight per entry: violent ones count more, older ones decay by half-life from ``as_of``."""
    age_days = np.maximum(as_of - incidents.utc_s, 0) / 86400.0
    weight = np.where(incidents.violent, params.violent_weight, 1.0) * incidents.weights
    decayed: np.ndarray = weight * np.power(0.5, age_days / params.half_life_days)
    return decayed


def _effective_years(incidents: IncidentSet, params: BuildParams) -> float:
    """Years of observation, discounted the same way as the incidents (so rates stay per year)."""
    if len(incidents) == 0:
        return 1.0
    span_days = max((incidents.utc_s.max() - incidents.utc_s.min()) / 86400.0, params.min_period_days)
    half_life = params.half_life_days
    decayed_days = half_life / math.log(2) * (1.0 - 0.5 ** (span_days / half_life))
    return float(decayed_days / 365.25)


def _spread(
    sources: np.ndarray,
    known: np.ndarray,
    unknown: np.ndarray,
    params: BuildParams,
    support: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread each source cell's counts over itself (``center_weight``) and the ring around it.

    With ``support`` (sorted cells), only neighbours in it receive a share; a source with
    no such neighbour keeps all of its counts.
    """
    rings = [h3i.grid_ring(cell, 1) for cell in sources.tolist()]
    sizes = np.fromiter(map(len, rings), np.int64, len(rings))
    neighbours = np.fromiter(itertools.chain.from_iterable(rings), np.uint64, int(sizes.sum()))
    owner = np.repeat(np.arange(len(sources)), sizes)
    if support is not None:
        keep = np.isin(neighbours, support, assume_unique=False)
        neighbours, owner = neighbours[keep], owner[keep]
        sizes = np.bincount(owner, minlength=len(sources))
    mass = known.sum(axis=1, dtype=np.float64) + unknown
    kappa = params.spread_kappa
    base = params.center_weight + (1.0 - params.center_weight) * (mass / (mass + kappa) if kappa > 0 else 0.0)
    centre_weight = np.where(sizes > 0, base, 1.0).astype(np.float32)
    cells = np.unique(np.concatenate([sources, neighbours]))
    centre_rows = np.searchsorted(cells, sources)
    ring_rows = np.searchsorted(cells, neighbours)
    ring_share = ((1.0 - centre_weight) / np.maximum(sizes, 1)).astype(np.float32)
    spread_known = np.zeros((len(cells), known.shape[1]), dtype=np.float32)
    spread_known[centre_rows] = known * centre_weight[:, None]  # sources are unique
    for lo in range(0, len(owner), CHUNK_ROWS):
        rows = owner[lo : lo + CHUNK_ROWS]
        np.add.at(spread_known, ring_rows[lo : lo + CHUNK_ROWS], known[rows] * ring_share[rows, None])
    spread_unknown = np.zeros(len(cells))
    spread_unknown[centre_rows] = unknown * centre_weight
    np.add.at(spread_unknown, ring_rows, unknown[owner] * ring_share[owner])
    return cells, spread_known, spread_unknown


def _intensity(
    known: np.ndarray, unknown: np.ndarray, years: float, params: BuildParams, totals: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per truck-hour rates and the 90 % bounds of their weekly mean, chunk by chunk.

    With ``totals`` (expected incidents per day per cell, the adaptive model), they replace
    the decayed counts as each cell's total; the counts still give the hour profile and the
    evidence behind the bounds (relative width of the count's Poisson interval).
    """
    global_profile = _global_profile(known, params)
    scale = 1.0 / (years * WEEKS_PER_YEAR * params.trucks_per_cell)
    day_scale = 365.25 / (WEEKS_PER_YEAR * params.trucks_per_cell)
    intensity = np.empty_like(known)
    lower = np.empty(len(known), dtype=np.float32)
    upper = np.empty(len(known), dtype=np.float32)
    for lo in range(0, len(known), CHUNK_ROWS):
        block = known[lo : lo + CHUNK_ROWS].astype(np.float64)
        smoothed = _smooth_hours(block)
        known_total = smoothed.sum(axis=1, keepdims=True)
        profile = (smoothed + params.profile_prior * global_profile) / (known_total + params.profile_prior)
        total = known_total[:, 0] + unknown[lo : lo + CHUNK_ROWS]
        low, high = poisson_interval(total)
        if totals is not None:
            rate = totals[lo : lo + CHUNK_ROWS] * day_scale
            ratio = np.divide(rate, total, out=np.zeros_like(rate), where=total > 0)
            low, high = low * ratio, np.where(total > 0, high * ratio, rate + high * scale)
            intensity[lo : lo + CHUNK_ROWS] = (rate[:, None] * profile).astype(np.float32)
            lower[lo : lo + CHUNK_ROWS] = low / HOURS_PER_WEEK
            upper[lo : lo + CHUNK_ROWS] = high / HOURS_PER_WEEK
            continue
        intensity[lo : lo + CHUNK_ROWS] = (total[:, None] * profile * scale).astype(np.float32)
        # weekly mean of profile × total × scale is total × scale / 168 (a profile sums to 1)
        lower[lo : lo + CHUNK_ROWS] = low * scale / HOURS_PER_WEEK
        upper[lo : lo + CHUNK_ROWS] = high * scale / HOURS_PER_WEEK
    return intensity, lower, upper


def _global_profile(known: np.ndarray, params: BuildParams) -> np.ndarray:
    overall = _smooth_hours(known.sum(axis=0, dtype=np.float64)[None, :])[0]
    uniform = np.full(HOURS_PER_WEEK, 1 / HOURS_PER_WEEK)
    profile = overall / overall.sum() if overall.sum() > 0 else uniform
    return (1 - params.uniform_floor) * profile + params.uniform_floor * uniform


def _smooth_hours(counts: np.ndarray) -> np.ndarray:
    """Circular ±1 h kernel (¼, ½, ¼) along the hour-of-week axis."""
    return 0.25 * np.roll(counts, 1, axis=1) + 0.5 * counts + 0.25 * np.roll(counts, -1, axis=1)


def poisson_interval(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Approximate 90 % interval for a Poisson mean given (weighted) counts.

    Garwood's exact interval is ½·χ²(2n; 5 %) .. ½·χ²(2n + 2; 95 %); the χ² quantiles
    use the Wilson–Hilferty approximation (within ~2 % for n ≥ 5; at n ≈ 1 the lower bound
    comes out up to ~25 % low, i.e. the interval errs wide), so numpy suffices.
    """
    n = np.asarray(counts, dtype=np.float64)
    lower = np.where(n > 0, 0.5 * _chi2_quantile(2 * np.maximum(n, 1e-12), -Z_95), 0.0)
    upper = 0.5 * _chi2_quantile(2 * n + 2, Z_95)
    return np.maximum(lower, 0.0), upper


def _chi2_quantile(dof: np.ndarray, z: float) -> np.ndarray:
    term = 2.0 / (9.0 * dof)
    quantile: np.ndarray = dof * np.maximum(1.0 - term + z * np.sqrt(term), 0.0) ** 3
    return quantile


def _latest(rows: np.ndarray, utc_s: np.ndarray, n: int) -> np.ndarray:
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, rows, utc_s)
    return last


def with_version(layer: RiskLayer) -> RiskLayer:
    """The layer with its content-derived version (``{name}-{sha256[:12]}``)."""
    digest = hashlib.sha256()
    digest.update(str(layer.resolution).encode())
    for name in ARRAY_NAMES:
        array = getattr(layer, name)
        if array is not None:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(layer.metadata, sort_keys=True, default=str).encode())
    name = str(layer.metadata.get("name", "layer"))
    return RiskLayer(**{**_fields(layer), "version": f"{name}-{digest.hexdigest()[:12]}"})


def with_coverage(layer: RiskLayer, cells: np.ndarray, source: str) -> RiskLayer:
    """The layer with the area its data covers (compacted H3 cells, :mod:`geodata.coverage`) and
    where that area comes from, in a new version: the coverage is part of the layer's content."""
    cells = np.sort(np.asarray(cells, dtype=np.uint64))
    levels = ((cells >> np.uint64(52)) & np.uint64(0xF)).tolist()
    info = {"source": source, "cells": len(cells), "resolution": int(max(levels, default=0))}
    fields = {**_fields(layer), "coverage": cells, "metadata": {**layer.metadata, "coverage": info}}
    return with_version(RiskLayer(**fields))


def _fields(layer: RiskLayer) -> dict[str, Any]:
    return {name: getattr(layer, name) for name in (*ARRAY_NAMES, "resolution", "metadata", "version")}


def save_layer(layer: RiskLayer, folder: Path | str) -> None:
    """Write a layer as a folder of ``.npy`` arrays and a ``layer.json`` header, which records
    the SHA-256 of every array file (checked by :func:`load_layer`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ARRAY_NAMES:
        array = getattr(layer, name)
        if array is not None:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            written.append(f"{name}.npy")
    header = {
        "resolution": layer.resolution,
        "version": layer.version,
        "metadata": layer.metadata,
        "sha256": layer_files.file_digests(folder, written),
    }
    (folder / "layer.json").write_text(json.dumps(header, indent=2, sort_keys=True, default=str), encoding="utf-8")


def load_layer(folder: Path | str) -> RiskLayer:
    """Read a layer written by :func:`save_layer`, checked (:mod:`geodata.layer_files`) and read
    whole into memory: a file changed on disk afterwards cannot affect it.

    Raises :class:`geodata.layer_files.LayerRejectedError` for a layer that must not serve. A layer
    written before file hashes were recorded must have the content version it claims."""
    folder = Path(folder).resolve()
    header, arrays, recorded = layer_files.read_layer_files(folder, ARRAY_NAMES)
    if recorded is None:
        expected = layer_files.content_version(header["resolution"], arrays, header["metadata"])
        if expected != header["version"]:
            raise layer_files.LayerRejectedError(
                "hash", f"layer {header['version']} records no file hashes and its content is version {expected}"
            )
    required = {name: arrays[name] for name in ("cells", "intensity", "incident_count", "last_incident_s")}
    if any(value is None for value in required.values()):  # read_layer_files reads these or raises
        raise layer_files.LayerRejectedError("files", f"layer {header['version']} lacks a required array")
    return RiskLayer(
        resolution=header["resolution"],
        metadata=header["metadata"],
        version=header["version"],
        cells=cast(np.ndarray, arrays["cells"]),
        intensity=cast(np.ndarray, arrays["intensity"]),
        incident_count=cast(np.ndarray, arrays["incident_count"]),
        last_incident_s=cast(np.ndarray, arrays["last_incident_s"]),
        violent_count=arrays.get("violent_count"),
        lower=arrays.get("lower"),
        upper=arrays.get("upper"),
        recent_share=arrays.get("recent_share"),
        recent_since_s=arrays.get("recent_since_s"),
        coverage=arrays.get("coverage"),
    )
