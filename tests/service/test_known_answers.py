"""Requests seen before are answered from the cache without decoding their route again
(``ScoreHandler.score``, through the alias): the answers must be exactly those of the full path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import polyline as polyline_codec
import pytest

import seeds
from geodata.errors import InputError
from geodata.incidents import IncidentSet
from geodata.ingest import read_incidents
from geodata.layers import build_layer
from geodata.route import from_file
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server
from service.grpc.servicer import RouteRiskServicer
from service.store.cache import InProcessCache
from tests.helpers.api import DEPARTURE, demo_request


@pytest.fixture(scope="module")
def uncached_stub() -> Iterator[pb_grpc.RouteRiskServiceStub]:
    """A second server on the same data with no cache at all: every answer computed in full."""
    settings = Settings(address="127.0.0.1:0", cache_max_entries=0, log_format="json")
    running = start_server(settings)
    load_data(running, settings)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield pb_grpc.RouteRiskServiceStub(channel)
    running.stop(0)


def variants() -> list[pb.ScoreRouteRequest]:
    """The same trips sent in different ways: references, departures within one hour, lanes, stops."""
    path = from_file(seeds.DEMO_ROUTES["tijuana_otay-mesa"])
    encoded = polyline_codec.encode(list(zip(path.lat.tolist(), path.lng.tolist(), strict=True)), 5)
    by_polyline = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=encoded), reference="load-1")
    by_polyline.departure_time.FromDatetime(DEPARTURE)
    later = pb.ScoreRouteRequest()
    later.CopyFrom(by_polyline)
    later.reference = "load-2"
    later.departure_time.FromDatetime(DEPARTURE + timedelta(minutes=41, seconds=7))
    fast_lane = pb.ScoreRouteRequest()
    fast_lane.CopyFrom(by_polyline)
    fast_lane.crossing_lane = pb.CROSSING_LANE_FAST
    mexico = demo_request("mexico-city_laredo", reference="x", average_speed_kmh=72.0)
    with_stop = demo_request("manzanillo_guadalajara")
    point = with_stop.route.line.points[len(with_stop.route.line.points) // 2]
    stop = with_stop.stops.add(location=pb.LatLng(latitude=point.latitude, longitude=point.longitude))
    stop.dwell.FromSeconds(1800)
    return [by_polyline, later, fast_lane, mexico, with_stop]


def without_cached(response: pb.ScoreRouteResponse) -> pb.ScoreRouteResponse:
    copy = pb.ScoreRouteResponse()
    copy.CopyFrom(response)
    copy.cached = False
    return copy


def test_repeated_requests_get_exactly_the_computed_answer(stub, uncached_stub) -> None:
    for request in variants():
        computed = uncached_stub.ScoreRoute(request, timeout=30)
        answers = [stub.ScoreRoute(request, timeout=30) for _ in range(3)]
        assert answers[1].cached and answers[2].cached
        for answer in answers:
            assert without_cached(answer) == computed
            assert answer.reference == request.reference


def a_minute_later(request: pb.ScoreRouteRequest, reference: str, shift: timedelta) -> pb.ScoreRouteRequest:
    later = pb.ScoreRouteRequest()
    later.CopyFrom(request)
    later.reference = reference
    later.departure_time.FromDatetime(request.departure_time.ToDatetime(UTC) + shift)
    return later


def test_a_request_with_another_reference_or_minute_shares_the_answer(stub) -> None:
    first = variants()[3]  # Mexico City → Laredo: World Trade Bridge open when the truck reaches it
    later = a_minute_later(first, "load-2", timedelta(minutes=41, seconds=7))
    stub.ScoreRoute(first, timeout=30)
    answer = stub.ScoreRoute(later, timeout=30)
    assert not any(c.closed for c in answer.crossings)
    assert answer.cached and answer.reference == "load-2"
    assert answer.departure_time == later.departure_time  # times are the request's own


def test_a_truck_held_at_a_closed_port_is_scored_at_its_own_minute_and_cached_there(stub) -> None:
    """The bucket's answer cannot be shifted when the truck waits for the lanes to open (the
    opening does not move with the departure): the later minute waits 17 min 3 s less, and that
    answer is cached under its own departure (a minute no other test of this module asks for)."""
    first = variants()[0]  # Tijuana, 21:00 PDT: Otay Mesa's commercial lanes are closed on arrival
    later = a_minute_later(first, "load-3", timedelta(minutes=17, seconds=3))
    held = stub.ScoreRoute(first, timeout=30)
    answer = stub.ScoreRoute(later, timeout=30)
    assert held.crossings[0].closed and answer.crossings[0].closed
    assert answer.crossings[0].lanes_open_time == held.crossings[0].lanes_open_time
    shorter = held.crossings[0].expected_wait_minutes - answer.crossings[0].expected_wait_minutes
    assert shorter == pytest.approx(17 + 3 / 60, abs=0.01)
    assert not answer.cached and stub.ScoreRoute(later, timeout=30).cached


def _servicer() -> tuple[RouteRiskServicer, RunningServer]:
    """A servicer of its own over a loaded server's state, called directly to control the clock."""
    settings = Settings(address="127.0.0.1:0", log_format="json")
    running = start_server(settings)
    load_data(running, settings)
    return RouteRiskServicer(running.state, settings, InProcessCache(100)), running


