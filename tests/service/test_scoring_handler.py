"""ScoreHandler: one canonical form per call; a repeated request skips route decoding through its
alias; the result-cache key is the one answers were stored under before the handler existed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb
from service.config import Settings
from service.grpc import convert
from service.grpc.scoring_handler import ScoreHandler
from service.store.cache import InProcessCache
from service.store.serving import ServingState, Snapshot, load_initial_snapshot
from service.usecases.scoring import ModelOptions

DEPARTURE_S = int(datetime(2025, 3, 12, 4, 30, tzinfo=UTC).timestamp())  # half past: bucketed to 04:00


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    loaded = load_initial_snapshot(Settings(log_format="json"))
    state = ServingState()
    state.activate(loaded.layer, loaded.border)
    return state.current()


def _request(reference: str = "load-1") -> pb.ScoreRouteRequest:
    """Mexico City → Querétaro (no border crossing), as a line."""
    request = pb.ScoreRouteRequest(reference=reference)
    for lat, lng in ((19.60, -99.20), (19.90, -99.60), (20.59, -100.39)):
        request.route.line.points.append(pb.LatLng(latitude=lat, longitude=lng))
    request.departure_time.FromSeconds(DEPARTURE_S)
    return request


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the routes decoded."""
    calls: list[int] = []
    original = convert.parse_route

    def counted(route: pb.Route, max_points: int, coverage: np.ndarray | None = None) -> RoutePath:
        calls.append(1)
        return original(route, max_points, coverage)

    monkeypatch.setattr(convert, "parse_route", counted)
    yield calls


def _handler(settings: Settings, cache: InProcessCache) -> ScoreHandler:
    options = ModelOptions(
        resolution=settings.h3_resolution,
        live_max_age_s=int(settings.border_live_max_age_minutes * 60),
        crossing_match_km=settings.crossing_match_km,
    )
    return ScoreHandler(settings, cache, options)


def test_a_repeated_request_is_answered_without_decoding_its_route(snapshot: Snapshot, parses: list[int]) -> None:
    handler = _handler(Settings(log_format="json"), InProcessCache(100))
    first = handler.score(_request("load-1"), snapshot, DEPARTURE_S)
    again = handler.score(_request("load-2"), snapshot, DEPARTURE_S)  # the reference is not identity
    assert not first.cached and again.cached
    assert len(parses) == 1
    assert (first.reference, again.reference) == ("load-1", "load-2")
    again.cached, again.reference = False, "load-1"
    assert again == first  # the response returned as built equals the stored one


def test_without_a_cache_every_request_is_decoded(snapshot: Snapshot, parses: list[int]) -> None:
    handler = _handler(Settings(log_format="json", cache_max_entries=0), InProcessCache(100))
    handler.score(_request(), snapshot, DEPARTURE_S)
    handler.score(_request(), snapshot, DEPARTURE_S)
    assert len(parses) == 2


def test_the_result_cache_key_is_the_documented_one(snapshot: Snapshot) -> None:
    """The key answers are stored under (also in Redis, shared by replicas): version ``score-v3``
    (sealed answers with coverage and port hours; v2 keys are left to replicas of the version
    before), the request without its reference, departure at the start of its hour, defaults resolved."""
    settings = Settings(log_format="json")
    cache = InProcessCache(100)
    handler = _handler(settings, cache)
    handler.score(_request(), snapshot, DEPARTURE_S)
    canonical = _request()
    canonical.ClearField("reference")
    canonical.departure_time.FromSeconds(DEPARTURE_S - DEPARTURE_S % 3600)
    canonical.average_speed_kmh = settings.default_speed_kmh
    canonical.crossing_lane = pb.CROSSING_LANE_STANDARD
    options = ModelOptions(
        resolution=settings.h3_resolution,
        live_max_age_s=int(settings.border_live_max_age_minutes * 60),
        crossing_match_km=settings.crossing_match_km,
    )
    digest = hashlib.sha256(b"score-v3")
    digest.update(f"|{snapshot.layer.version}|-|{options}|".encode())
    digest.update(canonical.SerializeToString(deterministic=True))
    assert cache.get("score:" + digest.hexdigest()) is not None


