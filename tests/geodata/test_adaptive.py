"""The adaptive model: what it fits on known processes, its fallbacks, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from geodata.adaptive import build_fitted_layer, fit
from geodata.incidents import UNKNOWN_HOUR, IncidentSet, InvalidIncidentFileError
from geodata.ingest import read_point_incidents
from geodata.layers import build_layer

DAY = 86400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
PLACES = [(19.34 + 0.05 * i, -98.93 - 0.07 * i) for i in range(12)]


def incident_set(lat, lng, utc_s) -> IncidentSet:
    n = len(utc_s)
    return IncidentSet(
        ids=np.array([f"i{i}" for i in range(n)], dtype=object),
        lat=np.asarray(lat, dtype=np.float64),
        lng=np.asarray(lng, dtype=np.float64),
        utc_s=np.asarray(utc_s, dtype=np.int64),
        local_how=(np.arange(n) % 168).astype(np.int16),
        violent=np.zeros(n, dtype=bool),
        types=np.array(["hijacking"] * n, dtype=object),
        sources=("test",),
    )


def stationary(rng, days=900, rate=0.03):
    lat, lng, t = [], [], []
    for a, b in PLACES:
        k = rng.poisson(rate * days)
        t += rng.uniform(T0, T0 + days * DAY, k).astype(np.int64).tolist()
        lat += [a] * k
        lng += [b] * k
    return lat, lng, t


def with_repeats(rng, lat, lng, t, per_incident=1.5, mean_days=3.0):
    """Each incident followed by Poisson(per_incident) repeats in the same place within days."""
    out_lat, out_lng, out_t = list(lat), list(lng), list(t)
    for a, b, when in zip(lat, lng, t, strict=True):
        for _ in range(rng.poisson(per_incident)):
            out_lat.append(a)
            out_lng.append(b)
            out_t.append(int(when + rng.exponential(mean_days) * DAY))
    return out_lat, out_lng, out_t


def test_near_repeats_are_found_where_they_exist_and_not_where_they_do_not() -> None:
    rng = np.random.default_rng(3)
    # few immigrant incidents at few places: most of the signal is in the repeats
    plain = fit(incident_set(*stationary(rng, rate=0.04)), horizon_days=7)
    bursty = fit(incident_set(*with_repeats(rng, *stationary(rng, rate=0.01), per_incident=3.0)), horizon_days=7)
    assert plain.fallback is None and bursty.fallback is None
    # over a week ahead, much of the bursty process's forecast is near-repeat, little of the plain one's
    assert bursty.shares()["near_repeat"] > 0.3, bursty.describe()
    assert plain.shares()["near_repeat"] < 0.1, plain.describe()
    for report in (plain, bursty):
        p = report.params
        assert min(p.decay_weights_cell + p.decay_weights_ring + p.decay_weights_wide) >= 0
        assert p.floor_per_cell_day >= 0 and np.isfinite(report.loglik_per_incident)


def test_a_rising_hotspot_outranks_a_fading_one_with_the_same_history() -> None:
    rng = np.random.default_rng(5)
    lat, lng, t = stationary(rng, rate=0.02)
    (ra, rb), (fa, fb) = (20.9, -101.0), (21.3, -101.8)
    # the same number of incidents: one place only in the last 150 days, the other only before
    rising = rng.uniform(T0 + 750 * DAY, T0 + 900 * DAY, 40).astype(np.int64).tolist()
    fading = rng.uniform(T0, T0 + 600 * DAY, 40).astype(np.int64).tolist()
    incidents = incident_set(lat + [ra] * 40 + [fa] * 40, lng + [rb] * 40 + [fb] * 40, t + rising + fading)
    layer, report = build_fitted_layer(incidents, name="trend")
    rates = layer.weekly_mean
    import h3.api.basic_int as h3i

    up = np.searchsorted(layer.cells, h3i.latlng_to_cell(ra, rb, 8))
    down = np.searchsorted(layer.cells, h3i.latlng_to_cell(fa, fb, 8))
    assert rates[up] > 3 * rates[down], report.describe()
    # the fixed 365-day recipe sees them as much closer
    fixed = build_layer(incidents, name="fixed")
    ratio_fixed = (
        fixed.weekly_mean[np.searchsorted(fixed.cells, layer.cells[up])]
        / fixed.weekly_mean[np.searchsorted(fixed.cells, layer.cells[down])]
    )
    assert rates[up] / rates[down] > ratio_fixed


def test_the_fit_is_recorded_and_deterministic() -> None:
    rng = np.random.default_rng(9)
    incidents = incident_set(*stationary(rng))
    a, report = build_fitted_layer(incidents, name="det")
    b, _ = build_fitted_layer(incidents, name="det")
    assert a.version == b.version
    assert a.metadata["fit"]["half_lives"] == list(report.params.decay_half_lives)
    assert list(a.metadata["params"]["decay_weights_ring"]) == list(report.params.decay_weights_ring)
    assert "time kernels" in report.describe() and "rolling origin" in report.describe()
    assert np.all(np.isfinite(a.intensity)) and np.all(a.intensity > 0)
    assert np.all(a.lower <= a.weekly_mean * (1 + 1e-5)) and np.all(a.weekly_mean <= a.upper * (1 + 1e-5))


def test_the_ranking_breaks_ties_of_the_likelihood_and_the_trend_settings_are_fitted(monkeypatch) -> None:
    from geodata import adaptive

    rng = np.random.default_rng(5)
    lat, lng, t = stationary(rng, rate=0.02)
    rising = rng.uniform(T0 + 750 * DAY, T0 + 900 * DAY, 40).astype(np.int64).tolist()
    incidents = incident_set(lat + [20.9] * 40, lng + [-101.0] * 40, t + rising)
    layer, chosen = build_fitted_layer(incidents, name="select")
    recorded = layer.metadata["fit"]
    assert recorded["trend_half_lives"][0] in adaptive.TREND_SHORT_HALF_LIVES
    assert recorded["trend_prior_per_day"] in adaptive.TREND_PRIORS
    assert layer.metadata["params"]["trend_prior_per_day"] == chosen.params.trend_prior_per_day
    assert 0.0 < chosen.validation_hit_rate <= 1.0
    assert "validation hit rate" in chosen.describe()
    # with no tolerance the likelihood alone decides: the ranking on the validation windows is never better
    monkeypatch.setattr(adaptive, "LIKELIHOOD_TOLERANCE", 0.0)
    pure = fit(incidents)
    assert chosen.validation_hit_rate >= pure.validation_hit_rate
    # and a tolerance so wide that every candidate qualifies picks the best ranking of all
    monkeypatch.setattr(adaptive, "LIKELIHOOD_TOLERANCE", 1e12)
    widest = fit(incidents)
    assert widest.validation_hit_rate >= chosen.validation_hit_rate
    # on this data some candidate the likelihood rejects ranks better: the criterion is really used
    assert widest.validation_hit_rate > pure.validation_hit_rate


def test_unknown_parts_and_bad_horizons_are_refused() -> None:
    incidents = incident_set(*stationary(np.random.default_rng(1)))
    with pytest.raises(ValueError, match="unknown model parts"):
        fit(incidents, without=("nothing",))
    with pytest.raises(ValueError, match="horizon_days"):
        fit(incidents, horizon_days=0)


# --- bad input: a documented fallback or a clear error, never a crash or NaN ---------------------


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("one incident", "1 incidents, fewer than"),
        ("all at one instant", "0 days of data"),
        ("no incidents", "no incidents"),
    ],
)
def test_too_little_data_falls_back_to_the_fixed_mix_without_nan(case: str, why: str) -> None:
    if case == "one incident":
        incidents = incident_set([19.5], [-99.2], [T0])
    elif case == "all at one instant":
        incidents = incident_set([p[0] for p in PLACES] * 5, [p[1] for p in PLACES] * 5, [T0] * 60)
    else:
        incidents = incident_set([], [], [])
    report = fit(incidents)
    assert why in (report.fallback or "")
    assert report.params.decay_half_lives == (365.0,)
    if len(incidents):
        layer, _ = build_fitted_layer(incidents, name="fallback")
        assert np.all(np.isfinite(layer.intensity)) and layer.intensity.max() > 0
        assert np.all(np.isfinite(layer.lower)) and np.all(np.isfinite(layer.upper))


def test_unknown_hour_entries_only_still_build_a_finite_layer() -> None:
    rng = np.random.default_rng(2)
    incidents = incident_set(*stationary(rng))
    incidents = IncidentSet(**{**incidents.__dict__, "local_how": np.full(len(incidents), UNKNOWN_HOUR, np.int16)})
    layer, _ = build_fitted_layer(incidents, name="unknown")
    assert np.all(np.isfinite(layer.intensity)) and layer.intensity.sum() > 0


def write(tmp_path, name: str, rows: list[str]):
    path = tmp_path / name
    path.write_text("id,occurred_at,latitude,longitude,type,violent,source\n" + "\n".join(rows) + "\n")
    return path


def test_incidents_far_in_the_future_are_rejected_with_their_row(tmp_path) -> None:
    path = write(
        tmp_path,
        "future.csv",
        [
            "a,2024-03-05T22:15:00-06:00,25.68,-100.31,hijacking,true,x",
            "b,2125-01-01T00:00:00Z,25.68,-100.31,hijacking,true,x",
        ],
    )
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(path, now_s=T0 + 400 * DAY)
    assert [v.field for v in caught.value.violations] == ["future.csv:3:occurred_at"]
    assert "in the future" in caught.value.violations[0].description


def test_duplicate_ids_with_different_contents_are_rejected(tmp_path) -> None:
    path = write(
        tmp_path,
        "dup.csv",
        [
            "a,2024-03-05T22:15:00-06:00,25.68,-100.31,hijacking,true,x",
            "a,2024-04-05T10:00:00-06:00,19.4,-99.1,attempt,false,y",
        ],
    )
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(path, now_s=T0 + 400 * DAY)
    assert [v.field for v in caught.value.violations] == ["dup.csv:3:id"]
    assert "duplicate id 'a' (first on row 2)" in caught.value.violations[0].description


def test_recent_activity_says_which_cells_are_elevated_and_since_when() -> None:
    rng = np.random.default_rng(4)
    # a process with near repeats, so that the model learns them
    lat, lng, t = with_repeats(rng, *stationary(rng, rate=0.01), per_incident=3.0)
    end = max(t)
    # a burst at a fresh place in the last 10 days; the first of it is the "since"
    burst = sorted(rng.uniform(end - 10 * DAY, end, 8).astype(np.int64).tolist())
    (ba, bb) = (21.5, -102.2)
    incidents = incident_set(lat + [ba] * 8, lng + [bb] * 8, t + burst)
    layer, report = build_fitted_layer(incidents, horizon_days=14, name="recent")
    import h3.api.basic_int as h3i

    hot = int(np.searchsorted(layer.cells, h3i.latlng_to_cell(ba, bb, 8)))
    ring = [int(np.searchsorted(layer.cells, c)) for c in h3i.grid_ring(h3i.latlng_to_cell(ba, bb, 8), 1)]
    old = int(np.searchsorted(layer.cells, h3i.latlng_to_cell(*PLACES[0], 8)))
    elevated, share, since = layer.recent_activity(np.array([hot, *ring, old]))
    assert report.shares()["near_repeat"] > 0, report.describe()
    assert elevated[0] and since[0] == burst[0] and share[0] >= 0.25
    assert since[1] in (0, burst[0])  # a neighbour is at most elevated by the same burst
    # a place with a steady history: its recent incidents are a small part of its rate
    assert share[-1] < share[0]
    fixed = build_layer(incidents, name="fixed")
    assert not fixed.recent_activity(np.array([0]))[0].any()  # the fixed recipe says nothing about it
