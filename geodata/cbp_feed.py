"""CBP Border Wait Times: the live commercial-lane feeds (historical averages: :mod:`geodata.cbp_history`).

Live feeds come as JSON (``/api/bwtnew``, ``/api/bwtpublicmod``: an array of port records,
every value a string) or XML (``bwt.xml``: ``<border_wait_time>`` holding ``<port>`` records
with the same field names). Both become :class:`~geodata.border.WaitObservation` objects for
the commercial standard and FAST lanes of the Mexican-border ports we know the time zone of
(``zones``, given by the caller: the service passes its ports, by default the 24 commercial ports
of ``seeds/ports_of_entry.csv``; the core does not read the seeds itself), plus a
:class:`PortStatus` per kept port. Records of other ports are ignored. A feed with anything
structurally wrong in a kept record is rejected whole with :class:`InvalidFeedError`, whose
violations name every bad record and field; partial results are never returned.

Observation time
    A lane's ``update_time`` (``At Noon CDT``, ``At 10:00 am PDT``, ``at midnight mst``,
    ``At 13:00``...) on the record's ``date`` (``6/29/2022`` or ``2022-06-29``). A zone
    abbreviation, when given, fixes the UTC offset (CBP writes ``At 4:00 pm PST`` for Naco, AZ:
    the abbreviation, not the port's zone, is what makes the instant agree with the other
    Arizona ports); without one the port's IANA zone applies. A lane that is reported (status
    not ``N/A``) but has no ``update_time`` (``Lanes Closed``, ``Update Pending``) takes the
    record's ``time`` in the port's zone, else the newest lane update of the feed. An update
    more than six hours after the record's own ``time`` was made the previous evening (a feed
    written just after midnight) and is moved back a day.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from geodata.border import WaitObservation
from geodata.bounded import check_size, load_json, parse_xml
from geodata.errors import InputError, Violation
from geodata.port_hours import parse_cbp

MEXICAN_BORDER = "mexican border"
# feed lane key -> our lane name
FEED_LANES = (("standard_lanes", "standard"), ("FAST_lanes", "fast"))

# US zone abbreviations CBP writes, as hours from UTC
ZONE_ABBREVIATIONS: dict[str, int] = {
    "EDT": -4, "EST": -5, "CDT": -5, "CST": -6, "MDT": -6, "MST": -7, "PDT": -7, "PST": -8,
    "AKDT": -8, "AKST": -9, "HST": -10, "ADT": -3, "AST": -4, "NDT": -2, "NST": -3,
}  # fmt: skip
# a feed date outside these years is a corrupt record, not a replay of old data
FEED_YEARS = (1970, 2200)
# an update this far after the record's own time belongs to the previous day
ROLLOVER = timedelta(hours=6)
_NOT_AVAILABLE = {"", "n/a", "na"}
# bounds on a feed before it is parsed: CBP's whole bwtnew feed is ~0.5 MB, 4 levels deep, and
# holds ~10,000 values; a feed beyond these is refused whole, never parsed
MAX_FEED_BYTES = 16 << 20
MAX_FEED_VALUES = 1_000_000
MAX_FEED_DEPTH = 32

_UPDATE_TIME = re.compile(
    r"""^\s*(?:at\s*)?
    (?:(?P<word>noon|midnight)
      |(?P<h12>\d{1,2})(?:\s*:\s*(?P<m12>\d{2}))?\s*(?P<ampm>[ap])\.?\s*m\.?
      |(?P<h24>\d{1,2})\s*:\s*(?P<m24>\d{2}))
    \s*(?P<zone>[a-z]{2,4})?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.ASCII,
)
_US_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$", re.ASCII)
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$", re.ASCII)
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$", re.ASCII)
_NUMBER = re.compile(r"^\s*\d+(?:\.\d*)?\s*$|^\s*\.\d+\s*$", re.ASCII)
_DTD = re.compile(rb"<!\s*(?:doctype|entity)", re.IGNORECASE)
_BOM = b"\xef\xbb\xbf"
_COUNT = re.compile(r"^\s*\d+\s*$", re.ASCII)


class InvalidFeedError(InputError):
    """A CBP feed or historical export cannot be read; nothing of it was used."""


@dataclass(frozen=True)
class PortStatus:
    """A kept port's identity and status as the feed gives it (``Open``, ``Closed``...)."""

    port_number: str
    port_name: str
    crossing_name: str
    port_status: str


# ----------------------------------------------------------------------------- live feeds


