"""Ports keep their hours, through a real server: a truck reaching a port while its commercial
lanes are closed waits for the opening (then queues), and every answer that follows from the
wait (duration, arrival, queue exposure, departure rankings) counts it."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import seeds
from geodata.border import load_border_data
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import assert_invalid, line_request
from tests.helpers.border import BORDER, laredo_waits
from tests.helpers.servers import with_stubs

# Nuevo Laredo → World Trade Bridge (commercial lanes 07:00–24:00 on weekdays, CBP "7 am-Midnight")
WTB_APPROACH = [(27.565, -99.57), (27.59, -99.542), (27.5973, -99.5371), (27.5994, -99.5333), (27.605, -99.52)]
NIGHT = datetime(2025, 3, 12, 7, 0, tzinfo=UTC)  # Wednesday 02:00 CDT
OPENING = datetime(2025, 3, 12, 12, 0, tzinfo=UTC)  # Wednesday 07:00 CDT
MIDDAY = datetime(2025, 3, 12, 16, 0, tzinfo=UTC)  # Wednesday 11:00 CDT
UNKNOWN = "unknown: treated as open 24 h"


@pytest.fixture(scope="module")
def running_server():
    with with_stubs() as servers:
        yield servers


@pytest.fixture()
def hours_server(running_server):
    """The module's server on the seed border data (hours from the seeds, no live readings)."""
    running_server[0].state.activate(border=BORDER)
    return running_server


def _seconds(stamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def test_a_truck_at_world_trade_bridge_at_night_waits_for_the_opening(hours_server):
    _, stub, _ = hours_server
    response = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(NIGHT)), timeout=60)
    [crossing] = response.crossings
    assert crossing.closed
    assert crossing.lanes_open_time.ToDatetime(UTC) == OPENING
    queue_at_opening = laredo_waits(stub, OPENING)[pb.CROSSING_LANE_STANDARD].expected_wait_minutes
    assert queue_at_opening > 0
    # the wait is counted from the arrival's whole second
    until_open = (OPENING.timestamp() - math.floor(_seconds(crossing.arrival_time))) / 60
    assert 4 * 60 < until_open < 5 * 60
    assert crossing.expected_wait_minutes == pytest.approx(until_open + queue_at_opening, abs=1e-6)
    # the duration, the arrival and the queue exposure all count the night at the bridge
    drive_s = response.distance_km / 60.0 * 3600
    assert response.duration.ToTimedelta().total_seconds() == pytest.approx(
        drive_s + crossing.expected_wait_minutes * 60, abs=1
    )
    assert response.arrival_time.ToDatetime(UTC) > OPENING
    assert response.queue_expected_incidents == pytest.approx(crossing.expected_incidents)
    assert response.exposed_duration.ToTimedelta() >= timedelta(minutes=crossing.expected_wait_minutes)
    assert crossing.hours_source.startswith("CBP BWT bwtnew 2022-06-29")


def test_a_truck_at_world_trade_bridge_at_midday_is_not_held(hours_server):
    _, stub, _ = hours_server
    [crossing] = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(MIDDAY)), timeout=60).crossings
    assert not crossing.closed
    assert not crossing.HasField("lanes_open_time")
    assert crossing.expected_wait_minutes < 120


def test_crossings_list_the_hours_and_closed_lanes(hours_server):
    _, stub, _ = hours_server
    request = pb.ListBorderCrossingsRequest(port_number="230404")
    request.time.FromDatetime(NIGHT)
    [port] = stub.ListBorderCrossings(request, timeout=10).crossings
    assert port.commercial_hours == "Mon-Fri 07:00-24:00; Sat 07:00-16:00; Sun 07:00-24:00"
    assert port.hours_source.startswith("CBP")
    for wait in port.lane_waits:
        assert wait.closed and wait.lanes_open_time.ToDatetime(UTC) == OPENING
        assert wait.expected_wait_minutes > 5 * 60  # 02:00 → 07:00, then the queue


def test_departures_no_longer_favour_overnight_arrivals(hours_server):
    _, stub, _ = hours_server
    trip = line_request(WTB_APPROACH, departure_time=_stamp(datetime(2025, 3, 12, 5, 0, tzinfo=UTC)))
    request = pb.SuggestDeparturesRequest(trip=trip, risk_weight=0.5)
    request.window.FromTimedelta(timedelta(hours=23))
    departures = stub.SuggestDepartures(request, timeout=120).departures
    closed = [d for d in departures if d.result.crossings[0].closed]
    opened = [d for d in departures if not d.result.crossings[0].closed]
    assert len(closed) == 7 and opened  # 00:00..06:00 CDT arrive while the lanes are closed
    assert not departures[0].result.crossings[0].closed
    assert max(d.rank for d in opened) < min(d.rank for d in closed)
    for d in closed:
        assert d.result.crossings[0].expected_wait_minutes > 55


