"""Known answers for the score: a tiny hand-made layer and border, short routes, and every
expected value computed here by hand from the formulas of docs/model.md (§2, §5, §6, §7),
never by calling the scoring code.

The world of these tests:

- a corridor of H3 cells (resolution 8) along the meridian 100.2° W, from 20.33° N to 22.5° N,
  all in America/Mexico_City (UTC−6 all year since 2022), with the SAME rate in every cell at
  a given local hour of week, so the driving part of E is rate × hours, whatever cells the
  chain holds; the rates differ by hour, so a wrong local hour gives a wrong answer;
- a hand-made boundary along the parallel 20.47° N (north of it counts as the US side) with one
  port on the meridian, whose default wait profile is 150 min at the arrival hour and 10 min at
  every other hour;
- a few cells away from the corridor whose rates sit just either side of every level threshold.

Each answer is checked through the use case (``service.usecases.scoring.score_route``) and through a
real gRPC server holding the same layer and border data. The documented constants are written
out below, not imported: changing one in the code must make a test here fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import grpc
import h3.api.basic_int as h3i
import numpy as np
import pytest
import tzfpy
from shapely.geometry import LineString

from geodata.border import BorderData, Port, WaitObservation
from geodata.cells import route_to_cells
from geodata.errors import InputError
from geodata.layers import RiskLayer, with_version
from geodata.route import from_points
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, start_server
from service.usecases.scoring import ModelOptions, ScoreQuery, Stop, score_route

# ------------------------------------------------------------------ docs/model.md, written out

HALF_SCORE_INCIDENTS = 1e-4  # score = 100 · E / (E + 1e-4)
STOP_RISK_MULTIPLIER = 2.0  # stops count twice
REFERENCE_TRIP_HOURS = 10.0  # a cell's or segment's level: a 10-hour trip at its rate
THRESHOLDS = (20.0, 40.0, 60.0, 80.0)  # LOW < 20 ≤ MODERATE < 40 ≤ HIGH < 60 ≤ SEVERE < 80 ≤ CRITICAL
LEVELS = ("low", "moderate", "high", "severe", "critical")
SEGMENT_WINDOW_KM = 10.0
MAX_SEGMENTS = 10
MAX_HOTSPOTS = 10
QUEUE_APPROACH_KM = 3.0
SOUTHBOUND_WAIT_MINUTES = 20.0
STOP_MAX_OFFSET_KM = 5.0
CROSSING_MATCH_KM = 15.0  # a crossing is matched to a port within 15 km of the crossing segment
FLIP_KM = 5.0  # side flips at one port closer than this are one net passage
MAX_TRIP_HOURS = 366 * 24.0
DEFAULT_SPEED_KMH = 60.0
# distances are great-circle on the sphere of H3's authalic radius (geodata/geometry.py)
EARTH_RADIUS_KM = 6371.007180918475

REL = 1e-9  # every answer is exact arithmetic on float32 rates: only rounding differs

# ------------------------------------------------------------------ the hand-made world

LNG = -100.2
MEXICO_CITY = timezone(timedelta(hours=-6))  # America/Mexico_City, no DST since 2022
# Tuesday 2025-03-11 22:00 local (2025-03-12T04:00Z): local hour of week 1·24 + 22 = 46
DEPART = datetime(2025, 3, 11, 22, 0, tzinfo=MEXICO_CITY)


def hour_of_week(local: datetime) -> int:
    """0 = Monday 00:00 local."""
    return local.weekday() * 24 + local.hour


H = hour_of_week(DEPART)
assert H == 46


def f32(value: float) -> float:
    """The rate as the layer stores it (float32), so the hand computation uses the same number."""
    return float(np.float32(value))


R_DRIVE = f32(2e-5)  # at hours H and H + 2: every driving hour of the main routes
R_MID = f32(7e-5)  # at hour H + 1 only: mid-stop and mid-queue of the main routes
R_OTHER = f32(1e-6)  # any other hour: a wrong local hour shows at once

BORDER_LAT = 20.47
PORT = Port(
    port_number="999901",
    port_name="Hand Made",
    crossing_name="Test Bridge",
    mx_city="Test City",
    mx_state="QRO",
    us_state="TX",
    lat=BORDER_LAT,
    lng=LNG,
    time_zone="America/Mexico_City",
    commercial_lanes=4,
    fast_lanes=1,
)
NORTHBOUND_WAIT_MINUTES = 150.0  # the profile at the arrival hour H
OTHER_WAIT_MINUTES = 10.0


def score_of(expected: float) -> float:
    return 100.0 * expected / (expected + HALF_SCORE_INCIDENTS)


def level_of_score(score: float) -> str:
    return LEVELS[sum(score >= t for t in THRESHOLDS)]


def level_of_rate(rate: float) -> str:
    return level_of_score(score_of(rate * REFERENCE_TRIP_HOURS))


def rate_for_reference_score(score: float) -> float:
    """The hourly rate whose 10-hour reference trip scores ``score`` (the score formula inverted)."""
    return HALF_SCORE_INCIDENTS * score / (100.0 - score) / REFERENCE_TRIP_HOURS


def meridian_km(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_KM * math.radians(abs(lat2 - lat1))


def north_of(lat: float, km: float) -> float:
    return lat + math.degrees(km / EARTH_RADIUS_KM)


def corridor_cells() -> np.ndarray:
    """Every cell a line along the meridian can pass between 20.33° N and 22.5° N (and its ring)."""
    seen: set[int] = set()
    for lat in np.arange(20.33, 22.5, 0.002):
        seen.update(h3i.grid_disk(h3i.latlng_to_cell(float(lat), LNG, 8), 1))
    return np.array(sorted(seen), dtype=np.uint64)


CORRIDOR = corridor_cells()


def profile(by_hour: dict[int, float], other: float) -> np.ndarray:
    values = np.full(168, other, dtype=np.float32)
    for hour, rate in by_hour.items():
        values[hour % 168] = rate
    return values


# cells 80 km west of the corridor, each at a rate just below or just above a threshold
EDGE_SCORES = [t + d for t in THRESHOLDS for d in (-0.05, 0.05)]
EDGE_CELLS = [h3i.latlng_to_cell(21.0, -101.0 + 0.05 * k, 8) for k in range(len(EDGE_SCORES))]
# and one whose rate at hour H differs from the rest of the week
PEAK_CELL = h3i.latlng_to_cell(21.0, -101.5, 8)
PEAK_RATE = f32(rate_for_reference_score(70.0))
QUIET_RATE = f32(rate_for_reference_score(10.0))


def make_layer(name: str, corridor: np.ndarray, extra: dict[int, np.ndarray] | None = None) -> RiskLayer:
    """A layer of the corridor cells, all with the hour profile ``corridor``, plus ``extra`` cells."""
    rows = dict.fromkeys(CORRIDOR.tolist(), corridor)
    rows.update(extra or {})
    cells = np.array(sorted(rows), dtype=np.uint64)
    n = len(cells)
    layer = RiskLayer(
        resolution=8,
        cells=cells,
        intensity=np.stack([rows[int(c)] for c in cells]).astype(np.float32),
        incident_count=np.zeros(n, dtype=np.int32),
        last_incident_s=np.zeros(n, dtype=np.int64),
        metadata={"name": name, "synthetic": False},
    )
    return with_version(layer)


def main_layer() -> RiskLayer:
    extra = {
        cell: profile({}, f32(rate_for_reference_score(s))) for cell, s in zip(EDGE_CELLS, EDGE_SCORES, strict=True)
    }
    extra[PEAK_CELL] = profile({H: PEAK_RATE}, QUIET_RATE)
    return make_layer("known-main", profile({H: R_DRIVE, H + 1: R_MID, H + 2: R_DRIVE}, R_OTHER), extra)


def make_border(observations: dict | None = None) -> BorderData:
    waits = profile({H: NORTHBOUND_WAIT_MINUTES}, OTHER_WAIT_MINUTES).astype(np.float64)
    border = BorderData(
        ports=(PORT,),
        boundary=LineString([(-101.6, BORDER_LAT), (-98.8, BORDER_LAT)]),
        profiles={(PORT.port_number, "standard"): waits},
        version="border-known-values",
    )
    return border.with_observations(observations) if observations else border


@pytest.fixture(scope="module")
def layer() -> RiskLayer:
    return main_layer()


@pytest.fixture(scope="module")
def border() -> BorderData:
    return make_border()


def test_the_corridor_keeps_one_time_zone():
    """Precondition of every hand computation here: one zone, UTC−6 throughout."""
    for lat in np.arange(20.2, 22.6, 0.05):
        for lng in (LNG - 0.15, LNG, LNG + 0.15):  # zones are looked up at ~9 km parents' centres
            assert tzfpy.get_tz(lng, float(lat)) == "America/Mexico_City"


# ------------------------------------------------------------------ both ways in


@dataclass
class Segment:
    start_km: float
    end_km: float
    expected: float
    share: float
    level: str
    exposure_h: float


@dataclass
class Passage:
    wait_minutes: float
    source: str
    direction: str
    expected: float
    arrival_s: float


@dataclass
class Answer:
    expected: float
    probability: float
    score: float
    level: str
    queue_expected: float
    distance_km: float
    duration_h: float
    exposed_h: float
    segments: list[Segment]
    crossings: list[Passage]
    hotspot_rates: list[float]
    hotspot_expected: list[float]


Scorer = Callable[..., Answer]


def _level_name(value: int) -> str:
    return pb.RiskLevel.Name(value).removeprefix("RISK_LEVEL_").lower()


def _hours(duration) -> float:
    return (duration.seconds + duration.nanos / 1e9) / 3600.0


def by_use_case(
    layer: RiskLayer,
    border: BorderData,
    points: list[tuple[float, float]],
    departure: datetime = DEPART,
    speed_kmh: float | None = None,
    stops: tuple[tuple[float, float, float], ...] = (),
) -> Answer:
    """``speed_kmh`` None: the documented default (60 km/h), which the use case is handed."""
    path = from_points([p[0] for p in points], [p[1] for p in points])
    query = ScoreQuery(
        path=path,
        departure_s=int(departure.timestamp()),
        speed_kmh=DEFAULT_SPEED_KMH if speed_kmh is None else speed_kmh,
        stops=tuple(Stop(lat, lng, dwell_s) for lat, lng, dwell_s in stops),
    )
    result = score_route(query, layer, border, ModelOptions())
    return Answer(
        expected=result.expected,
        probability=result.probability,
        score=result.score,
        level=result.level,
        queue_expected=result.queue_expected,
        distance_km=result.distance_km,
        duration_h=result.duration_h,
        exposed_h=result.exposed_h,
        segments=[Segment(s.start_km, s.end_km, s.expected, s.share, s.level, s.exposure_h) for s in result.segments],
        crossings=[
            Passage(c.wait_minutes, c.wait_source, c.crossing.direction, c.expected, c.arrival_s)
            for c in result.crossings
        ],
        hotspot_rates=[h.rate for h in result.hotspots],
        hotspot_expected=[h.expected for h in result.hotspots],
    )


def score_request(
    points: list[tuple[float, float]],
    departure: datetime = DEPART,
    speed_kmh: float | None = None,
    stops: tuple[tuple[float, float, float], ...] = (),
) -> pb.ScoreRouteRequest:
    """``speed_kmh`` None: unset, the server's default applies."""
    request = pb.ScoreRouteRequest(average_speed_kmh=speed_kmh or 0.0)
    request.route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in points)
    request.departure_time.FromDatetime(departure.astimezone(UTC))
    for lat, lng, dwell_s in stops:
        stop = request.stops.add(location=pb.LatLng(latitude=lat, longitude=lng))
        stop.dwell.FromTimedelta(timedelta(seconds=dwell_s))
    return request