def parse_feed(text: str | bytes, *, zones: Mapping[str, str]) -> tuple[list[WaitObservation], list[PortStatus]]:
    """Parse a live feed, JSON or XML by its first non-blank character (``[``/``{`` or ``<``).

    ``zones`` maps the port numbers to keep to their IANA zones; records of other ports are ignored."""
    _check_feed_size(text)
    head = _first_char(text)
    if head in ("[", "{"):
        return parse_bwt_json(text, zones=zones)
    if head == "<":
        return parse_bwt_xml(text, zones=zones)
    shown = "empty input" if head == "" else f"starts with {head!r}"
    raise InvalidFeedError(Violation("feed", f"neither JSON nor XML ({shown})"))


def parse_bwt_json(text: str | bytes, *, zones: Mapping[str, str]) -> tuple[list[WaitObservation], list[PortStatus]]:
    """Parse the ``/api/bwtnew`` / ``/api/bwtpublicmod`` JSON array of port records."""
    _check_feed_size(text)
    document = load_json(
        _decode(text),
        "feed",
        max_chars=MAX_FEED_BYTES,
        max_items=MAX_FEED_VALUES,
        max_depth=MAX_FEED_DEPTH,
        error=InvalidFeedError,
    )
    if not isinstance(document, list):
        raise InvalidFeedError(Violation("feed", f"expected a JSON array of port records, got {_kind(document)}"))
    return _read_records(document, zones, [])


def parse_bwt_xml(text: str | bytes, *, zones: Mapping[str, str]) -> tuple[list[WaitObservation], list[PortStatus]]:
    """Parse CBP's ``bwt.xml``: ``<border_wait_time>`` with ``<port>`` records (JSON field names)."""
    _check_feed_size(text)
    # leading blanks (and a byte-order mark) are tolerated, as parse_feed does
    source: str | bytes = text.lstrip("\ufeff").lstrip() if isinstance(text, str) else text.lstrip(_BOM).lstrip()
    if _DTD.search(source if isinstance(source, bytes) else source.encode("utf-8", "replace")):
        # entity expansion is the classic XML bomb; the CBP feed never declares a DTD
        raise InvalidFeedError(Violation("feed", "XML with a DOCTYPE or ENTITY declaration is not accepted"))
    # expat by hand: a DTD is refused in any encoding (UTF-16 hides it from the check above), and
    # nesting is bounded while parsing (the records are read recursively below)
    root = parse_xml(source, "feed", max_chars=MAX_FEED_BYTES, max_depth=MAX_FEED_DEPTH, error=InvalidFeedError)
    if _local(root.tag) != "border_wait_time":
        raise InvalidFeedError(Violation("feed", f"expected a <border_wait_time> document, got <{_local(root.tag)}>"))
    violations: list[Violation] = []
    records = [
        _element_value(element, f"ports[{i}]", violations)
        for i, element in enumerate(e for e in root if _local(e.tag) == "port")
    ]
    return _read_records(records, zones, violations)


