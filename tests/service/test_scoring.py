"""Properties of the scoring model on small layers built from real incident rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from shapely.geometry import LineString

from geodata.border import BorderData
from geodata.ingest import incidents_from_rows
from geodata.layers import BuildParams, build_layer
from geodata.route import from_points
from service.usecases.scoring import (
    HALF_SCORE_INCIDENTS,
    ModelOptions,
    ScoreQuery,
    Stop,
    level_of_score,
    score_from_expected,
    score_route,
)

# A straight 0.5° stretch of the MEX-57D near Querétaro: north-south, ~55 km.
ROUTE = from_points([20.40, 20.90], [-100.20, -100.20])
HOTSPOT = (20.65, -100.20)
MX = ZoneInfo("America/Mexico_City")
EMPTY_BORDER = BorderData(ports=(), boundary=LineString([(-117.1, 32.5), (-97.1, 25.9)]), profiles={})
OPTIONS = ModelOptions()


def incident_rows(n: int, local_hour: int, where=HOTSPOT, start=datetime(2024, 1, 1, tzinfo=MX)):
    """``n`` incidents at ``where``, one a day, at ``local_hour`` local time."""
    rows = []
    for i in range(n):
        when = (start + timedelta(days=i)).replace(hour=local_hour)
        rows.append(
            {
                "id": f"t{i}",
                "occurred_at": when.isoformat(),
                "latitude": str(where[0]),
                "longitude": str(where[1]),
                "type": "hijacking",
                "violent": "true",
                "source": "test",
            }
        )
    return rows


def layer_of(rows, **params):
    return build_layer(incidents_from_rows(rows), BuildParams(**params), name="test")


def departure(local_hour: int) -> int:
    """A Wednesday departure at ``local_hour`` Mexico City time, as UTC seconds."""
    return int(datetime(2024, 6, 5, local_hour, tzinfo=MX).astimezone(UTC).timestamp())


def score(layer, *, speed=60.0, dep=None, stops=()):
    query = ScoreQuery(ROUTE, dep if dep is not None else departure(14), speed, "standard", stops)
    return score_route(query, layer, EMPTY_BORDER, OPTIONS)


def test_score_mapping_is_monotone_and_bounded():
    values = [score_from_expected(e) for e in np.geomspace(1e-9, 1, 50)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert 0 <= values[0] < values[-1] < 100
    assert score_from_expected(HALF_SCORE_INCIDENTS) == pytest.approx(50)
    assert [level_of_score(s) for s in (0, 19.9, 20, 45, 65, 85)] == [
        "low",
        "low",
        "moderate",
        "high",
        "severe",
        "critical",
    ]


def test_more_incidents_give_a_higher_score():
    few = score(layer_of(incident_rows(10, 2)), dep=departure(2))
    many = score(layer_of(incident_rows(100, 2)), dep=departure(2))
    assert many.expected > few.expected > 0
    assert many.score > few.score


def test_longer_exposure_gives_more_expected_incidents():
    layer = layer_of(incident_rows(50, 14))
    fast = score(layer, speed=100.0)
    slow = score(layer, speed=30.0)
    assert slow.expected > fast.expected
    assert slow.duration_h > fast.duration_h


def test_a_stop_in_a_hotspot_adds_exposure():
    layer = layer_of(incident_rows(50, 14))
    plain = score(layer)
    stopped = score(layer, stops=(Stop(*HOTSPOT, dwell_s=3600),))
    assert stopped.expected > plain.expected
    assert stopped.duration_h == pytest.approx(plain.duration_h + 1.0)


def test_night_departure_through_night_hotspot_scores_higher_than_day():
    # incidents at 02:00 local; the hotspot is reached ~15 min after departure
    layer = layer_of(incident_rows(60, 2))
    night = score(layer, dep=departure(2))
    day = score(layer, dep=departure(14))
    assert night.expected > 2 * day.expected
    assert night.score > day.score


def test_same_request_same_answer():
    layer = layer_of(incident_rows(30, 22))
    first, second = score(layer), score(layer)
    assert first == second
    assert layer_of(incident_rows(30, 22)).version == layer.version


def test_a_stop_far_from_the_route_is_rejected():
    from geodata.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as caught:
        score(layer_of(incident_rows(5, 14)), stops=(Stop(20.0, -99.0, 600),))
    assert caught.value.violations[0].field == "stops[0].location"


def test_no_incidents_means_zero_risk_and_no_segments():
    far = layer_of(incident_rows(20, 2, where=(25.0, -104.0)))
    result = score(far)
    assert result.expected == 0.0
    assert result.score == 0.0
    assert result.segments == ()
    assert result.hotspots == ()


def test_reasons_point_at_the_hotspot():
    result = score(layer_of(incident_rows(80, 14)))
    assert result.hotspots, "a route through a hotspot must report it"
    import h3

    top = h3.cell_to_latlng(h3.int_to_str(result.hotspots[0].cell))
    assert abs(top[0] - HOTSPOT[0]) < 0.02 and abs(top[1] - HOTSPOT[1]) < 0.02
    assert result.segments
    segment = max(result.segments, key=lambda s: s.expected)
    hotspot_km = (HOTSPOT[0] - 20.40) * 111.2
    assert segment.start_km - 1 <= hotspot_km <= segment.end_km + 1
    assert sum(s.share for s in result.segments) <= 1.0 + 1e-9


def test_queue_time_at_a_port_counts_as_exposure_on_its_approach():
    import seeds
    from geodata.border import WaitObservation, load_border_data

    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    port = border.port("230404")
    approach = (port.lat - 0.01, port.lng)  # ~1 km before the line, where the queue stands
    # incidents at every hour, so the comparison is about the length of the wait, not the clock
    rows = [row for hour in range(24) for row in incident_rows(5, hour, where=approach)]
    for i, row in enumerate(rows):
        row["id"] = f"q{i}"
    layer = layer_of(rows)
    route = from_points([port.lat - 0.3, port.lat, port.lat + 0.05], [port.lng, port.lng, port.lng])
    depart = departure(14)

    def scored(wait_minutes: float):
        arrival = depart + int(0.3 * 111.2 / 60 * 3600)
        live = WaitObservation("230404", "standard", wait_minutes, arrival)
        data, accepted, _ = border.merged([live], now_s=arrival)
        assert accepted == [live]
        return score_route(ScoreQuery(route, depart, 60.0), layer, data, OPTIONS)

    short, long = scored(10), scored(120)
    assert short.crossings[0].wait_source == long.crossings[0].wait_source == "live"
    assert long.queue_expected == pytest.approx(12 * short.queue_expected, rel=0.35)
    assert short.queue_expected > 0
    assert long.expected - short.expected == pytest.approx(long.queue_expected - short.queue_expected, rel=0.05)
    assert long.duration_h - short.duration_h == pytest.approx(110 / 60)