def by_grpc(server: tuple[RunningServer, pb_grpc.RouteRiskServiceStub]) -> Scorer:
    running, stub = server

    def score(layer: RiskLayer, border: BorderData, points, departure=DEPART, speed_kmh=None, stops=()):
        running.state.activate(layer, border)
        response = stub.ScoreRoute(score_request(points, departure, speed_kmh, stops), timeout=60)
        assert response.layer_version == layer.version
        return Answer(
            expected=response.expected_incidents,
            probability=response.incident_probability,
            score=response.score,
            level=_level_name(response.level),
            queue_expected=response.queue_expected_incidents,
            distance_km=response.distance_km,
            duration_h=_hours(response.duration),
            exposed_h=_hours(response.exposed_duration),
            segments=[
                Segment(s.start_km, s.end_km, s.expected_incidents, s.share, _level_name(s.level), _hours(s.exposure))
                for s in response.segments
            ],
            crossings=[
                Passage(
                    c.expected_wait_minutes,
                    pb.WaitSource.Name(c.wait_source).removeprefix("WAIT_SOURCE_").lower(),
                    pb.CrossingDirection.Name(c.direction).removeprefix("CROSSING_DIRECTION_").lower(),
                    c.expected_incidents,
                    c.arrival_time.seconds + c.arrival_time.nanos / 1e9,
                )
                for c in response.crossings
            ],
            hotspot_rates=[h.risk for h in response.hotspots],
            hotspot_expected=[h.expected_incidents for h in response.hotspots],
        )

    return score


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[RunningServer, pb_grpc.RouteRiskServiceStub]]:
    """A real server (no seed data loaded): each test activates its own layer and border data."""
    running = start_server(Settings(address="127.0.0.1:0", log_format="json"))
    running.state.activate(main_layer(), make_border())
    running.set_serving(True)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield running, pb_grpc.RouteRiskServiceStub(channel)
    running.stop(0)


