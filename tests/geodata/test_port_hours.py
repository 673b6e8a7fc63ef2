"""Port hours: parsing CBP's text and the seeds, and when closed lanes open."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import seeds
from geodata.border import WaitObservation, load_border_data
from geodata.port_hours import UNKNOWN_HOURS, from_cbp, parse_cbp, parse_span, weekly

BORDER = load_border_data(
    seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON, port_hours_csv=seeds.PORT_HOURS_CSV
)
CDT = "America/Chicago"


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("7 am-Midnight", (420, 1440)),
        ("6 am-10 pm", (360, 1320)),
        ("24 hrs/day", (0, 1440)),
        ("9 am-8 pm", (540, 1200)),
        ("10:30 am-Noon", (630, 720)),
    ],
)
def test_cbp_hours_parse(text, span):
    assert parse_cbp(text) == span


@pytest.mark.parametrize("text", ["sometimes", "7 am", "8 pm-7 am", ""])
def test_cbp_hours_that_do_not_parse_raise(text):
    with pytest.raises(ValueError):
        parse_cbp(text)


def test_spans_of_the_seed_file_parse():
    assert parse_span("07:00-24:00") == (420, 1440)
    assert parse_span("24h") == (0, 1440)
    assert parse_span("closed") is None
    with pytest.raises(ValueError):
        parse_span("25:00-26:00")


def _at(year, month, day, hour, minute=0) -> int:
    from zoneinfo import ZoneInfo

    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(CDT)).timestamp())


@pytest.mark.parametrize(
    ("arrival", "opens"),
    [
        (_at(2025, 3, 12, 2, 20), _at(2025, 3, 12, 7)),  # Wednesday night: 07:00 the same day
        (_at(2025, 3, 12, 12, 0), _at(2025, 3, 12, 12, 0)),  # open: no wait for the opening
        (_at(2025, 3, 15, 17, 0), _at(2025, 3, 16, 7)),  # Saturday after 16:00: Sunday 07:00
        (_at(2025, 3, 16, 23, 59), _at(2025, 3, 16, 23, 59)),  # Sunday until midnight
        (_at(2025, 3, 17, 0, 30), _at(2025, 3, 17, 7)),  # round the end of the week
    ],
)
def test_world_trade_bridge_opens_when_its_hours_say(arrival, opens):
    port = BORDER.port("230404")
    assert port.hours.text == "Mon-Fri 07:00-24:00; Sat 07:00-16:00; Sun 07:00-24:00"
    assert port.hours.opens_at(CDT, arrival) == opens


def test_unknown_hours_are_always_open_and_say_so():
    bare = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    port = bare.port("230404")
    assert port.hours is UNKNOWN_HOURS and port.hours.source == "unknown: treated as open 24 h"
    estimate = bare.expected_wait(port, "standard", _at(2025, 3, 12, 2, 20), 3600)
    assert not estimate.closed and estimate.opens_at_s == 0


def test_a_closed_arrival_waits_for_the_opening_then_the_queue():
    port = BORDER.port("230404")
    arrival = _at(2025, 3, 12, 2, 20)
    estimate = BORDER.expected_wait(port, "standard", arrival, 3600)
    queue = BORDER.expected_wait(port, "standard", _at(2025, 3, 12, 7), 3600)
    assert estimate.closed and estimate.opens_at_s == _at(2025, 3, 12, 7)
    assert estimate.minutes == pytest.approx(4 * 60 + 40 + queue.minutes)
    assert queue.minutes > 0 and not queue.closed


def test_a_live_closed_reading_holds_until_it_is_too_old_then_the_hours_decide():
    port = BORDER.port("230404")
    observed = _at(2025, 3, 11, 23, 30)  # Tuesday 23:30: closed for 60 min, then the night closes it
    reading = WaitObservation("230404", "standard", None, observed, "Lanes Closed", 0, True)
    border = BORDER.with_observations({("230404", "standard"): reading})
    estimate = border.expected_wait(port, "standard", _at(2025, 3, 11, 23, 45), 3600)
    assert estimate.closed and estimate.source == "live"
    assert estimate.opens_at_s == _at(2025, 3, 12, 7)  # not 00:30: the port is closed by then


def test_the_feed_s_hours_replace_the_seed_s_in_a_new_version():
    reading = WaitObservation("230404", "standard", 10.0, _at(2025, 3, 12, 12), hours="6 am-10 pm")
    updated, accepted, _ = BORDER.merged([reading], now_s=_at(2025, 3, 12, 13))
    assert accepted and updated.version != BORDER.version
    hours = updated.port("230404").hours
    assert hours.text == "Mon-Fri 06:00-22:00; Sat 06:00-16:00; Sun 06:00-22:00"
    assert hours.source == "CBP feed 2025-03-12: 6 am-10 pm"
    same, _, _ = updated.merged([reading], now_s=_at(2025, 3, 12, 13))
    assert same.port("230404").hours == hours


def test_from_cbp_gives_saturday_its_afternoon_close():
    assert from_cbp("24 hrs/day", "s").always_open
    assert from_cbp("7 am-Midnight", "s") == weekly((420, 1440), (420, 960), (420, 1440), "s")


def test_default_profiles_hold_no_zero_for_closed_hours():
    document = json.loads(seeds.WAIT_PROFILES_JSON.read_text())
    port = BORDER.port("230404")
    standard = document["ports"]["230404"]["standard"]
    assert min(standard) > 0
    # Wednesday 02:00 (closed) holds the queue of Wednesday 07:00 (the opening)
    assert standard[2 * 24 + 2] == standard[2 * 24 + 7]
    assert port.hours.opens_at(CDT, _at(2025, 3, 12, 2)) == _at(2025, 3, 12, 7)


def test_hours_of_a_replayed_older_reading_change_nothing():
    newer = WaitObservation("230404", "standard", 10.0, _at(2025, 3, 12, 12), hours="7 am-Midnight")
    held, _, _ = BORDER.merged([newer], now_s=_at(2025, 3, 12, 13))
    older = WaitObservation("230404", "standard", 15.0, _at(2025, 3, 12, 11), hours="10 am-6 pm")
    after, accepted, stale = held.merged([older], now_s=_at(2025, 3, 12, 13))
    assert (accepted, stale) == ([], 1)
    assert after.port("230404").hours == held.port("230404").hours
