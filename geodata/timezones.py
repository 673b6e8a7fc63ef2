"""Local time for cells: the risk layers are indexed by *local* hour of week.

Mexico's zones, the US zones and the border municipalities that keep US
daylight-saving rules (America/Tijuana, America/Ciudad_Juarez, America/Matamoros,
America/Ojinaga...) all come from the tz database; ``tzfpy`` maps a point to its
IANA zone offline. Lookups are made per coarse parent cell (res 5, ~9 km) and
cached, and offsets per zone per distinct UTC hour, so a route of a thousand
cells costs a handful of zone lookups.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import h3
import h3.api.basic_int
import numpy as np
import tzfpy

ZONE_RESOLUTION = 5
# the layers' default resolution: unless told the layer's, an incident's zone is that of its cell at this one
CELL_RESOLUTION = 8
HOURS_PER_WEEK = 168
# 1970-01-01 was a Thursday: 72 hours after Monday 00:00.
_EPOCH_HOUR_OF_WEEK = 72
_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(~(0xF << 52) & 0xFFFFFFFFFFFFFFFF)


def parent_cells(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Vectorised ``cell_to_parent`` for cells at ``resolution`` or finer (H3 bit layout)."""
    unused_digits = np.uint64((1 << (3 * (15 - resolution))) - 1)
    return (cells.astype(np.uint64) & _RES_MASK) | (np.uint64(resolution) << _RES_SHIFT) | unused_digits


@lru_cache(maxsize=65536)
def zone_of_cell(parent: int) -> str:
    """IANA zone at the centre of a (coarse) cell; falls back to a nautical Etc zone at sea."""
    lat, lng = h3.cell_to_latlng(h3.int_to_str(parent))
    return zone_at(lat, lng)


def zone_at(lat: float, lng: float) -> str:
    """IANA zone of a point (``Etc/GMT±N`` by longitude where no land zone applies)."""
    name = tzfpy.get_tz(lng, lat)
    if name:
        return name
    offset = round(lng / 15)
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def utc_offset_seconds(zone: str, epoch_s: int) -> int:
    """UTC offset of ``zone`` at a UTC instant, in seconds."""
    moment = datetime.fromtimestamp(epoch_s, UTC)
    offset = moment.astimezone(_zone(zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def hour_of_week(local_epoch_s: np.ndarray) -> np.ndarray:
    """Hour of week (0 = Monday 00:00) of local wall-clock seconds since the epoch."""
    hours = np.floor_divide(np.asarray(local_epoch_s, dtype=np.int64), 3600)
    return ((hours + _EPOCH_HOUR_OF_WEEK) % HOURS_PER_WEEK).astype(np.int16)


def zones_for_cells(cells: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Distinct zones along ``cells`` and, per cell, the index into that list."""
    parents = parent_cells(cells, ZONE_RESOLUTION)
    # a route's cells come in long runs with one parent: look up one per run
    starts = np.flatnonzero(np.concatenate([[True], parents[1:] != parents[:-1]]))
    run_zone = [zone_of_cell(int(p)) for p in parents[starts].tolist()]
    distinct = sorted(set(run_zone))
    position = {name: i for i, name in enumerate(distinct)}
    per_run = np.array([position[n] for n in run_zone], dtype=np.int32)
    return distinct, np.repeat(per_run, np.diff(np.append(starts, len(parents))))


class LocalClock:
    """Local hours of week along a fixed list of cells: zones are looked up once."""

    def __init__(self, cells: np.ndarray) -> None:
        self._zones, self._zone_index = zones_for_cells(cells)

    def hour_of_week(self, utc_epoch_s: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Local hour of week at cells ``rows`` (all when None) at the given UTC instants."""
        utc = np.asarray(utc_epoch_s, dtype=np.int64)
        zone_index = self._zone_index if rows is None else self._zone_index[rows]
        offsets = np.zeros(len(utc), dtype=np.int64)
        for i in np.unique(zone_index).tolist():
            mask = zone_index == i
            offsets[mask] = _offsets_for(self._zones[i], utc[mask])
        return hour_of_week(utc + offsets)


def local_hour_of_week(cells: np.ndarray, utc_epoch_s: np.ndarray) -> np.ndarray:
    """Local hour of week at each cell at the UTC instant the truck is there."""
    return LocalClock(cells).hour_of_week(utc_epoch_s)


def _offsets_for(zone: str, utc: np.ndarray) -> np.ndarray:
    """Offsets per instant; one lookup per distinct UTC hour (DST changes on the hour).

    No zone changes its offset twice within 30 days, so over a shorter span equal
    offsets at both ends mean one offset throughout.
    """
    first, last = int(utc.min()), int(utc.max())
    start = utc_offset_seconds(zone, first)
    if last - first < 30 * 86400 and start == utc_offset_seconds(zone, last):
        return np.full(len(utc), start, dtype=np.int64)
    hours, inverse = np.unique(utc // 3600, return_inverse=True)
    per_hour = np.array([utc_offset_seconds(zone, int(h) * 3600) for h in hours], dtype=np.int64)
    return per_hour[inverse]


def local_hour_of_week_at(
    lat: np.ndarray, lng: np.ndarray, utc_epoch_s: np.ndarray, resolution: int = CELL_RESOLUTION
) -> np.ndarray:
    """Local hour of week at points (latitude, longitude) at UTC instants.

    The zone is the one scoring uses for the point's cell *at the layer's* ``resolution``
    (the resolution-5 parent of that cell, :func:`zone_of_cell`; the cell itself when it is
    coarser).  H3 parents are not exact containers, so the res-5 parent of a point's res-8
    cell can differ from that of its res-7 or res-9 cell: near a zone boundary, taking the
    res-8 cell for a layer of another resolution would file the incident under an hour that
    no truck in its cell is ever scored at.  With the layer's own cell, an incident and a
    truck in the same cell at the same instant get the same hour, whatever offset the
    incident's timestamp was written with.
    """
    utc = np.asarray(utc_epoch_s, dtype=np.int64)
    if len(utc) == 0:
        return np.zeros(0, dtype=np.int16)
    to_cell = h3.api.basic_int.latlng_to_cell
    lat_list, lng_list = np.asarray(lat, dtype=np.float64).tolist(), np.asarray(lng, dtype=np.float64).tolist()
    cells = np.fromiter(
        (to_cell(a, b, resolution) for a, b in zip(lat_list, lng_list, strict=True)), np.uint64, len(lat_list)
    )
    parents = parent_cells(cells, min(ZONE_RESOLUTION, resolution))
    distinct, inverse = np.unique(parents, return_inverse=True)
    zone_names = [zone_of_cell(int(p)) for p in distinct.tolist()]
    names = sorted(set(zone_names))
    code = {name: i for i, name in enumerate(names)}
    zone_index = np.array([code[n] for n in zone_names], dtype=np.int32)[inverse]
    offsets = np.zeros(len(utc), dtype=np.int64)
    for i, name in enumerate(names):
        mask = zone_index == i
        if mask.any():
            offsets[mask] = _offsets_for(name, utc[mask])
    return hour_of_week(utc + offsets)