@pytest.fixture(params=["use case", "gRPC"])
def score(request: pytest.FixtureRequest) -> Scorer:
    if request.param == "use case":
        return by_use_case
    return by_grpc(request.getfixturevalue("server"))


def assert_totals(answer: Answer, expected: float, duration_h: float) -> None:
    """E, P, the score and the level of the trip from E (§5)."""
    assert answer.expected == pytest.approx(expected, rel=REL)
    assert answer.probability == pytest.approx(1.0 - math.exp(-expected), rel=REL)
    # the API rounds the score to 6 decimals
    assert answer.score == pytest.approx(score_of(expected), rel=REL, abs=1e-6)
    assert answer.level == level_of_score(score_of(expected))
    assert answer.duration_h == pytest.approx(duration_h, rel=REL)


def assert_one_segment(answer: Answer, length_km: float, expected: float, hours: float) -> None:
    """Every 10 km window at MODERATE density or above: one segment, the whole route (§6)."""
    assert len(answer.segments) == 1
    segment = answer.segments[0]
    assert segment.start_km == pytest.approx(0.0, abs=1e-9)
    assert segment.end_km == pytest.approx(length_km, rel=REL)
    assert segment.expected == pytest.approx(expected, rel=REL)
    assert segment.share == pytest.approx(1.0, rel=REL)
    assert segment.exposure_h == pytest.approx(hours, rel=REL)
    assert segment.level == level_of_rate(expected / hours)


