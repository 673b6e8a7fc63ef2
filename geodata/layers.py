"""Risk layers: immutable H3 cell × local-hour-of-week incident intensities.

A layer holds a sorted ``uint64`` array of cells and a ``float32`` matrix
cells × 168 of *expected incidents per truck-hour* at each local hour of week.
Smoothing (a one-ring spatial kernel, a circular ±1 h kernel, shrinkage of each
cell's hour profile towards the global one) and recency decay happen once at
build time, so a whole route is scored with one ``searchsorted`` and one gather.
The version is a content hash: same inputs, same version, and every cache key
that includes it is invalidated by a new layer without a flush.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h3.api.basic_int as h3i
import numpy as np

from geodata.incidents import IncidentSet
from geodata.timezones import HOURS_PER_WEEK

WEEKS_PER_YEAR = 365.25 / 7
SECONDS_PER_YEAR = 365.25 * 86400


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
    # a shorter observation period is stretched to this, so a small file cannot inflate yearly rates
    min_period_days: float = 365.0


@dataclass(frozen=True)
class RiskLayer:
    """One immutable, versioned layer."""

    resolution: int
    cells: np.ndarray  # uint64, sorted, unique
    intensity: np.ndarray  # float32 (n, 168), expected incidents per truck-hour
    incident_count: np.ndarray  # int32 (n,), incidents whose own cell this is
    last_incident_s: np.ndarray  # int64 (n,), epoch seconds of the latest, 0 when none
    metadata: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""

    @property
    def synthetic(self) -> bool:
        return bool(self.metadata.get("synthetic", False))

    def index(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of each cell in the layer and whether it is present."""
        if len(self.cells) == 0:
            return np.zeros(len(cells), dtype=np.intp), np.zeros(len(cells), dtype=bool)
        rows = np.minimum(np.searchsorted(self.cells, cells), len(self.cells) - 1)
        return rows, self.cells[rows] == cells

    def rates(self, cells: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """Expected incidents per truck-hour for each (cell, local hour of week)."""
        rows, found = self.index(cells)
        values = self.intensity[rows, hours].astype(np.float64) if len(self.cells) else np.zeros(len(cells))
        return np.where(found, values, 0.0)


def build_layer(incidents: IncidentSet, params: BuildParams | None = None, **metadata: Any) -> RiskLayer:
    """Build a layer from incidents; deterministic for the same inputs."""
    params = params or BuildParams()
    pairs = zip(incidents.lat.tolist(), incidents.lng.tolist(), strict=True)
    own = [h3i.latlng_to_cell(lat, lng, params.resolution) for lat, lng in pairs]
    own_int = np.array(own, dtype=np.uint64)
    weights = _decayed_weights(incidents, params)
    spread_cells, spread_rows, spread_w = _spread(own, weights, params)
    cells, inverse = np.unique(spread_cells, return_inverse=True)
    counts = np.zeros((len(cells), HOURS_PER_WEEK), dtype=np.float64)
    np.add.at(counts, (inverse, incidents.local_how[spread_rows]), spread_w)
    years = _effective_years(incidents, params)
    intensity = _intensity(counts, years, params)
    own_rows = np.searchsorted(cells, own_int)
    incident_count = np.bincount(own_rows, minlength=len(cells)).astype(np.int32)
    last = np.zeros(len(cells), dtype=np.int64)
    np.maximum.at(last, own_rows, incidents.utc_s)
    meta = {
        **metadata,
        "incidents": len(incidents),
        "sources": list(incidents.sources),
        "params": params.__dict__,
        "period_start_s": int(incidents.utc_s.min()) if len(incidents) else 0,
        "period_end_s": int(incidents.utc_s.max()) if len(incidents) else 0,
    }
    return _versioned(RiskLayer(params.resolution, cells, intensity.astype(np.float32), incident_count, last, meta))


def _decayed_weights(incidents: IncidentSet, params: BuildParams) -> np.ndarray:
    """Weight per incident: violent ones count more, older ones decay by half-life from the latest."""
    as_of = incidents.utc_s.max() if len(incidents) else 0
    age_days = (as_of - incidents.utc_s) / 86400.0
    weight = np.where(incidents.violent, params.violent_weight, 1.0)
    return weight * np.power(0.5, age_days / params.half_life_days)


def _effective_years(incidents: IncidentSet, params: BuildParams) -> float:
    """Years of observation, discounted the same way as the incidents (so rates stay per year)."""
    if len(incidents) == 0:
        return 1.0
    span_days = max((incidents.utc_s.max() - incidents.utc_s.min()) / 86400.0, params.min_period_days)
    half_life = params.half_life_days
    decayed_days = half_life / math.log(2) * (1.0 - 0.5 ** (span_days / half_life))
    return decayed_days / 365.25


def _spread(own: list[int], weights: np.ndarray, params: BuildParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread each incident over its cell and the ring around it (one entry per cell touched)."""
    cells: list[int] = []
    rows: list[int] = []
    share: list[float] = []
    for row, cell in enumerate(own):
        ring = h3i.grid_ring(cell, 1)
        outer = (1.0 - params.center_weight) / len(ring)
        cells.append(cell)
        rows.append(row)
        share.append(params.center_weight)
        for neighbour in ring:
            cells.append(neighbour)
            rows.append(row)
            share.append(outer)
    row_arr = np.array(rows, dtype=np.intp)
    return np.array(cells, dtype=np.uint64), row_arr, np.array(share) * weights[row_arr]


def _intensity(counts: np.ndarray, years: float, params: BuildParams) -> np.ndarray:
    """Per truck-hour rates: annual rate × smoothed, shrunk hour profile / slot-hours per year / trucks."""
    smoothed = 0.25 * np.roll(counts, 1, axis=1) + 0.5 * counts + 0.25 * np.roll(counts, -1, axis=1)
    totals = smoothed.sum(axis=1, keepdims=True)
    overall = smoothed.sum(axis=0)
    uniform = np.full(HOURS_PER_WEEK, 1 / HOURS_PER_WEEK)
    global_profile = overall / overall.sum() if overall.sum() > 0 else uniform
    global_profile = (1 - params.uniform_floor) * global_profile + params.uniform_floor * uniform
    profile = (smoothed + params.profile_prior * global_profile) / (totals + params.profile_prior)
    annual = totals / years
    return annual * profile / (WEEKS_PER_YEAR * params.trucks_per_cell)


def _versioned(layer: RiskLayer) -> RiskLayer:
    digest = hashlib.sha256()
    digest.update(str(layer.resolution).encode())
    for array in (layer.cells, layer.intensity, layer.incident_count, layer.last_incident_s):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(layer.metadata, sort_keys=True, default=str).encode())
    name = str(layer.metadata.get("name", "layer"))
    return RiskLayer(
        layer.resolution,
        layer.cells,
        layer.intensity,
        layer.incident_count,
        layer.last_incident_s,
        layer.metadata,
        f"{name}-{digest.hexdigest()[:12]}",
    )


def save_layer(layer: RiskLayer, path: Path | str) -> None:
    """Write a layer artifact (.npz with its metadata and version)."""
    np.savez_compressed(
        path,
        cells=layer.cells,
        intensity=layer.intensity,
        incident_count=layer.incident_count,
        last_incident_s=layer.last_incident_s,
        header=np.array(json.dumps(_header(layer))),
    )


def _header(layer: RiskLayer) -> dict[str, Any]:
    return {"resolution": layer.resolution, "version": layer.version, "metadata": layer.metadata}


def load_layer(path: Path | str) -> RiskLayer:
    """Read a layer artifact written by :func:`save_layer`."""
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["header"]))
        return RiskLayer(
            header["resolution"],
            data["cells"],
            data["intensity"],
            data["incident_count"],
            data["last_incident_s"],
            header["metadata"],
            header["version"],
        )