def _element_value(element: ET.Element, path: str, violations: list[Violation]) -> Any:
    """An element as JSON-like data: a dict of its children, or its stripped text for a leaf."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    value: dict[str, Any] = {}
    for child in children:
        name = _local(child.tag)
        if name in value:
            violations.append(Violation(f"{path}.{name}", f"element <{name}> appears more than once"))
            continue
        value[name] = _element_value(child, f"{path}.{name}", violations)
    return value


def _read_records(
    records: list[Any], zones: Mapping[str, str], violations: list[Violation]
) -> tuple[list[WaitObservation], list[PortStatus]]:
    pending: list[_PendingLane] = []
    statuses: list[PortStatus] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        path = f"ports[{index}]"
        if not isinstance(record, dict):
            violations.append(Violation(path, f"expected a port record (object), got {_kind(record)}"))
            continue
        number = _text(record, "port_number", path, violations, required=True)
        border = _text(record, "border", path, violations, required=True)
        if number is None or border is None:
            continue
        if not number:
            violations.append(Violation(f"{path}.port_number", "is empty"))
            continue
        if border.lower() != MEXICAN_BORDER or number not in zones:
            continue
        if number in seen:
            violations.append(Violation(f"{path}.port_number", f"port {number!r} repeats ports[{seen[number]}]"))
            continue
        seen[number] = index
        status = _read_record(record, number, zones[number], path, violations, pending)
        if status is not None:
            statuses.append(status)
    # every record's `time` is the same instant (when CBP wrote the feed) in the port's local time,
    # except that some Arizona records are an hour ahead; the median is the feed's instant
    per_record = {p.port_number: p.record_s for p in pending}
    written = sorted(t for t in per_record.values() if t is not None)
    feed_s = written[(len(written) - 1) // 2] if written else None
    newest_update = max((p.update_s for p in pending if p.update_s is not None), default=None)
    observations: list[WaitObservation] = []
    for lane in pending:
        observed = lane.update_s
        if observed is None:
            known = [t for t in (lane.record_s, feed_s) if t is not None]
            observed = min(known) if known else newest_update
        if observed is None:
            violations.append(
                Violation(
                    f"{lane.path}.update_time",
                    f"port {lane.port_number!r}: no update_time, the record has no time and no other lane "
                    "of the feed has one",
                )
            )
            continue
        observations.append(
            WaitObservation(
                lane.port_number, lane.lane, lane.wait, observed, lane.status, lane.lanes_open, lane.closed, lane.hours
            )
        )
    if violations:
        raise InvalidFeedError(violations)
    return observations, statuses


@dataclass(frozen=True)
class _PendingLane:
    path: str
    port_number: str
    lane: str
    wait: float | None
    update_s: int | None  # from the lane's update_time; None when it has none
    record_s: int | None  # the record's own time
    status: str
    lanes_open: int
    closed: bool
    hours: str = ""  # the port's ``hours`` text (its commercial hours, geodata/port_hours.py)


def _read_record(
    record: dict[str, Any],
    number: str,
    zone_name: str,
    path: str,
    violations: list[Violation],
    pending: list[_PendingLane],
) -> PortStatus | None:
    before = len(violations)
    zone = ZoneInfo(zone_name)
    name = _text(record, "port_name", path, violations) or ""
    crossing = _text(record, "crossing_name", path, violations) or ""
    port_status = _text(record, "port_status", path, violations) or ""
    hours = _hours_text(_text(record, "hours", path, violations) or "")
    day = _parse_date(_text(record, "date", path, violations, required=True), f"{path}.date", number, violations)
    clock_text = _text(record, "time", path, violations) or ""
    record_time: datetime | None = None
    if clock_text and day is not None:
        clock = _parse_clock(clock_text)
        if clock is None:
            violations.append(Violation(f"{path}.time", f"port {number!r}: time {clock_text!r} is not HH:MM[:SS]"))
        else:
            record_time = datetime(day.year, day.month, day.day, *clock, tzinfo=zone)
    lanes = record.get("commercial_vehicle_lanes")
    lanes_path = f"{path}.commercial_vehicle_lanes"
    if not isinstance(lanes, dict):
        problem = "is missing" if lanes is None else f"expected an object, got {_kind(lanes)}"
        violations.append(Violation(lanes_path, f"port {number!r}: {problem}"))
        return None
    found: list[_PendingLane] = []
    for key, lane in FEED_LANES:
        lane_path = f"{lanes_path}.{key}"
        fields = lanes.get(key)
        if not isinstance(fields, dict):
            problem = "is missing" if fields is None else f"expected an object, got {_kind(fields)}"
            violations.append(Violation(lane_path, f"port {number!r}: {problem}"))
            continue
        status = _text(fields, "operational_status", lane_path, violations, required=True)
        if status is None or status.upper() == "N/A":
            continue
        wait = _parse_minutes(_text(fields, "delay_minutes", lane_path, violations), lane_path, number, violations)
        lanes_open = _parse_count(_text(fields, "lanes_open", lane_path, violations), lane_path, number, violations)
        update = _text(fields, "update_time", lane_path, violations) or ""
        observed: datetime | None = None
        if update and day is not None:
            observed = _update_instant(update, day, zone, record_time, f"{lane_path}.update_time", number, violations)
        closed = status.lower() == "lanes closed" or port_status.lower() == "closed"
        found.append(
            _PendingLane(
                lane_path,
                number,
                lane,
                wait,
                _seconds(observed),
                _seconds(record_time),
                status,
                lanes_open if lanes_open is not None else 0,
                closed,
                hours,
            )
        )
    if len(violations) > before:
        return None
    pending.extend(found)
    return PortStatus(number, name, crossing, port_status)


def _hours_text(text: str) -> str:
    """The port's ``hours`` when they parse, else "" (the hours held stay: a text CBP may write
    for a special day must not reject the feed's waits, nor open a port at night)."""
    try:
        parse_cbp(text)
    except ValueError:
        return ""
    return text