# ------------------------------------------------------------------ the main routes

SOUTH = [(20.35, LNG), (20.45, LNG)]  # 11.12 km, all south of the line
ACROSS = [(20.40, LNG), (20.50, LNG)]  # 11.12 km, crosses the line 7.78 km in
L = meridian_km(20.35, 20.45)
T = L / DEFAULT_SPEED_KMH


def test_the_hand_made_rates_sit_where_the_tests_need_them():
    """Driving rates are HIGH or above (so their hours count as exposed), MODERATE ≥ 2.5e-6."""
    assert rate_for_reference_score(THRESHOLDS[1]) <= R_DRIVE < R_MID
    assert rate_for_reference_score(THRESHOLDS[0]) > R_OTHER
    assert level_of_rate(R_DRIVE) == "severe" and level_of_rate(R_MID) == "critical"
    assert T < 0.2  # the whole drive stays within the hour of departure (22:00–22:11)


def test_straight_drive(score, layer, border):
    """E = rate(hour of mid-passage) × driving hours; nothing else."""
    answer = score(layer, border, SOUTH)
    expected = R_DRIVE * T
    assert answer.distance_km == pytest.approx(L, rel=REL)
    assert_totals(answer, expected, T)
    assert answer.level == "low"  # score 3.8
    assert answer.queue_expected == 0.0 and answer.crossings == []
    assert answer.exposed_h == pytest.approx(T, rel=REL)  # every cell at HIGH or above
    assert_one_segment(answer, L, expected, T)
    assert answer.segments[0].level == "severe"
    assert 0 < len(answer.hotspot_rates) <= MAX_HOTSPOTS
    assert answer.hotspot_rates == pytest.approx([R_DRIVE] * len(answer.hotspot_rates), rel=REL)
    assert sum(answer.hotspot_expected) <= expected * (1 + REL)


DWELL_H = 2.5  # the stop runs from 22:11 (hour H) over its middle at 23:26 (H + 1) to 00:41 (H + 2)


