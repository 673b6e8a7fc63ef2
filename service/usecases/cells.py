"""GetCellRisk: the risk of one cell of the layer, weekly or at a time, with its counts and bounds."""

from __future__ import annotations

from dataclasses import dataclass

import h3.api.basic_int as h3i
import numpy as np

from geodata.layers import RiskLayer
from geodata.timezones import hour_of_week, utc_offset_seconds, zone_at
from service.usecases.scoring import level_of_rate


@dataclass(frozen=True)
class CellStats:
    """What the layer knows of a cell it has: counts, last incident, bounds scaled to the asked hour."""

    incident_count: int
    violent_count: int | None
    risk_lower: float | None
    risk_upper: float | None
    last_incident_s: int  # 0: none
    recent_share: float = 0.0  # near-repeat share of the cell's rate (adaptive layers)
    recent_since_s: int = 0  # set when the cell is elevated by recent activity


@dataclass(frozen=True)
class CellRisk:
    cell: int
    lat: float
    lng: float
    time_zone: str
    resolution: int
    risk: float  # at the asked hour, else the weekly mean (incidents per truck-hour)
    level: str
    hour_of_week: int  # -1 without a time
    hourly: np.ndarray  # float64 × 168: the cell's risk at every local hour of week
    layer_version: str
    layer_synthetic: bool
    stats: CellStats | None  # None: the layer has no incident in the cell


def cell_risk(layer: RiskLayer, cell: int, at_s: int | None) -> CellRisk:
    """The risk of ``cell`` (at the layer's resolution) at ``at_s`` (UTC; its local hour), or weekly."""
    lat, lng = h3i.cell_to_latlng(cell)
    zone = zone_at(lat, lng)
    rows, found = layer.index(np.array([cell], dtype=np.uint64))
    row, present = int(rows[0]), bool(found[0])
    hourly = layer.intensity[row].astype(np.float64) if present else np.zeros(168)
    how = -1
    risk = float(hourly.mean())
    if at_s is not None:
        how = int(hour_of_week(np.array([at_s + utc_offset_seconds(zone, at_s)]))[0])
        risk = float(hourly[how])
    scale = risk / float(hourly.mean()) if present and hourly.mean() > 0 else 0.0
    return CellRisk(
        cell=cell,
        lat=lat,
        lng=lng,
        time_zone=zone,
        resolution=layer.resolution,
        risk=risk,
        level=level_of_rate(risk),
        hour_of_week=how,
        hourly=hourly,
        layer_version=layer.version,
        layer_synthetic=layer.synthetic,
        stats=cell_stats(layer, row, scale) if present else None,
    )


def cell_stats(layer: RiskLayer, row: int, scale: float) -> CellStats:
    """Counts, last incident and bounds of a layer row (the weekly bounds times ``scale``)."""
    elevated, share, since = layer.recent_activity(np.array([row]))
    lower = upper = None
    if layer.lower is not None and layer.upper is not None:
        lower, upper = float(layer.lower[row]) * scale, float(layer.upper[row]) * scale
    return CellStats(
        incident_count=int(layer.incident_count[row]),
        violent_count=int(layer.violent_count[row]) if layer.violent_count is not None else None,
        risk_lower=lower,
        risk_upper=upper,
        last_incident_s=int(layer.last_incident_s[row]),
        recent_share=float(share[0]),
        recent_since_s=int(since[0]) if elevated[0] else 0,
    )
