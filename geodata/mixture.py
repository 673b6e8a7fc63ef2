"""The fitted model's mixture, evaluated: decayed counts per time kernel, spread over each source
cell's disk by the spatial kernels, with the trend factor and the floor.

It sits below both :mod:`geodata.layers` (whose ``build_layer`` evaluates a fitted mixture into a
layer) and :mod:`geodata.adaptive` (which fits the mixture's weights), so neither imports the other
in a circle. Everything here is numpy over arrays; nothing is fitted here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import h3.api.basic_int as h3i
import numpy as np

from geodata.incidents import IncidentSet

# spatial kernels over grid distance 0, 1, 2 (each normalised over its disk): the cell alone, the
# cell and its ring evenly, and a Gaussian of σ = 1 ring out to 2 rings
SPATIAL_KERNELS = {
    "cell": (1.0, 0.0, 0.0),
    "ring": (1.0, 1.0, 0.0),
    "wide": (1.0, math.exp(-0.5), math.exp(-2.0)),
}
DISK_RINGS = 2
# every layer cell keeps at least this share of the layer's mean cell rate (no cell is risk-free)
MIN_FLOOR_SHARE = 0.01
# kernels with half-lives up to this are the near-repeat (self-exciting) part (geodata.adaptive)
NEAR_REPEAT_DAYS = 30.0


class MixtureParams(Protocol):
    """What :func:`adaptive_totals` reads of a layer's build parameters (``layers.BuildParams``)."""

    @property
    def violent_weight(self) -> float: ...
    @property
    def decay_half_lives(self) -> tuple[float, ...]: ...
    @property
    def trend_half_lives(self) -> tuple[float, ...]: ...
    @property
    def decay_weights_cell(self) -> tuple[float, ...]: ...
    @property
    def decay_weights_ring(self) -> tuple[float, ...]: ...
    @property
    def decay_weights_wide(self) -> tuple[float, ...]: ...
    @property
    def floor_per_cell_day(self) -> float: ...
    @property
    def trend_exponent(self) -> float: ...
    @property
    def trend_prior_per_day(self) -> float: ...


def kernel_rates(utc_s: np.ndarray, base: np.ndarray, half_lives: Sequence[float], as_of: int) -> np.ndarray:
    """Per entry and half-life, ``base · (ln 2 / h) · 0.5^(age / h)``: a decayed count in incidents per day."""
    age_days = np.maximum(as_of - np.asarray(utc_s, dtype=np.int64), 0) / 86400.0
    h = np.asarray(half_lives, dtype=np.float64)[None, :]
    return base[:, None] * (math.log(2) / h) * np.power(0.5, age_days[:, None] / h)


class Disks:
    """Every source cell's disk out to DISK_RINGS rings, as (source, target, distance) triples.

    With ``support``, only targets in it (and the source itself) are kept, and each kernel is
    normalised over what is kept: risk moves along the road, not into the fields beside it.
    """

    def __init__(self, sources: np.ndarray, support: np.ndarray | None = None) -> None:
        src: list[int] = []
        tgt: list[int] = []
        dist: list[int] = []
        for i, cell in enumerate(sources.tolist()):
            for k, ring in enumerate(_rings(cell)):
                src.extend([i] * len(ring))
                tgt.extend(ring)
                dist.extend([k] * len(ring))
        self.n = len(sources)
        self.source = np.array(src, dtype=np.int64)
        self.target = np.array(tgt, dtype=np.uint64)
        self.distance = np.array(dist, dtype=np.int8)
        if support is not None:
            keep = (self.distance == 0) | np.isin(self.target, support)
            self.source, self.target, self.distance = self.source[keep], self.target[keep], self.distance[keep]
        self._norms: dict[str, np.ndarray] = {}

    def share(self, kernel: str) -> np.ndarray:
        """Per triple, the share of its source's mass that the kernel sends to its target."""
        if kernel not in self._norms:
            values = np.asarray(SPATIAL_KERNELS[kernel])[self.distance]
            norm = np.bincount(self.source, weights=values, minlength=self.n)
            self._norms[kernel] = values / norm[self.source]
        return self._norms[kernel]

    def spread(self, mass: np.ndarray, kernel: str, cells: np.ndarray) -> np.ndarray:
        """``mass`` per source (n,) or (n, m) spread onto the sorted ``cells`` (others dropped)."""
        share = self.share(kernel)
        rows = np.minimum(np.searchsorted(cells, self.target), max(len(cells) - 1, 0))
        inside = cells[rows] == self.target if len(cells) else np.zeros(len(rows), dtype=bool)
        mass = np.asarray(mass, dtype=np.float64)
        if mass.ndim == 1:
            return np.bincount(rows[inside], weights=(mass[self.source] * share)[inside], minlength=len(cells))
        out = np.zeros((len(cells), mass.shape[1]))
        for j in range(mass.shape[1]):
            out[:, j] = np.bincount(rows[inside], weights=(mass[self.source, j] * share)[inside], minlength=len(cells))
        return out