def test_a_stop_at_the_end_counts_twice_at_the_hour_of_its_middle(score, layer, border):
    answer = score(layer, border, SOUTH, stops=((20.45, LNG, DWELL_H * 3600),))
    drive = R_DRIVE * T
    stop = R_MID * DWELL_H * STOP_RISK_MULTIPLIER
    expected = drive + stop
    assert_totals(answer, expected, T + DWELL_H)
    assert answer.level == "severe"  # score 78.1
    assert answer.exposed_h == pytest.approx(T + DWELL_H, rel=REL)
    assert_one_segment(answer, L, expected, T + DWELL_H)
    assert answer.segments[0].level == "critical"


def stop_east_of_the_end(km: float) -> tuple[float, float, float]:
    """A stop ``km`` due east of the route's end (the end is its nearest point on the route)."""
    lng = LNG + math.degrees(km / (EARTH_RADIUS_KM * math.cos(math.radians(20.45))))
    return (20.45, lng, DWELL_H * 3600)


def test_a_stop_up_to_5_km_off_the_route_is_placed_on_it(score, layer, border):
    answer = score(layer, border, SOUTH, stops=(stop_east_of_the_end(STOP_MAX_OFFSET_KM - 0.1),))
    assert answer.expected == pytest.approx(R_DRIVE * T + R_MID * DWELL_H * STOP_RISK_MULTIPLIER, rel=REL)


def test_a_stop_more_than_5_km_off_the_route_is_rejected(layer, border, server):
    stops = (stop_east_of_the_end(STOP_MAX_OFFSET_KM + 0.1),)
    with pytest.raises(InputError) as caught:
        by_use_case(layer, border, SOUTH, stops=stops)
    assert [v.field for v in caught.value.violations] == ["stops[0].location"]
    running, stub = server
    running.state.activate(layer, border)
    with pytest.raises(grpc.RpcError) as rpc:
        stub.ScoreRoute(score_request(SOUTH, stops=stops), timeout=30)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_trip_may_last_366_days_and_no_longer(layer, border):
    """Driving plus stops up to 366 × 24 h is scored; a minute more is the caller's mistake."""
    longest_dwell_s = (MAX_TRIP_HOURS - T) * 3600
    by_use_case(layer, border, SOUTH, stops=((20.45, LNG, longest_dwell_s - 60),))
    with pytest.raises(InputError) as caught:
        by_use_case(layer, border, SOUTH, stops=((20.45, LNG, longest_dwell_s + 60),))
    assert [v.field for v in caught.value.violations] == ["stops"]


def test_northbound_crossing_waits_by_the_profile_and_queues_on_the_approach(score, layer, border):
    """The wait is the profile at the arrival hour (150 min); the queue's expected incidents are
    wait hours × the approach's rate at the hour of mid-queue (H + 1); driving after the queue
    is at H + 2, at the same rate as before it."""
    answer = score(layer, border, ACROSS)
    wait_h = NORTHBOUND_WAIT_MINUTES / 60
    queue = R_MID * wait_h
    expected = R_DRIVE * T + queue
    assert_totals(answer, expected, T + wait_h)
    assert answer.level == "severe"  # score 64.4
    assert answer.queue_expected == pytest.approx(queue, rel=REL)
    assert answer.exposed_h == pytest.approx(T + wait_h, rel=REL)
    (passage,) = answer.crossings
    assert (passage.wait_minutes, passage.source, passage.direction) == (150.0, "default", "northbound")
    assert passage.expected == pytest.approx(queue, rel=REL)
    # the queue is in the cell where the route crosses: entered at most one cell (~1.1 km) before the line
    at_line_s = DEPART.timestamp() + meridian_km(20.40, BORDER_LAT) / DEFAULT_SPEED_KMH * 3600
    assert at_line_s - 1.1 / DEFAULT_SPEED_KMH * 3600 <= passage.arrival_s <= at_line_s
    assert_one_segment(answer, L, expected, T + wait_h)
    assert answer.segments[0].level == "critical"


def test_southbound_crossing_waits_a_flat_20_minutes(score, layer, border):
    answer = score(layer, border, ACROSS[::-1])
    wait_h = SOUTHBOUND_WAIT_MINUTES / 60
    expected = R_DRIVE * (T + wait_h)  # queue and drive all within 22:00–22:32 (hour H)
    assert_totals(answer, expected, T + wait_h)
    (passage,) = answer.crossings
    assert (passage.wait_minutes, passage.source, passage.direction) == (20.0, "default", "southbound")
    assert passage.expected == pytest.approx(R_DRIVE * wait_h, rel=REL)
    assert answer.queue_expected == pytest.approx(R_DRIVE * wait_h, rel=REL)