def test_a_known_request_is_checked_again_against_the_clock() -> None:
    """Validity that depends on now (a departure at most a year ahead) is not remembered."""
    servicer, running = _servicer()
    try:
        request = variants()[0]
        departure_s = request.departure_time.seconds
        snapshot = running.state.snapshot
        assert not servicer._score(request, snapshot, departure_s).cached
        assert servicer._score(request, snapshot, departure_s).cached
        with pytest.raises(InputError) as caught:
            servicer._score(request, snapshot, departure_s - 2 * 365 * 86400)
        assert caught.value.violations[0].field == "departure_time"
    finally:
        running.stop(0)


def _half_of_the_seeds() -> IncidentSet:
    incidents, _ = read_incidents([seeds.INCIDENTS_CSV])
    return incidents.select(incidents.lat > 21.0)


def test_a_new_layer_is_never_answered_from_the_old_one() -> None:
    servicer, running = _servicer()
    try:
        request = variants()[3]
        now_s = request.departure_time.seconds
        old = servicer._score(request, running.state.snapshot, now_s)
        assert servicer._score(request, running.state.snapshot, now_s).cached
        other = build_layer(_half_of_the_seeds(), name="north")
        running.state.activate(other)
        new = servicer._score(request, running.state.snapshot, now_s)
        assert not new.cached
        assert new.layer_version == other.version != old.layer_version
        assert new.score != old.score
    finally:
        running.stop(0)


def test_a_port_that_closes_between_the_bucket_and_the_departure_is_not_shifted_open(stub, uncached_stub) -> None:
    """Otay Mesa's commercial lanes close at 20:00 PDT. Leaving Tijuana at 19:55 PDT, the start of
    the hour (19:00) reaches the port while it is open, the truck itself after it closed: the answer
    is the exact departure's (closed, waiting for the 06:00 opening), not the hour's shifted."""
    request = pb.ScoreRouteRequest()
    request.CopyFrom(variants()[0])
    request.departure_time.FromDatetime(datetime(2025, 3, 13, 2, 55, tzinfo=UTC))  # Wed 19:55 PDT: at the port 20:04
    on_the_hour = pb.ScoreRouteRequest()
    on_the_hour.CopyFrom(request)
    on_the_hour.departure_time.FromDatetime(datetime(2025, 3, 13, 2, 0, tzinfo=UTC))
    assert not stub.ScoreRoute(on_the_hour, timeout=30).crossings[0].closed  # the bucket's own answer: open
    answer = stub.ScoreRoute(request, timeout=30)
    assert answer.crossings[0].closed
    opens = answer.crossings[0].lanes_open_time.ToDatetime(UTC)
    assert opens == datetime(2025, 3, 13, 13, 0, tzinfo=UTC)  # Thursday 06:00 PDT
    assert without_cached(answer) == uncached_stub.ScoreRoute(request, timeout=30)