def _rings(cell: int) -> list[list[int]]:
    return [[cell], *(h3i.grid_ring(cell, k) for k in range(1, DISK_RINGS + 1))]


def adaptive_totals(
    incidents: IncidentSet,
    source_rows: np.ndarray,
    source_cells: np.ndarray,
    cells: np.ndarray,
    params: MixtureParams,
    support: np.ndarray | None,
    as_of: int,
    disks: Disks | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sorted ``cells``: expected incidents per day under the fitted mixture, the share of it from
    the near-repeat kernels, and the earliest incident of the last ``NEAR_REPEAT_DAYS`` days in the
    cell or its ring (epoch seconds, 0 when none)."""
    base = np.where(incidents.violent, params.violent_weight, 1.0) * incidents.weights
    kernels = (*params.decay_half_lives, *params.trend_half_lives)
    per_entry = kernel_rates(incidents.utc_s, base, kernels, as_of)
    n = len(source_cells)
    per_source = np.column_stack(
        [np.bincount(source_rows, weights=per_entry[:, j], minlength=n) for j in range(len(kernels))]
    )
    k = len(params.decay_half_lives)
    near = np.asarray(params.decay_half_lives) <= NEAR_REPEAT_DAYS
    disks = disks or Disks(source_cells, support)
    totals = np.full(len(cells), params.floor_per_cell_day)
    near_totals = np.zeros(len(cells))
    for name, weights in (
        ("cell", params.decay_weights_cell),
        ("ring", params.decay_weights_ring),
        ("wide", params.decay_weights_wide),
    ):
        w = np.asarray(weights, dtype=np.float64)
        if len(w) and w.any():
            totals += disks.spread(per_source[:, :k] @ w, name, cells)
            if (w * near).any():
                near_totals += disks.spread(per_source[:, :k] @ (w * near), name, cells)
    if params.trend_exponent != 0.0:
        trend = disks.spread(per_source[:, k:], "ring", cells)
        prior = params.trend_prior_per_day
        factor = ((trend[:, 0] + prior) / (trend[:, 1] + prior)) ** params.trend_exponent
        totals *= factor
        near_totals *= factor
    # no layer cell is risk-free: at least MIN_FLOOR_SHARE of the mean cell's rate
    floor = MIN_FLOOR_SHARE * float(totals.mean()) if len(totals) else 0.0
    totals = np.maximum(totals, floor)
    share = np.divide(near_totals, totals, out=np.zeros(len(cells)), where=totals > 0)
    return (
        totals,
        np.clip(share, 0.0, 1.0).astype(np.float32),
        _recent_since(incidents, source_rows, disks, cells, as_of),
    )


def _recent_since(
    incidents: IncidentSet, source_rows: np.ndarray, disks: Disks, cells: np.ndarray, as_of: int
) -> np.ndarray:
    """Earliest incident of the last NEAR_REPEAT_DAYS days in each cell or its ring (0 when none)."""
    utc = np.asarray(incidents.utc_s, dtype=np.int64)
    recent = (utc >= as_of - int(NEAR_REPEAT_DAYS * 86400)) & (utc <= as_of)
    big = np.iinfo(np.int64).max
    first = np.full(disks.n, big, dtype=np.int64)
    np.minimum.at(first, source_rows[recent], utc[recent])
    out = np.full(len(cells), big, dtype=np.int64)
    near = disks.distance <= 1
    targets, sources = disks.target[near], disks.source[near]
    if len(cells):
        rows = np.minimum(np.searchsorted(cells, targets), len(cells) - 1)
        inside = cells[rows] == targets
        np.minimum.at(out, rows[inside], first[sources[inside]])
    return np.where(out == big, 0, out)