@pytest.mark.parametrize(("before_departure_min", "live"), [(50, True), (55, False)])
def test_a_live_wait_is_used_within_60_minutes_of_the_arrival(score, layer, before_departure_min, live):
    """The truck reaches the crossing cell 6.7–7.8 min after 22:00: a reading taken 50 min before
    22:00 is 56.7–57.8 min old then (fresh), one taken 55 min before is 61.7–62.8 min old (stale)."""
    observed = DEPART - timedelta(minutes=before_departure_min)
    reading = WaitObservation(PORT.port_number, "standard", 40.0, int(observed.timestamp()))
    border = make_border({(PORT.port_number, "standard"): reading})
    answer = score(layer, border, ACROSS)
    if live:
        # 40 min from ~22:07: queue and the rest of the drive all within hour H
        wait_h, queue = 40 / 60, R_DRIVE * 40 / 60
        assert (answer.crossings[0].wait_minutes, answer.crossings[0].source) == (40.0, "live")
    else:
        wait_h, queue = NORTHBOUND_WAIT_MINUTES / 60, R_MID * NORTHBOUND_WAIT_MINUTES / 60
        assert (answer.crossings[0].wait_minutes, answer.crossings[0].source) == (150.0, "default")
    assert_totals(answer, R_DRIVE * T + queue, T + wait_h)


def test_the_queue_takes_the_mean_rate_of_the_last_3_km(layer, border):
    """Each cell of the route gets its own rate at the hour of mid-queue; the queue's expected
    incidents are the wait × the plain mean over the cells entered in the 3 km before the cell
    where the route crosses, and that cell."""
    path = from_points([p[0] for p in ACROSS], [p[1] for p in ACROSS])
    chain = route_to_cells(path, 8)
    line_km = meridian_km(20.40, BORDER_LAT)
    row = int(np.searchsorted(chain.start_km, line_km, side="right")) - 1
    queue_rates = {int(cell): f32(R_MID * (1 + i)) for i, cell in enumerate(chain.cells.tolist())}
    extra = {cell: profile({H: R_DRIVE, H + 1: rate, H + 2: R_DRIVE}, R_OTHER) for cell, rate in queue_rates.items()}
    per_cell = make_layer("known-approach", profile({H: R_DRIVE, H + 1: R_MID, H + 2: R_DRIVE}, R_OTHER), extra)
    approach = [
        queue_rates[int(chain.cells[i])]
        for i in range(len(chain.cells))
        if chain.start_km[row] - QUEUE_APPROACH_KM <= chain.start_km[i] <= chain.start_km[row]
    ]
    assert 3 <= len(approach) < row + 1  # the approach holds several cells, not the whole way from the start
    wait_h = NORTHBOUND_WAIT_MINUTES / 60
    queue = wait_h * sum(approach) / len(approach)
    answer = by_use_case(per_cell, border, ACROSS)
    assert answer.queue_expected == pytest.approx(queue, rel=REL)
    assert answer.expected == pytest.approx(R_DRIVE * T + queue, rel=REL)


# ------------------------------------------------------------------ segments, hotspots, cell levels

SLOW_KMH = 10.0  # 10 km an hour: each 10 km window is driven in one clock hour, starting on the hour


def test_when_no_window_reaches_moderate_the_riskiest_window_is_the_segment(score, border):
    """25 km at 10 km/h from Thursday 10:00: the first 10 km (hour 82) at 2e-6, the rest at 1e-6,
    all below MODERATE (2.5e-6): the one segment is the first 10 km window."""
    start = DEPART + timedelta(days=2, hours=-12)  # Thursday 10:00 local
    hour = hour_of_week(start)
    first, rest = f32(2e-6), f32(1e-6)
    layer = make_layer("known-window", profile({hour: first}, rest))
    length = 25.0
    answer = score(layer, border, [(20.50, LNG), (north_of(20.50, length), LNG)], departure=start, speed_kmh=SLOW_KMH)
    (segment,) = answer.segments
    # the window holds the cells whose middle lies in its first 10 km: it ends within half a cell of 10 km
    assert segment.start_km == pytest.approx(0.0, abs=1e-9)
    assert segment.end_km == pytest.approx(SEGMENT_WINDOW_KM, abs=0.6)
    end = segment.end_km
    assert segment.exposure_h == pytest.approx(end / SLOW_KMH, rel=REL)
    assert segment.expected == pytest.approx(first * end / SLOW_KMH, rel=REL)
    total = first * end / SLOW_KMH + rest * (length - end) / SLOW_KMH
    assert answer.expected == pytest.approx(total, rel=REL)
    assert segment.share == pytest.approx(first * end / SLOW_KMH / total, rel=REL)
    assert segment.level == level_of_rate(first) == "low"


