"""Known answers for layer building: one or two incidents, and every rate computed here by hand
from the table of docs/model.md §4 (weight, space, hours, profile, unknown hours, rate), never
by calling the building code. The documented constants are written out, not imported."""

from __future__ import annotations

import math

import h3.api.basic_int as h3i
import numpy as np
import pytest

from geodata.incidents import UNKNOWN_HOUR, IncidentSet
from geodata.layers import build_layer

VIOLENT_WEIGHT = 1.5
HALF_LIFE_DAYS = 365.0
CENTRE_KEEPS = 0.4  # + 0.6 · n / (n + 5)
SPREAD_KAPPA = 5.0
SMOOTHING = (0.25, 0.5, 0.25)
PROFILE_PRIOR = 24.0
UNIFORM_SHARE = 0.05
WEEKS_PER_YEAR = 365.25 / 7  # 52.18
TRUCKS_PER_CELL = 10.0
MIN_PERIOD_DAYS = 365.0

T0 = 1_735_689_600  # 2025-01-01T00:00Z
HOUR = 46  # Tuesday 22:00 local
CELL = h3i.latlng_to_cell(20.6, -100.4, 8)
LAT, LNG = h3i.cell_to_latlng(CELL)
RING = sorted(h3i.grid_ring(CELL, 1))


def incidents(entries: list[tuple[int, int, bool, float]]) -> IncidentSet:
    """Entries of (utc_s, local hour or UNKNOWN_HOUR, violent, share) at the centre of CELL."""
    n = len(entries)
    return IncidentSet(
        ids=np.array([f"i{k}" for k in range(n)], dtype=object),
        lat=np.full(n, LAT),
        lng=np.full(n, LNG),
        utc_s=np.array([e[0] for e in entries], dtype=np.int64),
        local_how=np.array([e[1] for e in entries], dtype=np.int16),
        violent=np.array([e[2] for e in entries], dtype=bool),
        types=np.array(["hijacking"] * n, dtype=object),
        sources=("hand",),
        weight=np.array([e[3] for e in entries], dtype=np.float64),
    )


def kept(n: float) -> float:
    return CENTRE_KEEPS + (1 - CENTRE_KEEPS) * n / (n + SPREAD_KAPPA)


def years(period_days: float) -> float:
    days = max(period_days, MIN_PERIOD_DAYS)
    return HALF_LIFE_DAYS / math.log(2) * (1 - 0.5 ** (days / HALF_LIFE_DAYS)) / 365.25


def smoothed_one_at(hour: int) -> np.ndarray:
    """One count at ``hour``, smoothed circularly."""
    out = np.zeros(168)
    for offset, share in zip((-1, 0, 1), SMOOTHING, strict=True):
        out[(hour + offset) % 168] += share
    return out


def global_profile() -> np.ndarray:
    """All known counts of these layers fall at HOUR: the global shape is that hour, smoothed."""
    return (1 - UNIFORM_SHARE) * smoothed_one_at(HOUR) + UNIFORM_SHARE / 168


def rates(known_at_hour: float, total: float, period_days: float) -> np.ndarray:
    """λ(h) for a cell holding ``known_at_hour`` (decayed, spread) counts at HOUR and ``total`` in all."""
    profile = (known_at_hour * smoothed_one_at(HOUR) + PROFILE_PRIOR * global_profile()) / (
        known_at_hour + PROFILE_PRIOR
    )
    return total * profile / (years(period_days) * WEEKS_PER_YEAR * TRUCKS_PER_CELL)


def row(layer, cell: int) -> np.ndarray:
    index = int(np.searchsorted(layer.cells, np.uint64(cell)))
    assert int(layer.cells[index]) == cell
    return layer.intensity[index].astype(np.float64)


def test_one_incident_keeps_half_in_its_cell_and_spreads_the_rest_over_six_neighbours():
    layer = build_layer(incidents([(T0, HOUR, False, 1.0)]))
    assert sorted(int(c) for c in layer.cells) == sorted([CELL, *RING])
    centre = kept(1.0)  # 0.5
    assert centre == pytest.approx(0.5)
    assert row(layer, CELL) == pytest.approx(rates(centre, centre, 0), rel=1e-6)
    neighbour = (1 - centre) / 6
    for cell in RING:
        assert row(layer, cell) == pytest.approx(rates(neighbour, neighbour, 0), rel=1e-6)
    # the night hour, its neighbours and a quiet hour, spelled out for the centre
    expected = rates(centre, centre, 0)
    assert expected[HOUR] > expected[HOUR + 1] > expected[100] > 0


def test_a_violent_incident_weighs_1_5_and_a_year_old_one_half():
    a_year = 365 * 86400
    layer = build_layer(incidents([(T0, HOUR, True, 1.0), (T0 - a_year, HOUR, False, 1.0)]))
    n = VIOLENT_WEIGHT + 0.5  # the older one, one half-life back
    centre = kept(n) * n
    assert row(layer, CELL) == pytest.approx(rates(centre, centre, 365), rel=1e-6)
    index = int(np.searchsorted(layer.cells, np.uint64(CELL)))
    assert (int(layer.incident_count[index]), int(layer.violent_count[index])) == (2, 1)
    assert int(layer.last_incident_s[index]) == T0


def test_entries_of_unknown_hour_add_to_the_total_and_follow_the_learned_profile():
    layer = build_layer(incidents([(T0, HOUR, False, 1.0), (T0, UNKNOWN_HOUR, False, 0.5)]))
    share = kept(1.5)
    known, total = share * 1.0, share * 1.5
    assert row(layer, CELL) == pytest.approx(rates(known, total, 0), rel=1e-6)