def test_a_live_lanes_closed_reading_holds_the_truck_while_it_holds(hours_server):
    _, stub, admin = hours_server
    observed = datetime(2025, 3, 12, 15, 50, tzinfo=UTC)  # 10:50 CDT: open by the hours
    reading = admin_pb.BorderObservation(
        port_number="230404", lane="standard", operational_status="Lanes Closed", closed=True
    )
    reading.observed_at.FromDatetime(observed)
    admin.LoadBorderObservations(admin_pb.LoadBorderObservationsRequest(observations=[reading]), timeout=10)
    response = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(MIDDAY)), timeout=60)
    [crossing] = response.crossings
    assert crossing.closed and crossing.wait_source == pb.WAIT_SOURCE_LIVE
    holds_until = observed + timedelta(minutes=60)  # ROUTERISK_BORDER_LIVE_MAX_AGE_MINUTES
    assert crossing.lanes_open_time.ToDatetime(UTC) == holds_until
    until_open = (holds_until.timestamp() - _seconds(crossing.arrival_time)) / 60
    queue = laredo_waits(stub, holds_until + timedelta(hours=2))  # the reading no longer holds there
    assert crossing.expected_wait_minutes >= until_open
    assert crossing.expected_wait_minutes < until_open + 2 * queue[pb.CROSSING_LANE_STANDARD].expected_wait_minutes + 60


def test_the_feed_s_hours_replace_the_hours_held(hours_server):
    _, stub, admin = hours_server
    reading = admin_pb.BorderObservation(port_number="230404", lane="standard", wait_minutes=20, hours="10 am-6 pm")
    reading.observed_at.FromDatetime(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    before = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
    reply = admin.LoadBorderObservations(admin_pb.LoadBorderObservationsRequest(observations=[reading]), timeout=10)
    assert reply.border_data_version != before
    [port] = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(port_number="230404"), timeout=10).crossings
    assert port.commercial_hours == "Mon-Fri 10:00-18:00; Sat 10:00-16:00; Sun 10:00-18:00"
    assert port.hours_source.startswith("CBP feed 2025-03-12")
    # 02:00 CDT now waits until 10:00
    [crossing] = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(NIGHT)), timeout=60).crossings
    assert crossing.lanes_open_time.ToDatetime(UTC) == datetime(2025, 3, 12, 15, 0, tzinfo=UTC)


def test_hours_that_do_not_parse_are_refused_and_change_nothing(hours_server):
    _, stub, admin = hours_server
    before = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version
    reading = admin_pb.BorderObservation(port_number="230404", lane="standard", wait_minutes=5, hours="sometimes")
    reading.observed_at.FromDatetime(datetime(2025, 3, 12, 15, 0, tzinfo=UTC))
    request = admin_pb.LoadBorderObservationsRequest(observations=[reading])
    assert_invalid(admin.LoadBorderObservations, request, "observations[0].hours", "sometimes")
    assert stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(), timeout=10).border_data_version == before


def test_a_port_without_known_hours_is_open_all_day_and_says_so(running_server):
    running, stub, _ = running_server
    running.state.activate(border=load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON))
    try:
        [crossing] = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(NIGHT)), timeout=60).crossings
        assert not crossing.closed
        assert crossing.hours_source == UNKNOWN
        [port] = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(port_number="230404"), timeout=10).crossings
        assert (port.commercial_hours, port.hours_source) == ("24 h", UNKNOWN)
    finally:
        running.state.activate(border=BORDER)


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def test_a_departure_inside_its_hour_bucket_waits_for_the_same_opening(hours_server):
    """Departures are scored at the start of their hour and the answer shifted; a wait until a
    fixed opening does not shift, so 02:20 and 02:00 both reach the lanes at 07:00, not 07:20."""
    _, stub, _ = hours_server
    at_two = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(NIGHT)), timeout=60)
    later = NIGHT + timedelta(minutes=20)
    at_twenty_past = stub.ScoreRoute(line_request(WTB_APPROACH, departure_time=_stamp(later)), timeout=60)
    first, second = at_two.crossings[0], at_twenty_past.crossings[0]
    assert first.lanes_open_time == second.lanes_open_time
    assert second.expected_wait_minutes == pytest.approx(first.expected_wait_minutes - 20, abs=1 / 60)
    assert at_twenty_past.arrival_time.ToDatetime(UTC) == at_two.arrival_time.ToDatetime(UTC)


def test_a_monitored_truck_approaching_a_closed_port_is_told_when_it_opens(hours_server):
    _, stub, _ = hours_server
    start = NIGHT.timestamp()
    positions = [
        pb.MonitorTripRequest(trip_id="night-at-wtb", speed_kmh=40.0, location=pb.LatLng(latitude=lat, longitude=lng))
        for lat, lng in WTB_APPROACH[:3]
    ]
    for i, message in enumerate(positions):
        message.time.FromSeconds(int(start) + 60 * i)
    alerts = [a for r in stub.MonitorTrip(iter(positions), timeout=60) for a in r.alerts]
    [approach] = [a for a in alerts if a.kind == pb.TRIP_ALERT_KIND_APPROACHING_CROSSING]
    assert approach.port_number == "230404" and approach.crossing_closed
    assert "CLOSED until 2025-03-12 12:00 UTC" in approach.reason
    queue = laredo_waits(stub, OPENING)[pb.CROSSING_LANE_STANDARD].expected_wait_minutes
    until_open = (OPENING.timestamp() - approach.time.seconds) / 60
    assert approach.expected_wait_minutes == pytest.approx(until_open + queue, abs=1e-6)