def test_at_most_10_segments_the_riskiest_in_travel_order(score, border):
    """210 km at 10 km/h, one clock hour per 10 km: the 11 even hours are at MODERATE or above
    (rising from 4e-6 to 1.4e-5), the odd hours below: 11 runs of windows, the first (least risky)
    is dropped."""
    start = DEPART + timedelta(days=1, hours=2)  # Thursday 00:00 local
    hour = hour_of_week(start)
    hot = [f32((4 + k) * 1e-6) for k in range(11)]
    layer = make_layer("known-segments", profile({hour + 2 * k: rate for k, rate in enumerate(hot)}, f32(1e-6)))
    answer = score(layer, border, [(20.50, LNG), (north_of(20.50, 210.0), LNG)], departure=start, speed_kmh=SLOW_KMH)
    assert len(answer.segments) == MAX_SEGMENTS
    for k, segment in enumerate(answer.segments, start=1):  # run 0 (km 0–10) is the one dropped
        assert segment.start_km == pytest.approx(20.0 * k, abs=0.6)
        assert segment.end_km == pytest.approx(20.0 * k + SEGMENT_WINDOW_KM, abs=0.6)
        hours = (segment.end_km - segment.start_km) / SLOW_KMH
        assert segment.exposure_h == pytest.approx(hours, rel=REL)
        assert segment.expected == pytest.approx(hot[k] * hours, rel=REL)
        assert segment.level == level_of_rate(hot[k])
    assert [s.level for s in answer.segments][:2] == ["moderate", "moderate"]
    assert answer.segments[-1].level == "high"
    assert len(answer.hotspot_rates) == MAX_HOTSPOTS
    assert answer.hotspot_expected == sorted(answer.hotspot_expected, reverse=True)


def test_cell_levels_are_those_of_a_10_hour_trip(server, layer, border):
    """GetCellRisk: a cell's level is the level of 10 hours at its rate; rates 0.05 score points
    either side of each threshold land either side of it."""
    running, stub = server
    running.state.activate(layer, border)
    for cell, reference_score in zip(EDGE_CELLS, EDGE_SCORES, strict=True):
        answer = stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3i.int_to_str(cell)), timeout=10)
        rate = f32(rate_for_reference_score(reference_score))
        assert answer.risk == pytest.approx(rate, rel=1e-6)
        assert _level_name(answer.level) == level_of_score(reference_score), reference_score
    assert [level_of_score(s) for s in EDGE_SCORES] == [
        "low", "moderate", "moderate", "high", "high", "severe", "severe", "critical"
    ]  # fmt: skip


def test_a_cells_level_at_a_time_is_that_of_its_rate_at_the_local_hour(server, layer, border):
    running, stub = server
    running.state.activate(layer, border)
    request = pb.GetCellRiskRequest(cell=h3i.int_to_str(PEAK_CELL))
    request.time.FromDatetime(DEPART.astimezone(UTC))
    at_peak = stub.GetCellRisk(request, timeout=10)
    assert at_peak.hour_of_week == H
    assert at_peak.risk == pytest.approx(PEAK_RATE, rel=1e-6)
    assert _level_name(at_peak.level) == level_of_rate(PEAK_RATE) == "severe"
    weekly = stub.GetCellRisk(pb.GetCellRiskRequest(cell=h3i.int_to_str(PEAK_CELL)), timeout=10)
    mean = (PEAK_RATE + 167 * QUIET_RATE) / 168
    assert weekly.risk == pytest.approx(mean, rel=1e-6)
    assert _level_name(weekly.level) == level_of_rate(mean) == "low"