@pytest.mark.parametrize("reference", ["", "load-7"])
def test_a_cached_answer_at_the_start_of_its_bucket_goes_out_as_stored_bytes(
    snapshot: Snapshot, parses: list[int], reference: str
) -> None:
    """No parse, no serialisation: the stored bytes plus ``cached`` and ``reference``, which parse
    to exactly what :meth:`ScoreHandler.score` answers."""
    handler = _handler(Settings(log_format="json"), InProcessCache(100))
    on_the_hour = _request(reference)
    on_the_hour.departure_time.FromSeconds(DEPARTURE_S - DEPARTURE_S % 3600)
    first = handler.score_wire(on_the_hour, snapshot, DEPARTURE_S)
    assert isinstance(first, pb.ScoreRouteResponse) and not first.cached  # computed: the message as built
    wire = handler.score_wire(on_the_hour, snapshot, DEPARTURE_S)
    assert isinstance(wire, bytes)
    assert len(parses) == 1
    answer = pb.ScoreRouteResponse.FromString(wire)
    assert answer == handler.score(on_the_hour, snapshot, DEPARTURE_S)
    assert answer.cached and answer.reference == reference
    assert answer.departure_time.seconds == DEPARTURE_S - DEPARTURE_S % 3600
    first.cached = True
    first.reference = reference
    assert answer == first


def test_a_cached_answer_with_times_to_shift_is_the_message_score_returns(snapshot: Snapshot) -> None:
    handler = _handler(Settings(log_format="json"), InProcessCache(100))
    handler.score(_request(), snapshot, DEPARTURE_S)
    answer = handler.score_wire(_request("load-9"), snapshot, DEPARTURE_S)
    assert isinstance(answer, pb.ScoreRouteResponse)
    assert answer == handler.score(_request("load-9"), snapshot, DEPARTURE_S)
    assert answer.cached and answer.departure_time.seconds == DEPARTURE_S


@pytest.mark.parametrize("route", ["polyline", "line", "empty", "unset"])
def test_the_canonical_form_is_the_whole_request_serialized_with_its_route_bytes_kept(route: str) -> None:
    """``score_identity`` builds the canonical bytes from the route's bytes (kept for the geometry
    cache) and the rest: they must be exactly the request serialized whole (less its reference),
    or every cache key would change."""
    request = pb.ScoreRouteRequest(reference="load-1", average_speed_kmh=72.5)
    if route == "polyline":
        request.route.encoded_polyline = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    elif route == "line":
        request.route.line.points.add(latitude=19.4, longitude=-99.1)
        request.route.line.points.add(latitude=20.6, longitude=-100.4)
    elif route == "empty":
        request.route.SetInParent()
    stop = request.stops.add()
    stop.location.latitude, stop.location.longitude = 19.9, -99.8
    stop.dwell.FromSeconds(1800)
    request.departure_time.FromSeconds(1_741_770_000)
    identity = convert.score_identity(request, now_s=1_741_700_000, default_speed_kmh=60.0, bucket_s=3600)
    whole = pb.ScoreRouteRequest()
    whole.CopyFrom(request)
    whole.ClearField("reference")
    whole.departure_time.FromSeconds(identity.scored_departure_s)
    whole.crossing_lane = convert.LANE_ENUM[identity.lane]
    assert identity.canonical == whole.SerializeToString(deterministic=True)
    assert identity.route == request.route.SerializeToString(deterministic=True)


def test_an_answer_in_memory_is_given_as_the_full_path_gives_it(snapshot: Snapshot, parses: list[int]) -> None:
    handler = _handler(Settings(log_format="json", departure_bucket_seconds=0), InProcessCache(100))
    assert handler.memorised(_request("load-1"), snapshot, DEPARTURE_S) is None  # never seen
    handler.score(_request("load-1"), snapshot, DEPARTURE_S)
    memorised = handler.memorised(_request("load-2"), snapshot, DEPARTURE_S)
    assert memorised is not None
    assert memorised == handler.score_wire(_request("load-2"), snapshot, DEPARTURE_S)
    assert pb.ScoreRouteResponse.FromString(memorised).cached
    assert len(parses) == 1  # the route was decoded once, by the first call


def test_no_answer_from_memory_when_it_needs_work(snapshot: Snapshot) -> None:
    handler = _handler(Settings(log_format="json"), InProcessCache(100))
    handler.score(_request(), snapshot, DEPARTURE_S)
    # half past the hour is scored at the hour: the answer's times must be shifted (a thread's work)
    assert handler.memorised(_request(), snapshot, DEPARTURE_S) is None
    bad = _request()
    bad.route.line.points[0].latitude = 200.0
    assert handler.memorised(bad, snapshot, DEPARTURE_S) is None  # the full path names the field
    caching_off = _handler(Settings(log_format="json", cache_max_entries=0), InProcessCache(100))
    assert caching_off.memorised(_request(), snapshot, DEPARTURE_S) is None
