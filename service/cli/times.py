"""Times a person types or reads: in the local time of the place they refer to.

A dispatcher in Tijuana who types ``--departure 2026-06-10T14:00`` means 14:00 at the origin,
not 14:00 UTC; taking it as UTC moves the truck seven hours and silently changes the border wait.
So a time without a UTC offset is local at the place it refers to (the route's origin, the port),
in that place's zone (:func:`geodata.timezones.zone_at`, the lookup scoring builds on), and the CLI
says which zone it used. A wall time that a DST change skips or repeats has no single meaning:
it is refused, naming the option and the zone. Every time printed for a person carries its zone
abbreviation (or offset); JSON output keeps proto3's RFC 3339 UTC.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from geodata.route import RoutePath
from geodata.timezones import zone_at
from routerisk.v1 import route_risk_service_pb2 as pb
from service.cli.common import EXIT_BAD_INPUT, CliError

DAY_CLOCK = "%a %d %H:%M %Z"
DATE_CLOCK = "%Y-%m-%d %H:%M %Z"


@lru_cache(maxsize=1024)
def zone_here(lat: float, lng: float) -> ZoneInfo:
    """The zone of a point: the wall clock of a person there (the tz database's own boundaries;
    scoring's cells near a zone line may use the neighbour's zone, an instant is the same either way)."""
    return ZoneInfo(zone_at(lat, lng))


@dataclass(frozen=True)
class ReadTime:
    """A time read from the command line: the instant, and how a wall time was taken (or None)."""

    utc: datetime
    note: str | None = None


def read_time(text: str, option: str, zone: ZoneInfo | None, place: str) -> ReadTime:
    """An ISO 8601 time; one without an offset is a wall time in ``zone`` (the local time at
    ``place``). Without a zone to read it in, a wall time is refused rather than guessed."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not an ISO 8601 time", EXIT_BAD_INPUT) from None
    if when.tzinfo is not None:
        return ReadTime(when.astimezone(UTC))
    if zone is None:
        raise CliError(
            f"{option} {text!r} has no UTC offset and no single local time applies ({place}): "
            "add an offset (e.g. -07:00 or Z)",
            EXIT_BAD_INPUT,
        )
    local = _wall_time(when, option, text, zone)
    note = f"{option.lstrip('-')} {local.strftime(DATE_CLOCK)} ({zone.key}), taken as local time at {place}"
    return ReadTime(local.astimezone(UTC), note)


def _wall_time(when: datetime, option: str, text: str, zone: ZoneInfo) -> datetime:
    """``when`` in ``zone``; refused when a DST change skips it (a gap) or repeats it (an overlap)."""
    early, late = when.replace(tzinfo=zone, fold=0), when.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    if early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != when:
        raise CliError(
            f"{option} {text!r} does not exist in {zone.key}: the clocks skip it (DST); "
            "give another time or a UTC offset",
            EXIT_BAD_INPUT,
        )
    raise CliError(
        f"{option} {text!r} is ambiguous in {zone.key}: the clocks pass it twice (DST), at "
        f"{_offset(early)} and {_offset(late)}; add the offset you mean",
        EXIT_BAD_INPUT,
    )


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def local_text(stamp: Timestamp | datetime, zone: ZoneInfo | None, form: str = DAY_CLOCK) -> str:
    """A time as a person at the place reads it: wall time there with the zone abbreviation
    (the tz database gives a numeric one, such as ``-06``, where a zone has no letters); UTC
    when the place is not known."""
    moment = stamp if isinstance(stamp, datetime) else stamp.ToDatetime(UTC)
    return moment.astimezone(zone or UTC).strftime(form)


def local_at(stamp: Timestamp, lat: float, lng: float, form: str = DAY_CLOCK) -> str:
    """:func:`local_text` at a point."""
    return local_text(stamp, zone_here(round(lat, 6), round(lng, 6)), form)


def origin_zone(path: RoutePath | None) -> ZoneInfo | None:
    """The zone at a route's first point, where a departure is a wall time (None without a path)."""
    return zone_here(float(path.lat[0]), float(path.lng[0])) if path is not None else None


def end_zone(path: RoutePath | None) -> ZoneInfo | None:
    """The zone at a route's last point, where an arrival is read (None without a path)."""
    return zone_here(float(path.lat[-1]), float(path.lng[-1])) if path is not None else None


def set_departure(request: pb.ScoreRouteRequest, text: str | None, path: RoutePath | None) -> str | None:
    """``--departure`` into the request (a wall time at the route's origin when it has no offset);
    returns the note saying how a wall time was taken, for :func:`say`."""
    if text is None:
        return None
    read = read_time(text, "--departure", origin_zone(path), "the origin" if path else "a route that does not decode")
    request.departure_time.FromDatetime(read.utc)
    return read.note


def say(notes: Iterable[str | None]) -> None:
    """Each distinct note once, on stderr (stdout holds the data, JSON included)."""
    for note in dict.fromkeys(n for n in notes if n):
        print(note, file=sys.stderr)