def test_a_departure_is_scored_at_the_start_of_its_hour(server, layer, border):
    """Through the API, 22:40 is scored as 22:00 (then the times move to 22:40): the stop's
    middle stays at hour H + 1. Scored at 22:40 itself, it would fall at 00:06 (H + 2)."""
    running, stub = server
    running.state.activate(layer, border)
    stops = ((20.45, LNG, DWELL_H * 3600),)
    late = stub.ScoreRoute(score_request(SOUTH, DEPART + timedelta(minutes=40), stops=stops), timeout=30)
    assert late.expected_incidents == pytest.approx(R_DRIVE * T + R_MID * DWELL_H * STOP_RISK_MULTIPLIER, rel=REL)
    assert late.departure_time.ToDatetime(tzinfo=UTC) == DEPART + timedelta(minutes=40)
    exact = by_use_case(layer, border, SOUTH, DEPART + timedelta(minutes=40), stops=stops)
    assert exact.expected == pytest.approx(R_DRIVE * T + R_DRIVE * DWELL_H * STOP_RISK_MULTIPLIER, rel=REL)


def east_of(km: float, lat: float = BORDER_LAT) -> float:
    return LNG + math.degrees(km / (EARTH_RADIUS_KM * math.cos(math.radians(lat))))


@pytest.mark.parametrize(("km", "matched"), [(CROSSING_MATCH_KM - 0.3, True), (CROSSING_MATCH_KM + 0.3, False)])
def test_a_crossing_is_matched_to_a_port_within_15_km(score, layer, border, km, matched):
    """A route crossing the line ``km`` east of the port on a 220 m segment: the port is ``km`` from
    the segment (and at most 0.11 km farther from its ends), so 14.7 km matches and 15.3 km does not."""
    lng = east_of(km)
    points = [(20.40, lng), (BORDER_LAT - 0.001, lng), (BORDER_LAT + 0.001, lng), (20.50, lng)]
    answer = score(layer, border, points)
    assert [(c.direction, c.wait_minutes) for c in answer.crossings] == ([("northbound", 150.0)] if matched else [])


@pytest.mark.parametrize(("along_km", "passages"), [(1.0, []), (2.0, ["northbound", "southbound"])])
def test_side_flips_less_than_5_km_apart_are_one_net_passage(score, layer, border, along_km, passages):
    """North over the line (3.3 km from 20.45° N to 20.48° N), ``along_km`` east along it, back
    south: the flips are 3.3 + ``along_km`` km apart along the route."""
    lng = east_of(along_km, 20.48)
    points = [(20.45, LNG), (20.48, LNG), (20.48, lng), (20.45, lng)]
    assert meridian_km(20.45, 20.48) + 1.0 < FLIP_KM < meridian_km(20.45, 20.48) + 2.0
    answer = score(layer, border, points)
    assert [c.direction for c in answer.crossings] == passages


def test_a_long_crossing_segment_is_matched_like_the_same_line_drawn_densely(layer, border):
    lng = east_of(40.0)
    sparse = by_use_case(layer, border, [(BORDER_LAT - 0.9, lng), (BORDER_LAT + 0.9, lng)])
    dense = by_use_case(
        layer,
        border,
        [(BORDER_LAT - 0.9, lng), (BORDER_LAT - 0.001, lng), (BORDER_LAT + 0.001, lng), (BORDER_LAT + 0.9, lng)],
    )
    assert dense.crossings == []
    assert sparse.crossings == dense.crossings


def test_a_port_closed_at_arrival_holds_the_truck_until_it_opens_then_queues(score, layer):
    """Commercial lanes 00:00–22:00: the truck reaches the line at ~22:07 (hour H), waits until
    00:00, then queues the profile's 10 min of hour H + 2; the whole wait is queue exposure at the
    hour of mid-queue (~23:08, H + 1), and driving resumes at H + 2 (R_DRIVE again)."""
    from dataclasses import replace

    from geodata.port_hours import weekly

    closes_at_22 = replace(PORT, hours=weekly((0, 22 * 60), (0, 22 * 60), (0, 22 * 60), "hand made"))
    border = replace(make_border(), ports=(closes_at_22,), version="border-known-closed")
    answer = score(layer, border, ACROSS)
    (passage,) = answer.crossings
    midnight_s = (DEPART + timedelta(hours=2)).timestamp()
    wait_minutes = (midnight_s - math.floor(passage.arrival_s)) / 60 + OTHER_WAIT_MINUTES
    assert 120 < wait_minutes < 125
    assert passage.wait_minutes == pytest.approx(wait_minutes, rel=REL)
    queue = R_MID * wait_minutes / 60
    assert passage.expected == pytest.approx(queue, rel=REL)
    assert_totals(answer, R_DRIVE * T + queue, T + wait_minutes / 60)
