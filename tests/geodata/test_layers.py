"""Layer build, bounds, artifacts and the versioned store."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pytest

from geodata.incidents import UNKNOWN_HOUR
from geodata.ingest import incidents_from_rows
from geodata.layer_store import EXPORT_COLUMNS, LayerNotFoundError, LayerStore, export_csv
from geodata.layers import BuildParams, build_layer, load_layer, poisson_interval, save_layer

MX = ZoneInfo("America/Mexico_City")
SPOT = (19.60, -99.20)


def rows(n, hour=2, where=SPOT, violent=True, start=datetime(2024, 1, 1, tzinfo=MX), prefix="i"):
    out = []
    for i in range(n):
        when = (start + timedelta(days=i)).replace(hour=hour)
        out.append(
            {
                "id": f"{prefix}{i}",
                "occurred_at": when.isoformat(),
                "latitude": str(where[0]),
                "longitude": str(where[1]),
                "type": "hijacking",
                "violent": "true" if violent else "false",
                "source": "test",
            }
        )
    return out


def cell_int(lat, lng, res=8):
    return h3.str_to_int(h3.latlng_to_cell(lat, lng, res))


def test_intensity_units_and_spread():
    params = BuildParams(spread_kappa=0.0)
    layer = build_layer(incidents_from_rows(rows(365, violent=False)), params, name="t")
    own = cell_int(*SPOT)
    row = int(np.searchsorted(layer.cells, own))
    assert layer.cells[row] == own
    assert len(layer.cells) == 7  # the cell and its ring
    # 365 incidents over one year, no decay-free: the decayed rate is about 365·w/years
    total = layer.intensity.astype(np.float64).sum() * (365.25 / 7) * params.trucks_per_cell
    assert total == pytest.approx(365, rel=0.35)
    share = layer.intensity[row].sum() / layer.intensity.sum()
    assert share == pytest.approx(params.center_weight, rel=1e-5)
    assert layer.incident_count[row] == 365 and layer.incident_count.sum() == 365
    assert layer.violent_count[row] == 0


def test_well_observed_cells_keep_more_of_their_risk():
    def centre_share(n):
        layer = build_layer(incidents_from_rows(rows(n)), BuildParams(spread_kappa=5.0), name="t")
        row = int(np.searchsorted(layer.cells, cell_int(*SPOT)))
        return layer.intensity[row].sum() / layer.intensity.sum()

    assert 0.4 < centre_share(2) < centre_share(20) < centre_share(200) < 1.0


def test_with_roads_risk_spreads_only_along_them():
    own = cell_int(*SPOT)
    road = np.array(sorted(h3.str_to_int(c) for c in h3.grid_ring(h3.int_to_str(own), 1)))[:2]
    layer = build_layer(incidents_from_rows(rows(50)), road_cells=road, name="t")
    assert set(layer.cells.tolist()) == {own, *road.tolist()}


def test_hour_profile_follows_the_data_and_keeps_a_floor():
    layer = build_layer(incidents_from_rows(rows(200, hour=3)), name="t")
    row = int(np.searchsorted(layer.cells, cell_int(*SPOT)))
    profile = layer.intensity[row]
    night = [h for h in range(168) if h % 24 == 3]
    assert all(profile[h] == profile.max() or profile[h] > 10 * profile[(h + 12) % 168] for h in night)
    assert profile.min() > 0


def test_unknown_hour_entries_follow_the_learned_profile():
    points = incidents_from_rows(rows(100, hour=3))
    fixed = BuildParams(spread_kappa=0.0)
    known_only = build_layer(points, fixed, name="t")
    from dataclasses import replace

    aggregated = replace(points, local_how=np.full(len(points), UNKNOWN_HOUR, dtype=np.int16))
    from geodata.incidents import concatenate

    both = build_layer(
        concatenate([points, replace(aggregated, ids=np.array([f"a{i}" for i in range(100)]))]), fixed, name="t"
    )
    row = int(np.searchsorted(both.cells, cell_int(*SPOT)))
    ratio = both.intensity[row] / known_only.intensity[row]
    assert ratio == pytest.approx(np.full(168, 2.0), rel=1e-4)


def test_bounds_are_wide_for_few_incidents_and_tight_for_many():
    few = build_layer(incidents_from_rows(rows(3)), name="t")
    many = build_layer(incidents_from_rows(rows(300)), name="t")
    for layer in (few, many):
        row = int(np.searchsorted(layer.cells, cell_int(*SPOT)))
        mean = layer.weekly_mean[row]
        assert layer.lower[row] < mean < layer.upper[row]
    few_row = int(np.searchsorted(few.cells, cell_int(*SPOT)))
    many_row = int(np.searchsorted(many.cells, cell_int(*SPOT)))
    few_width = few.upper[few_row] / few.lower[few_row]
    many_width = many.upper[many_row] / many.lower[many_row]
    assert few_width > 3 * many_width


def test_poisson_interval_matches_known_values():
    low, high = poisson_interval(np.array([0.0, 1.0, 10.0, 100.0]))
    # Garwood 90 % limits: n=0 → (0, 3.00); n=1 → (0.051, 4.74); n=10 → (5.43, 17.0); n=100 → (84.1, 118.0)
    assert low[0] == 0.0
    assert 0.03 < low[1] <= 0.0513  # Wilson–Hilferty is rough at n = 1, and errs wide
    assert low[2:] == pytest.approx([5.43, 84.1], rel=0.02)
    assert high == pytest.approx([3.00, 4.74, 17.0, 118.0], rel=0.02)


def test_more_recent_incidents_weigh_more():
    old = build_layer(
        incidents_from_rows(
            rows(50, start=datetime(2021, 1, 1, tzinfo=MX))
            + rows(1, prefix="late", start=datetime(2024, 1, 1, tzinfo=MX))
        ),
        name="t",
    )
    recent = build_layer(
        incidents_from_rows(
            rows(50, start=datetime(2023, 11, 1, tzinfo=MX))
            + rows(1, prefix="late", start=datetime(2024, 1, 1, tzinfo=MX))
        ),
        name="t",
    )
    row = int(np.searchsorted(old.cells, cell_int(*SPOT)))
    assert recent.weekly_mean[row] > old.weekly_mean[row]


def test_version_is_content_derived():
    a = build_layer(incidents_from_rows(rows(20)), name="t")
    b = build_layer(incidents_from_rows(rows(20)), name="t")
    c = build_layer(incidents_from_rows(rows(21)), name="t")
    assert a.version == b.version != c.version
    assert a.version.startswith("t-")


def test_save_and_load_round_trip(tmp_path):
    layer = build_layer(incidents_from_rows(rows(40)), name="t")
    save_layer(layer, tmp_path / "x")
    loaded = load_layer(tmp_path / "x")
    assert loaded.version == layer.version
    for name in ("cells", "intensity", "incident_count", "violent_count", "last_incident_s", "lower", "upper"):
        assert np.array_equal(getattr(loaded, name), getattr(layer, name))
    with pytest.raises(ValueError):
        loaded.intensity[0, 0] = 1.0  # memory-mapped read-only


def test_store_write_list_activate_export(tmp_path):
    store = LayerStore(tmp_path)
    first = build_layer(incidents_from_rows(rows(30)), name="t")
    second = build_layer(incidents_from_rows(rows(60)), name="t", synthetic=True)
    store.write(first, {"inputs": []})
    store.write(second)
    store.write(second)  # idempotent
    assert store.versions() == sorted([first.version, second.version])
    assert store.active_version() is None
    store.activate(second.version)
    assert store.active_version() == second.version
    infos = {i.version: i for i in store.list()}
    assert infos[second.version].active and infos[second.version].synthetic
    assert not infos[first.version].active
    assert json.dumps([i.to_dict() for i in infos.values()])
    out = tmp_path / "export.csv"
    assert export_csv(store.load(second.version), out) == len(second.cells)
    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == EXPORT_COLUMNS
    hottest = max(table, key=lambda r: float(r["intensity_per_hour"]))
    assert hottest["h3_cell"] == h3.latlng_to_cell(*SPOT, 8)
    assert int(hottest["incidents"]) == 60 and hottest["last_incident_at"].endswith("Z")
    assert float(hottest["lower"]) < float(hottest["intensity_per_hour"]) < float(hottest["upper"])


def test_activating_a_missing_or_broken_layer_changes_nothing(tmp_path):
    store = LayerStore(tmp_path)
    good = build_layer(incidents_from_rows(rows(30)), name="t")
    bad = build_layer(incidents_from_rows(rows(31)), name="t")
    store.write(good)
    store.activate(good.version)
    with pytest.raises(LayerNotFoundError):
        store.activate("t-000000000000")
    folder = store.write(bad)
    (folder / "intensity.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError):
        store.activate(bad.version)
    assert store.active_version() == good.version
    assert not [p for p in (tmp_path / "layers").iterdir() if p.name.startswith(".tmp-")]


def test_hourly_export_is_long_format_with_every_hour(tmp_path):
    from geodata.layer_store import HOURLY_COLUMNS, export_hourly_csv

    layer = build_layer(incidents_from_rows(rows(40, hour=23)), name="t")
    count = export_hourly_csv(layer, tmp_path / "hourly.csv")
    assert count == len(layer.cells) * 168
    with open(tmp_path / "hourly.csv", newline="") as handle:
        got = list(csv.DictReader(handle))
    assert tuple(got[0]) == HOURLY_COLUMNS
    first = [r for r in got if r["h3_cell"] == h3.int_to_str(int(layer.cells[0]))]
    assert [int(r["hour_of_week"]) for r in first] == list(range(168))
    np.testing.assert_allclose([float(r["intensity_per_hour"]) for r in first], layer.intensity[0], rtol=1e-6)
    # the incidents are at 23:00 Mexico City time on Mondays..Sundays: hour 23 of some day is the peak
    peak = int(np.argmax(layer.intensity[np.argmax(layer.weekly_mean)]))
    assert peak % 24 == 23
