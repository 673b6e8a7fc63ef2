"""geodata.cbp_feed and geodata.cbp_history on real CBP Border Wait Times samples (2022-06-29/30), their
XML re-encoding, malformed feeds, and synthetic-shaped historical exports (see tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seeds
from geodata.border import LANES, WaitObservation, load_border_data
from geodata.cbp_feed import InvalidFeedError, PortStatus
from geodata.cbp_history import parse_historical, profiles_document
from geodata.errors import InputError
from tests.geodata.cbp_seeded import parse_bwt_json, parse_bwt_xml, parse_feed, port_zones

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cbp"
SHARED = ROOT.parent / "shared" / "data" / "cbp"

FEED_0629 = FIXTURES / "bwtnew-2022-06-29.json"
FEED_0630 = FIXTURES / "bwtpublicmod-mexico-2022-06-30.json"
SHARED_0629 = SHARED / "bwtnew-2022-06-29.json"
SHARED_0630 = SHARED / "bwtpublicmod-all-2022-06-30.json"


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def feeds(*paths: Path) -> list:
    """The committed copy always; a shared original too, when ``../shared`` is there."""
    return [
        pytest.param(p, id=p.name)
        if p.parent == FIXTURES
        else pytest.param(p, id=f"shared/{p.name}", marks=pytest.mark.skipif(not p.exists(), reason="no ../shared"))
        for p in paths
    ]


def by_key(observations: list[WaitObservation]) -> dict[tuple[str, str], WaitObservation]:
    keyed = {(o.port_number, o.lane): o for o in observations}
    assert len(keyed) == len(observations), "one observation per port and lane"
    return keyed


def records(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def laredo_record() -> dict:
    return copy.deepcopy(next(r for r in records(FEED_0629) if r["port_number"] == "230404"))


def lanes_of(record: dict) -> dict:
    return record["commercial_vehicle_lanes"]


# ----------------------------------------------------------------------------- real live feeds


@pytest.mark.parametrize("path", feeds(FEED_0629, SHARED_0629))
def test_laredo_world_trade_bridge_at_noon_cdt(path: Path):
    observations, statuses = parse_bwt_json(path.read_bytes())
    keyed = by_key(observations)
    standard, fast = keyed["230404", "standard"], keyed["230404", "fast"]
    assert standard.wait_minutes == 45.0
    assert fast.wait_minutes == 15.0
    # 2022-06-29 12:00 CDT = 17:00 UTC
    assert standard.observed_at_s == fast.observed_at_s == 1656522000 == utc(2022, 6, 29, 17)
    assert (standard.operational_status, standard.lanes_open, standard.closed) == ("delay", 10, False)
    assert (fast.operational_status, fast.lanes_open, fast.closed) == ("delay", 4, False)
    assert PortStatus("230404", "Laredo", "World Trade Bridge", "Open") in statuses


def test_port_zones_are_the_24_commercial_ports():
    zones = port_zones()
    assert len(zones) == 24
    assert zones["230404"] == "America/Chicago"
    assert zones["250602"] == "America/Los_Angeles"
    assert zones["240201"] == "America/Denver"
    assert zones["260802"] == "America/Phoenix"
    zones["230404"] = "mutated"
    assert port_zones()["230404"] == "America/Chicago", "a fresh copy each call"


@pytest.mark.parametrize("path", feeds(FEED_0629, SHARED_0629, FEED_0630, SHARED_0630))
def test_every_commercial_port_has_a_sane_observation(path: Path):
    zones = port_zones()
    raw = [r for r in records(path) if r["border"] == "Mexican Border" and r["port_number"] in zones]
    assert {r["port_number"] for r in raw} == set(zones), "the samples list all 24 commercial ports"
    observations, statuses = parse_bwt_json(path.read_text(encoding="utf-8"))
    keyed = by_key(observations)
    assert [s.port_number for s in statuses] == [r["port_number"] for r in raw]
    expected_keys = set()
    for record in raw:
        for key, lane in (("standard_lanes", "standard"), ("FAST_lanes", "fast")):
            if lanes_of(record)[key]["operational_status"] != "N/A":
                expected_keys.add((record["port_number"], lane))
    assert set(keyed) == expected_keys
    # the instant CBP wrote the feed, from a Central-time record (the Arizona ones run an hour ahead)
    laredo = next(r for r in raw if r["port_number"] == "230404")
    month, day, year = (int(x) for x in laredo["date"].split("/"))
    written = datetime(year, month, day, *map(int, laredo["time"].split(":")), tzinfo=ZoneInfo("America/Chicago"))
    for record in raw:
        zone = ZoneInfo(zones[record["port_number"]])
        for key, lane in (("standard_lanes", "standard"), ("FAST_lanes", "fast")):
            fields = lanes_of(record)[key]
            if (record["port_number"], lane) not in keyed:
                continue
            observation = keyed[record["port_number"], lane]
            local = datetime.fromtimestamp(observation.observed_at_s, zone)
            assert local.date() == date(year, month, day), (record["port_number"], lane, local)
            assert 0 <= written.timestamp() - observation.observed_at_s <= 3 * 3600, (record["port_number"], lane)
            assert observation.operational_status == fields["operational_status"]
            expected_wait = float(fields["delay_minutes"]) if fields["delay_minutes"] else None
            assert observation.wait_minutes == expected_wait
            assert observation.lanes_open == int(fields["lanes_open"] or 0)
            assert observation.closed == (fields["operational_status"] == "Lanes Closed")
            update = fields["update_time"]
            if update and record["port_number"] != "260301":  # Naco writes PST: see its own test
                clock = update.removeprefix("At ").rsplit(" ", 1)[0]
                hour = {"Noon": 12, "Midnight": 0}.get(clock) or datetime.strptime(clock, "%I:%M %p").hour
                assert (local.hour, local.minute) == (hour, 0), (record["port_number"], update, local)


def test_time_zones_pacific_arizona_mountain_central():
    keyed = by_key(parse_bwt_json(FEED_0629.read_bytes())[0])
    noon_cdt = utc(2022, 6, 29, 17)
    assert keyed["250602", "standard"].observed_at_s == noon_cdt  # Otay Mesa, At 10:00 am PDT
    assert keyed["260402", "standard"].observed_at_s == noon_cdt  # Nogales Mariposa, At 10:00 am MST
    assert keyed["240201", "fast"].observed_at_s == noon_cdt  # El Paso BOTA, At 11:00 am MDT
    assert keyed["240801", "standard"].observed_at_s == noon_cdt  # Santa Teresa NM, At 11:00 am MDT
    assert keyed["230502", "fast"].observed_at_s == noon_cdt  # Pharr, At Noon CDT
    # no update_time: the feed's own time, 12:25:16 CDT; the Arizona records say 11:25:16, an hour
    # ahead of Arizona's clock (MST all summer), so they take the feed's time, not an instant to come
    written = utc(2022, 6, 29, 17, 25, 16)
    assert keyed["250201", "standard"].observed_at_s == written  # Andrade, Lanes Closed, 10:25:16 PDT
    assert keyed["230201", "standard"].observed_at_s == written  # Del Rio, Lanes Closed
    assert keyed["260201", "standard"].observed_at_s == written  # Lukeville AZ, record time 11:25:16
    assert keyed["260802", "standard"].observed_at_s == written  # San Luis AZ, Update Pending
    pending = keyed["260802", "fast"]
    assert (pending.wait_minutes, pending.operational_status, pending.closed) == (None, "Update Pending", False)


@pytest.mark.parametrize("path", feeds(FEED_0630, SHARED_0630))
def test_the_next_day_feed_flags_closed_lanes(path: Path):
    observations, _ = parse_bwt_json(path.read_bytes())
    keyed = by_key(observations)
    closed = {key for key, o in keyed.items() if o.closed}
    assert closed == {
        ("250201", "standard"), ("535503", "standard"), ("535503", "fast"), ("535502", "standard"),
        ("535502", "fast"), ("240601", "standard"), ("230201", "standard"), ("260101", "standard"),
        ("230302", "fast"), ("240201", "standard"), ("240201", "fast"), ("260201", "standard"),
        ("240301", "standard"), ("230901", "standard"), ("231001", "standard"), ("250501", "standard"),
    }  # fmt: skip
    assert all(keyed[k].wait_minutes is None and keyed[k].operational_status == "Lanes Closed" for k in closed)
    assert keyed["250602", "standard"].wait_minutes == 90.0
    # 5:00 pm PDT/MST and 7:00 pm CDT on 6/30 are all 2022-07-01 00:00 UTC
    five_pm_pdt = utc(2022, 7, 1, 0)
    assert keyed["250602", "standard"].observed_at_s == five_pm_pdt
    assert keyed["260802", "standard"].observed_at_s == five_pm_pdt  # San Luis II, At 5:00 pm MST
    assert keyed["230404", "standard"].observed_at_s == five_pm_pdt  # At 7:00 pm CDT
    assert keyed["240203", "standard"].observed_at_s == five_pm_pdt  # El Paso Ysleta, At 6:00 pm MDT
    # Naco AZ writes "At 4:00 pm PST": the abbreviation's offset, not Phoenix's, gives the same instant
    assert keyed["260301", "standard"].observed_at_s == five_pm_pdt
    assert keyed["230302", "standard"].observed_at_s == utc(2022, 6, 30, 22)  # At 5:00 pm CDT


def test_ignored_records_are_not_errors():
    observations, statuses = parse_bwt_json(FEED_0629.read_bytes(), zones={"230404": "America/Chicago"})
    assert {o.port_number for o in observations} == {"230404"}
    assert [s.port_number for s in statuses] == ["230404"]
    # a Canadian port is ignored even when it has a zone; other Mexican-border crossings are not in the zones
    canadian = parse_bwt_json(FEED_0629.read_bytes(), zones={"070801": "America/New_York"})
    assert canadian == ([], [])


def test_port_numbers_stay_strings():
    feed = records(FEED_0629)
    hancock = next(r for r in feed if r["port_number"] == "l24501")  # a real non-numeric port number
    observations, statuses = parse_bwt_json(json.dumps([hancock]), zones={"l24501": "America/Denver"})
    assert observations == []  # both lanes N/A
    assert statuses == [PortStatus("l24501", "Fort Hancock", "Fort Hancock", "Open")]
    record = laredo_record()
    record["port_number"] = "007"
    observations, _ = parse_bwt_json(json.dumps([record]), zones={"007": "America/Chicago"})
    assert {o.port_number for o in observations} == {"007"}


# ----------------------------------------------------------------------------- XML


def test_xml_fixture_gives_the_same_observations_as_its_json_records():
    xml = (FIXTURES / "bwt-2022-06-29.xml").read_bytes()
    numbers = [e.text for e in ET.fromstring(xml).iter("port_number")]
    assert {"230404", "250602", "240201", "240203", "230502", "070801"} <= set(numbers)
    source = [r for r in records(FEED_0629) if r["port_number"] in numbers]
    by_number = {r["port_number"]: r for r in source}
    ordered = [by_number[n] for n in numbers]
    from_json = parse_bwt_json(json.dumps(ordered))
    from_xml = parse_bwt_xml(xml)
    assert from_xml == from_json
    observations, statuses = from_xml
    keyed = by_key(observations)
    assert keyed["230404", "standard"].wait_minutes == 45.0
    assert keyed["230302", "standard"].closed and keyed["535503", "fast"].closed
    assert ("250501", "fast") not in keyed  # Tecate FAST is N/A
    assert {s.port_number for s in statuses} == set(numbers) - {"070801", "250401"}
    # and the XML records agree with what the whole real feed says about those ports
    whole = by_key(parse_bwt_json(FEED_0629.read_bytes())[0])
    assert all(whole[key] == observation for key, observation in keyed.items())
    assert parse_feed(xml) == from_xml
    assert parse_feed(b"\xef\xbb\xbf \n" + xml) == from_xml
    assert parse_bwt_xml(xml.decode("utf-8")) == from_xml


def test_xml_rejects_doctype_and_other_documents():
    with pytest.raises(InvalidFeedError, match="DOCTYPE"):
        parse_bwt_xml('<!DOCTYPE x [<!ENTITY a "aaaa">]><border_wait_time>&a;</border_wait_time>')
    with pytest.raises(InvalidFeedError, match="expected a <border_wait_time> document, got <rss>"):
        parse_bwt_xml("<rss><port/></rss>")
    record = laredo_record()
    xml = ET.tostring(to_xml([record]), encoding="unicode")
    repeated = xml.replace(
        "<delay_minutes>45</delay_minutes>", "<delay_minutes>45</delay_minutes><delay_minutes>4</delay_minutes>"
    )
    with pytest.raises(InvalidFeedError) as caught:
        parse_bwt_xml(repeated)
    assert [v.field for v in caught.value.violations] == [
        "ports[0].commercial_vehicle_lanes.standard_lanes.delay_minutes"
    ]


def to_xml(feed: list[dict]) -> ET.Element:
    def element(tag: str, value: object) -> ET.Element:
        node = ET.Element(tag)
        if isinstance(value, dict):
            node.extend(element(k, v) for k, v in value.items())
        elif value is not None:
            node.text = str(value)
        return node

    root = ET.Element("border_wait_time")
    root.extend(element("port", r) for r in feed)
    return root


# ----------------------------------------------------------------------------- malformed feeds


def test_truncated_feeds_are_rejected():
    with pytest.raises(InvalidFeedError, match="not well-formed XML") as caught:
        parse_feed((FIXTURES / "bwt-truncated.xml").read_bytes())
    assert caught.value.violations[0].field == "feed"
    with pytest.raises(InvalidFeedError, match="not valid JSON") as caught:
        parse_feed((FIXTURES / "bwtnew-truncated.json").read_bytes())
    assert caught.value.violations[0].field == "feed"
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["bwt-bad-delay.json", "bwt-bad-delay.xml"])
def test_bad_fields_are_all_named_and_the_whole_feed_is_rejected(name: str):
    with pytest.raises(InvalidFeedError) as caught:
        parse_feed((FIXTURES / name).read_bytes())
    violations = caught.value.violations
    assert [v.field for v in violations] == [
        "ports[0].commercial_vehicle_lanes.standard_lanes.delay_minutes",
        "ports[4].commercial_vehicle_lanes.FAST_lanes.update_time",
    ]
    assert "'abc'" in violations[0].description and "230404" in violations[0].description
    assert "'At Teatime CDT'" in violations[1].description and "230502" in violations[1].description


def feed_error(feed: object, **kwargs) -> InvalidFeedError:
    with pytest.raises(InvalidFeedError) as caught:
        parse_bwt_json(json.dumps(feed), **kwargs)
    return caught.value


def test_structural_problems_are_listed_together():
    assert feed_error({"ports": []}).violations[0].description.startswith("expected a JSON array")
    no_number = laredo_record()
    del no_number["port_number"]
    no_lanes = laredo_record()
    del no_lanes["commercial_vehicle_lanes"]
    no_fast = copy.deepcopy(laredo_record())
    no_fast["port_number"] = "230403"
    del lanes_of(no_fast)["FAST_lanes"]
    bad_date = laredo_record()
    bad_date["port_number"] = "230502"
    bad_date["date"] = "6/31/2022"
    bad_lanes = laredo_record()
    bad_lanes["port_number"] = "250602"
    lanes_of(bad_lanes)["FAST_lanes"]["lanes_open"] = "four"
    error = feed_error([no_number, no_lanes, no_fast, bad_date, bad_lanes, "text"])
    assert [v.field for v in error.violations] == [
        "ports[0].port_number",
        "ports[1].commercial_vehicle_lanes",
        "ports[2].commercial_vehicle_lanes.FAST_lanes",
        "ports[3].date",
        "ports[4].commercial_vehicle_lanes.FAST_lanes.lanes_open",
        "ports[5]",
    ]
    twice = feed_error([laredo_record(), laredo_record()])
    assert [v.field for v in twice.violations] == ["ports[1].port_number"]


@pytest.mark.parametrize("text", ["", "   ", "hello", "\x00"])
def test_neither_json_nor_xml(text: str):
    with pytest.raises(InvalidFeedError, match="neither JSON nor XML"):
        parse_feed(text)


def test_non_utf8_bytes_are_rejected():
    with pytest.raises(InvalidFeedError, match="not UTF-8"):
        parse_bwt_json(b'[{"port_number": "\xff"}]')


# ----------------------------------------------------------------------------- update times


def laredo_with(update_time: str, *, date_text: str = "6/29/2022", time_text: str = "12:25:16") -> dict:
    record = laredo_record()
    record["date"], record["time"] = date_text, time_text
    lanes_of(record)["standard_lanes"]["update_time"] = update_time
    return record


@pytest.mark.parametrize(
    ("update_time", "expected"),
    [
        ("At Noon CDT", utc(2022, 6, 29, 17)),
        ("  at   noon   cdt ", utc(2022, 6, 29, 17)),
        ("AT NOON", utc(2022, 6, 29, 17)),  # no abbreviation: the port's zone (CDT in June)
        ("At Midnight CDT", utc(2022, 6, 29, 5)),
        ("At 11:00 am MDT", utc(2022, 6, 29, 17)),  # the abbreviation overrides the port's zone
        ("At 10:00 am PDT", utc(2022, 6, 29, 17)),
        ("At 10:00am PST", utc(2022, 6, 29, 18)),
        ("At 9 a.m. CST", utc(2022, 6, 29, 15)),
        ("At 12:00 am CDT", utc(2022, 6, 29, 5)),
        ("At 12:30 pm CDT", utc(2022, 6, 29, 17, 30)),
        ("At 1:05 pm", utc(2022, 6, 29, 18, 5)),
        ("At 11:00 EDT", utc(2022, 6, 29, 15)),
        ("11:45", utc(2022, 6, 29, 16, 45)),
    ],
)
def test_update_time_spellings(update_time: str, expected: int):
    observations, _ = parse_bwt_json(json.dumps([laredo_with(update_time)]))
    assert by_key(observations)["230404", "standard"].observed_at_s == expected


@pytest.mark.parametrize(
    "update_time", ["At 13:00 pm CDT", "At 0:00 am CDT", "At 24:00 CDT", "At Noon XYZ", "Soon", "At 10:75 am", "At"]
)
def test_bad_update_times(update_time: str):
    error = feed_error([laredo_with(update_time)])
    assert [v.field for v in error.violations] == ["ports[0].commercial_vehicle_lanes.standard_lanes.update_time"]
    assert repr(update_time) in error.violations[0].description


def test_winter_and_iso_dates():
    observations, _ = parse_bwt_json(json.dumps([laredo_with("At 10:00 am", date_text="2022-01-14")]))
    assert by_key(observations)["230404", "standard"].observed_at_s == utc(2022, 1, 14, 16)  # CST


def test_update_written_before_midnight_in_a_feed_written_after_it():
    record = laredo_with("At 11:00 pm CDT", date_text="6/30/2022", time_text="00:25:16")
    lanes_of(record)["FAST_lanes"]["update_time"] = "At Midnight CDT"
    keyed = by_key(parse_bwt_json(json.dumps([record]))[0])
    assert keyed["230404", "standard"].observed_at_s == utc(2022, 6, 30, 4)  # 6/29 11 pm CDT
    assert keyed["230404", "fast"].observed_at_s == utc(2022, 6, 30, 5)  # 6/30 00:00 CDT


def test_lanes_without_update_time():
    closed = laredo_with("")
    lanes_of(closed)["standard_lanes"].update(operational_status="Lanes Closed", delay_minutes="", lanes_open="")
    keyed = by_key(parse_bwt_json(json.dumps([closed]))[0])
    assert keyed["230404", "standard"] == WaitObservation(
        "230404", "standard", None, utc(2022, 6, 29, 17, 25, 16), "Lanes Closed", 0, True, "7 am-Midnight"
    )
    # no record time either: the feed's time from the other records
    del closed["time"]
    otay = next(r for r in records(FEED_0629) if r["port_number"] == "250602")
    keyed = by_key(parse_bwt_json(json.dumps([closed, otay]))[0])
    assert keyed["230404", "standard"].observed_at_s == utc(2022, 6, 29, 17, 25, 16)
    # nothing to go by at all
    del otay["time"]
    lanes_of(otay)["standard_lanes"]["update_time"] = lanes_of(otay)["FAST_lanes"]["update_time"] = ""
    lanes_of(closed)["FAST_lanes"]["update_time"] = ""
    error = feed_error([closed, otay])
    assert len(error.violations) == 4
    assert all(v.field.endswith(".update_time") for v in error.violations)


def test_a_closed_port_closes_its_lanes():
    record = laredo_record()
    record["port_status"] = "Closed"
    observations, statuses = parse_bwt_json(json.dumps([record]))
    assert all(o.closed for o in observations) and len(observations) == 2
    assert observations[0].wait_minutes == 45.0  # as given
    assert statuses[0].port_status == "Closed"


def test_json_numbers_and_nulls_are_read_like_strings():
    record = laredo_record()
    lanes_of(record)["standard_lanes"].update(delay_minutes=45, lanes_open=10)
    lanes_of(record)["FAST_lanes"].update(delay_minutes=None, lanes_open=None, operational_status="Update Pending")
    keyed = by_key(parse_bwt_json(json.dumps([record]))[0])
    assert (keyed["230404", "standard"].wait_minutes, keyed["230404", "standard"].lanes_open) == (45.0, 10)
    assert (keyed["230404", "fast"].wait_minutes, keyed["230404", "fast"].lanes_open) == (None, 0)
    lanes_of(record)["standard_lanes"]["delay_minutes"] = [45]
    assert "expected a string" in feed_error([record]).violations[0].description


# ----------------------------------------------------------------------------- mutations

STRING_LEAVES = [
    path
    for path in (
        ("port_number",), ("border",), ("port_name",), ("crossing_name",), ("date",), ("time",), ("port_status",),
        *(
            ("commercial_vehicle_lanes", lane, field)
            for lane in ("standard_lanes", "FAST_lanes")
            for field in ("update_time", "operational_status", "delay_minutes", "lanes_open")
        ),
    )
]  # fmt: skip
TOKENS = [
    "", " ", "N/A", "abc", "-5", "1e3", "nan", "inf", "45.5", "٣", "At Noon", "At 25:00 pm CDT", "Lanes Closed",
    "Closed", "13/45/2022", "2/29/2023", "12/31/9999", "1/1/0001", "Mexican Border", "Canadian Border", "230404",
    "99:99", "23:59:59", "At Midnight PST", "At 12:00 am ZZZ", "\x00", "<x>", "&amp;", "]]>",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(TOKENS),
    st.text(max_size=20),
    st.sampled_from([None, 0, 7.5, -1, True, [], {}]),
)
MUTATIONS = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(STRING_LEAVES), st.one_of(st.just("delete"), VALUES)),
    min_size=1,
    max_size=4,
)


def mutate(feed: list[dict], mutations: list) -> list[dict]:
    feed = copy.deepcopy(feed)
    for index, path, value in mutations:
        target = feed[index]
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if value == "delete":
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return feed


def check_outcome(parse, text) -> None:
    try:
        observations, statuses = parse(text)
    except InvalidFeedError as error:
        assert error.violations and all(v.field and v.description for v in error.violations)
        return
    for observation in observations:
        assert observation.lane in LANES
        assert isinstance(observation.observed_at_s, int)
        assert observation.wait_minutes is None or (
            math.isfinite(observation.wait_minutes) and observation.wait_minutes >= 0
        )
        assert observation.lanes_open >= 0
    assert all(isinstance(s, PortStatus) for s in statuses)


VALID_PAIR = [r for r in records(FEED_0629) if r["port_number"] in ("230404", "250602")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mutated_json_records_parse_or_raise_invalid_feed(mutations):
    check_outcome(parse_bwt_json, json.dumps(mutate(VALID_PAIR, mutations)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mutated_xml_records_parse_or_raise_invalid_feed(mutations):
    feed = mutate(VALID_PAIR, mutations)
    # the XML has only text: what the JSON had as non-strings becomes their text
    check_outcome(parse_bwt_xml, ET.tostring(to_xml(feed), encoding="utf-8"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_invalid_feed(data: bytes):
    for prefix in (b"[", b"<", b""):
        check_outcome(parse_feed, prefix + data)


# ----------------------------------------------------------------------------- historical


def test_historical_full_week():
    profiles = parse_historical((FIXTURES / "historical-230404-week.csv").read_bytes())
    assert set(profiles) == {("230404", "standard"), ("230404", "fast")}
    standard, fast = profiles["230404", "standard"], profiles["230404", "fast"]
    assert standard.shape == fast.shape == (168,)
    assert not np.isnan(standard).any() and not np.isnan(fast).any()
    # cv = 5 + 2*hour + 10*day, xcv = 2 + hour + day (day 0 = Monday): spot values by hand
    assert (standard[0], fast[0]) == (5.0, 2.0)  # Monday 00:00
    assert (standard[62], fast[62]) == (53.0, 18.0)  # Wednesday 14:00 = 2*24 + 14
    assert (standard[120], fast[120]) == (55.0, 7.0)  # Saturday 00:00 = 5*24
    assert (standard[167], fast[167]) == (111.0, 31.0)  # Sunday 23:00
    hours = np.arange(168)
    np.testing.assert_array_equal(standard, 5 + 2 * (hours % 24) + 10 * (hours // 24))
    np.testing.assert_array_equal(fast, 2 + hours % 24 + hours // 24)
    assert (
        parse_historical((FIXTURES / "historical-230404-week.csv").read_text(), port_number="230404").keys()
        == profiles.keys()
    )
    with pytest.raises(InvalidFeedError, match="no rows for port '250602'"):
        parse_historical((FIXTURES / "historical-230404-week.csv").read_text(), port_number="250602")


def gaps() -> dict[tuple[str, str], np.ndarray]:
    return parse_historical((FIXTURES / "historical-250602-gaps.csv").read_text(), port_number="250602")


def test_historical_gaps_are_nan():
    profiles = gaps()
    standard, fast = profiles["250602", "standard"], profiles["250602", "fast"]
    hours = np.arange(168)
    missing_standard = (hours % 24 == 3) | (hours == 6 * 24 + 10)
    missing_fast = (hours % 24 == 3) | (hours // 24 == 5)
    np.testing.assert_array_equal(np.isnan(standard), missing_standard)
    np.testing.assert_array_equal(np.isnan(fast), missing_fast)
    formula = 30.0 + hours % 24 + 2 * (hours // 24)
    formula[8] = 38.0  # Monday 08:00 given twice, 30 and 46
    np.testing.assert_array_equal(standard[~missing_standard], formula[~missing_standard])
    assert standard[8] == 38.0
    assert standard[0] == 30.0 and standard[12] == 42.0 and standard[13] == 43.0  # "12 AM", "12 PM", "1 PM"
    assert standard[24 + 13] == 45.0  # Tuesday "13:00-13:59"
    assert standard[48 + 23] == 57.0  # Wednesday "23:00"
    np.testing.assert_array_equal(fast[~missing_fast], (10.0 + hours // 24)[~missing_fast])


def test_profiles_document_fills_gaps_and_loads(tmp_path: Path):
    document = profiles_document(gaps(), label="fixture gaps")
    assert document["source"] == "historical" and document["label"] == "fixture gaps"
    assert document["filled_hours"] == {"250602": {"fast": 30, "standard": 8}}
    standard = np.array(document["ports"]["250602"]["standard"])
    fast = np.array(document["ports"]["250602"]["fast"])
    assert standard.shape == fast.shape == (168,)
    # 03:00 has no figure on any day: halfway between 02:00 and 04:00 of the same day = 33 + 2*day
    assert [standard[d * 24 + 3] for d in range(7)] == [33.0, 35.0, 37.0, 39.0, 41.0, 43.0, 45.0]
    # Sunday 10:00: the mean of 10:00 on Monday..Saturday, 40 + 2*day -> 45
    assert standard[6 * 24 + 10] == 45.0
    # Saturday FAST: the mean of the other days at that hour, (10+11+12+13+14+16)/6 = 12.67
    assert all(fast[5 * 24 + h] == 12.7 for h in range(24))
    assert [fast[d * 24 + 3] for d in (0, 1, 6)] == [10.0, 11.0, 16.0]
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON, path)
    assert border.profiles["250602", "standard"][6 * 24 + 10] == 45.0
    # Sunday 2022-07-03 10:00 PDT = 17:00 UTC: the historical profile answers, labelled so
    estimate = border.expected_wait(border.port("250602"), "standard", 1656867600, live_max_age_s=3600)
    assert (estimate.minutes, estimate.source) == (45.0, "historical")
    # ports the historical file does not cover keep the default profile
    laredo = border.expected_wait(border.port("230404"), "standard", 1656867600, live_max_age_s=3600)
    assert laredo.source == "default"


def test_profiles_document_wraps_the_week_and_skips_empty_lanes():
    values = np.full(168, np.nan)
    values[6], values[18] = 10.0, 22.0  # Monday 06:00 and 18:00 only
    document = profiles_document({("230404", "standard"): values, ("230404", "fast"): np.full(168, np.nan)}, label="x")
    filled = np.array(document["ports"]["230404"]["standard"])
    assert document["empty"] == ["230404/fast"] and "fast" not in document["ports"]["230404"]
    assert filled[6] == filled[24 + 6] == filled[6 * 24 + 6] == 10.0  # same hour, other days
    assert filled[0] == 16.0  # Monday 00:00, between Sunday 18:00 (22) and Monday 06:00 (10)
    assert filled[12] == 16.0 and filled[9] == 13.0
    with pytest.raises(ValueError, match="shape"):
        profiles_document({("230404", "standard"): np.zeros(24)}, label="x")
    with pytest.raises(ValueError, match="lane"):
        profiles_document({("230404", "pedestrian"): np.zeros(168)}, label="x")


@pytest.mark.parametrize(
    ("day", "slot", "hour_of_week"),
    [
        ("Mon", "0", 0), ("monday", "Midnight", 0), ("TUES", "Noon", 36), ("Thurs", "1300-1400", 85),
        ("Fri.", "1:00 pm", 109), ("Sun", "11 PM", 167), ("Wed", "07:00 - 07:59", 55), ("sat", "12 pm - 1 pm", 132),
        ("0", "5", 5), ("6", "23", 167), ("3", "01:00-01:59", 73),
    ],
)  # fmt: skip
def test_historical_day_and_slot_spellings(day: str, slot: str, hour_of_week: int):
    text = f"BWT_DAY,Time_Slot,CV_TIME_AVG\n{day},{slot},12.5\n"
    profile = parse_historical("\ufeff" + text, port_number="230404")["230404", "standard"]
    assert profile[hour_of_week] == 12.5
    assert np.isnan(np.delete(profile, hour_of_week)).all()


def test_historical_numbers_one_to_seven_are_iso():
    text = "port_number,bwt_day,time_slot,cv_time_avg\n230404,1,0,10\n230404,7,23,20\n"
    profile = parse_historical(text)["230404", "standard"]
    assert profile[0] == 10.0 and profile[167] == 20.0


def test_historical_api_json():
    document = {
        "wait_times": [
            {"bwt_day": "0", "time_slot": "8", "cv_time_avg": "35", "xcv_time_avg": None, "pv_time_avg": "9"},
            {"bwt_day": "4", "time_slot": "17", "cv_time_avg": 50, "xcv_time_avg": "20"},
        ]
    }
    profiles = parse_historical(json.dumps(document), port_number="250602")
    assert profiles["250602", "standard"][8] == 35.0 and profiles["250602", "standard"][4 * 24 + 17] == 50.0
    assert np.isnan(profiles["250602", "fast"][8]) and profiles["250602", "fast"][113] == 20.0


def test_malformed_historical_rows_are_all_named():
    with pytest.raises(InvalidFeedError) as caught:
        parse_historical((FIXTURES / "historical-bad.csv").read_bytes())
    assert [v.field for v in caught.value.violations] == [
        "rows[1].bwt_day",
        "rows[2].time_slot",
        "rows[3].cv_time_avg",
        "rows[4].xcv_time_avg",
    ]
    assert "'Funday'" in caught.value.violations[0].description
    assert "'25'" in caught.value.violations[1].description


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no data rows"),
        ("bwt_day,time_slot,cv_time_avg\n", "no data rows"),
        ("bwt_day,time_slot,pv_time_avg\nMon,1,5\n", "cv_time_avg or xcv_time_avg"),
        ("bwt_day,cv_time_avg\nMon,5\n", "'time_slot'"),
        ("bwt_day,time_slot,cv_time_avg\nMon,1,5\n", "port_number"),
        ("bwt_day,time_slot,cv_time_avg\nMon,1,5,6\n", "more cells"),
        ('{"wait_times": 5}', "expected an array"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_historical_structure_errors(text: str, message: str):
    with pytest.raises(InvalidFeedError, match=message):
        parse_historical(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(["Mon", "0", "7", "Funday", ""]), st.text(max_size=6)),
            st.one_of(st.sampled_from(["0", "13:00", "1 PM", "00:00-00:59", "25", ""]), st.text(max_size=8)),
            st.one_of(st.sampled_from(["12", "", "N/A", "-1", "abc", "1e3"]), st.text(max_size=5)),
        ),
        max_size=5,
    )
)
def test_arbitrary_historical_rows_parse_or_raise_invalid_feed(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("bwt_day", "time_slot", "cv_time_avg"), *rows])
    try:
        profiles = parse_historical(buffer.getvalue(), port_number="230404")
    except InvalidFeedError as error:
        assert error.violations
        return
    assert all(p.shape == (168,) and not (p < 0).any() for p in profiles.values())


# ----------------------------------------------------------------------------- bounded parsing


def test_deep_or_huge_feeds_are_refused_before_they_are_read():
    from geodata.cbp_feed import MAX_FEED_BYTES, MAX_FEED_DEPTH

    deep_xml = "<border_wait_time>" + "<port>" * 100_000 + "</port>" * 100_000 + "</border_wait_time>"
    deep_json = "[" * 100_000 + "]" * 100_000
    for feed, words in (
        (deep_xml, f"nests more than {MAX_FEED_DEPTH} elements deep"),
        (deep_xml.encode(), f"nests more than {MAX_FEED_DEPTH} elements deep"),
        (deep_json, "nests 100000 levels deep"),
        (" " * (MAX_FEED_BYTES + 1), "more than the limit"),
        (b"<" + b" " * MAX_FEED_BYTES, "more than the limit"),
    ):
        with pytest.raises(InvalidFeedError, match=words) as caught:
            parse_feed(feed)
        assert [v.field for v in caught.value.violations] == ["feed"]


def test_a_dtd_is_refused_in_any_encoding():
    bomb = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><border_wait_time>&a;</border_wait_time>'
    )
    with pytest.raises(InvalidFeedError, match="DOCTYPE"):
        parse_bwt_xml(bomb.encode("utf-16"))


def test_deep_historical_json_is_refused():
    with pytest.raises(InvalidFeedError, match="nests 5000 levels deep"):
        parse_historical('{"wait_times": ' + "[" * 4999 + "]" * 4999 + "}", port_number="230404")