def _update_instant(
    text: str,
    day: date,
    zone: ZoneInfo,
    record_time: datetime | None,
    path: str,
    number: str,
    violations: list[Violation],
) -> datetime | None:
    match = _UPDATE_TIME.match(text)
    problem = None
    hour = minute = 0
    if match is None:
        problem = "is not like 'At Noon CDT' or 'At 10:00 am PDT'"
    elif match["word"]:
        hour = 12 if match["word"].lower() == "noon" else 0
    elif match["ampm"]:
        hour, minute = int(match["h12"]), int(match["m12"] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            problem = "is not a valid 12-hour clock time"
        hour = hour % 12 + (12 if match["ampm"].lower() == "p" else 0)
    else:
        hour, minute = int(match["h24"]), int(match["m24"])
        if hour > 23 or minute > 59:
            problem = "is not a valid 24-hour clock time"
    abbreviation = (match["zone"] or "").upper() if match else ""
    if problem is None and abbreviation and abbreviation not in ZONE_ABBREVIATIONS:
        problem = f"has an unknown time zone abbreviation {abbreviation!r}"
    if problem is not None:
        violations.append(Violation(path, f"port {number!r}: update_time {text!r} {problem}"))
        return None
    tz = timezone(timedelta(hours=ZONE_ABBREVIATIONS[abbreviation])) if abbreviation else zone
    instant = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    if record_time is not None and instant - record_time > ROLLOVER:
        instant -= timedelta(days=1)
    return instant


# ----------------------------------------------------------------------------- field helpers


def _text(
    record: dict[str, Any], key: str, path: str, violations: list[Violation], *, required: bool = False
) -> str | None:
    """A field as stripped text (numbers accepted as JSON numbers; null as empty)."""
    if key not in record:
        if required:
            violations.append(Violation(f"{path}.{key}", "is missing"))
        return None
    value = record[key]
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    violations.append(Violation(f"{path}.{key}", f"expected a string, got {_kind(value)}"))
    return None


def _parse_date(text: str | None, path: str, number: str, violations: list[Violation]) -> date | None:
    if text is None:
        return None
    us, iso = _US_DATE.match(text), _ISO_DATE.match(text)
    parsed = None
    try:
        if us:
            parsed = date(int(us[3]), int(us[1]), int(us[2]))
        elif iso:
            parsed = date(int(iso[1]), int(iso[2]), int(iso[3]))
    except ValueError:
        pass
    if parsed is not None and FEED_YEARS[0] <= parsed.year <= FEED_YEARS[1]:
        return parsed
    violations.append(
        Violation(path, f"port {number!r}: date {text!r} is not a M/D/YYYY date in {FEED_YEARS[0]}..{FEED_YEARS[1]}")
    )
    return None


def _parse_clock(text: str) -> tuple[int, int, int] | None:
    match = _CLOCK.match(text)
    if match is None:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    return (hour, minute, second) if hour <= 23 and minute <= 59 and second <= 59 else None


def _parse_minutes(text: str | None, path: str, number: str, violations: list[Violation]) -> float | None:
    if text is None or text.lower() in _NOT_AVAILABLE:
        return None
    if _NUMBER.match(text):
        return float(text)
    violations.append(
        Violation(f"{path}.delay_minutes", f"port {number!r}: delay_minutes {text!r} is not a number of minutes")
    )
    return None


def _parse_count(text: str | None, path: str, number: str, violations: list[Violation]) -> int | None:
    if text is None or text.lower() in _NOT_AVAILABLE:
        return 0
    if _COUNT.match(text):
        return int(text)
    violations.append(Violation(f"{path}.lanes_open", f"port {number!r}: lanes_open {text!r} is not a whole number"))
    return None


def _seconds(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _check_feed_size(text: str | bytes) -> None:
    """Refuse a feed over :data:`MAX_FEED_BYTES` (bytes, or characters of text) before copying it."""
    check_size(text, "feed", MAX_FEED_BYTES, InvalidFeedError)


def _decode(text: str | bytes) -> str:
    if isinstance(text, str):
        return text.lstrip("\ufeff")
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidFeedError(Violation("feed", f"not UTF-8 text (byte {exc.start})")) from None


def _first_char(text: str | bytes) -> str:
    if isinstance(text, bytes):
        head = text[:1024].lstrip(_BOM).lstrip()[:1]
        return head.decode("latin-1")
    return text[:1024].lstrip("\ufeff").lstrip()[:1]


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else str(tag)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


__all__ = [
    "FEED_LANES",
    "ZONE_ABBREVIATIONS",
    "InvalidFeedError",
    "PortStatus",
    "parse_bwt_json",
    "parse_bwt_xml",
    "parse_feed",
]
