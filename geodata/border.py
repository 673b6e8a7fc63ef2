"""US–Mexico border data: ports of entry, the boundary, wait profiles and live waits.

:class:`BorderData` is immutable and versioned like a layer: a new feed or
profile set is a new object swapped in whole, and its version enters the cache
key of any route that crosses.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, shape

from geodata.errors import InputError, Violation
from geodata.geometry import distance_to_arc_km
from geodata.port_hours import UNKNOWN_HOURS, PortHours, from_cbp, parse_cbp, parse_span, weekly
from geodata.route import RoutePath
from geodata.timezones import hour_of_week, utc_offset_seconds

LANES = ("standard", "fast")
# Southbound commercial traffic queues at Mexican customs; no public feed, so a flat default.
SOUTHBOUND_DEFAULT_WAIT_MINUTES = 20.0
# side flips at one port closer than this along the route are a route hugging the line, not two passages
FLIP_KM = 5.0


@dataclass(frozen=True)
class Port:
    """A commercial land port of entry (coordinates of the cargo facility)."""

    port_number: str
    port_name: str
    crossing_name: str
    mx_city: str
    mx_state: str
    us_state: str
    lat: float
    lng: float
    time_zone: str
    commercial_lanes: int
    fast_lanes: int
    # commercial hours, local time (unknown: treated as open 24 h, and said so)
    hours: PortHours = UNKNOWN_HOURS


@dataclass(frozen=True)
class WaitObservation:
    """One live commercial-lane reading (CBP Border Wait Times)."""

    port_number: str
    lane: str
    wait_minutes: float | None
    observed_at_s: int
    operational_status: str = ""
    lanes_open: int = 0
    closed: bool = False
    hours: str = ""  # the port's CBP ``hours`` text on the record, when the feed gives it


@dataclass(frozen=True)
class WaitEstimate:
    """The expected wait for a lane at a time, with where it came from."""

    minutes: float
    source: str  # "live", "historical" or "default"
    observed_at_s: int = 0
    closed: bool = False
    operational_status: str = ""
    lanes_open: int = 0
    # when closed: the UTC second the lanes open (``minutes`` counts the time until then)
    opens_at_s: int = 0


@dataclass(frozen=True)
class Crossing:
    """A place where a route crosses the boundary at a port."""

    port: Port
    vertex_index: int  # last route vertex before the crossing
    direction: str  # "northbound" or "southbound"


@dataclass(frozen=True)
class BorderData:
    """Ports, boundary, hour-of-week wait profiles and the latest live observations."""

    ports: tuple[Port, ...]
    boundary: LineString
    profiles: Mapping[tuple[str, str], np.ndarray]  # (port, lane) -> 168 minutes, local time
    profile_source: str = "default"  # where profiles come from unless profile_sources says otherwise
    observations: Mapping[tuple[str, str], WaitObservation] = field(default_factory=dict)
    version: str = ""
    profile_sources: Mapping[tuple[str, str], str] = field(default_factory=dict)  # per (port, lane)

    @cached_property
    def us_side(self) -> Polygon:
        """The US side of the boundary, closed far to the north (prepared for fast point tests)."""
        polygon = _us_side(self.boundary)
        shapely.prepare(polygon)
        return polygon

    @cached_property
    def _band(self) -> tuple[float, float]:
        lats = np.asarray(self.boundary.coords)[:, 1]
        return float(lats.min()), float(lats.max())

    def on_us_side(self, lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
        """Whether each point lies on the US side; only points in the boundary's latitude band
        need the polygon test (south of it is Mexico, north of it the US)."""
        south, north = self._band
        result = lat > north
        band = np.flatnonzero((lat >= south) & (lat <= north))
        if len(band):
            result[band] = shapely.contains_xy(self.us_side, lng[band], lat[band])
        return result

    def port(self, port_number: str) -> Port | None:
        return next((p for p in self.ports if p.port_number == port_number), None)

    def expected_wait(self, port: Port, lane: str, at_utc_s: int, live_max_age_s: int) -> WaitEstimate:
        """Live reading when fresh enough, else the profile at the port's local hour of week.

        A truck arriving while the commercial lanes are closed (by the port's hours, or by a
        live "Lanes Closed" reading for as long as the reading holds) waits for the opening,
        then queues: the wait counts both, and says when the lanes open."""
        live = self.observations.get((port.port_number, lane))
        if live is not None and abs(at_utc_s - live.observed_at_s) <= live_max_age_s:
            if live.closed:
                return self._closed_until(port, lane, at_utc_s, live.observed_at_s + live_max_age_s, live)
            if live.wait_minutes is not None:
                return WaitEstimate(
                    live.wait_minutes, "live", live.observed_at_s, False, live.operational_status, live.lanes_open
                )
            # "Update Pending" and the like: no number, so the profile answers
        if port.hours.opens_at(port.time_zone, at_utc_s) > at_utc_s:
            return self._closed_until(port, lane, at_utc_s, at_utc_s, None)
        return self._profile_wait(port, lane, at_utc_s)

    def _profile_wait(self, port: Port, lane: str, at_utc_s: int) -> WaitEstimate:
        """The profile's queue at the port's local hour of week."""
        local = at_utc_s + utc_offset_seconds(port.time_zone, at_utc_s)
        how = int(hour_of_week(np.array([local]))[0])
        key = (port.port_number, lane) if (port.port_number, lane) in self.profiles else (port.port_number, "standard")
        profile = self.profiles.get(key, np.zeros(168))
        return WaitEstimate(float(profile[how]), self.profile_sources.get(key, self.profile_source))

    def _closed_until(
        self, port: Port, lane: str, at_utc_s: int, closed_until_s: int, live: WaitObservation | None
    ) -> WaitEstimate:
        """Closed at ``at_utc_s`` until at least ``closed_until_s``: the wait until the lanes
        are open by the port's hours after that, plus the queue the profile has then."""
        opens_s = port.hours.opens_at(port.time_zone, max(closed_until_s, at_utc_s))
        queue = self._profile_wait(port, lane, opens_s)
        minutes = (opens_s - at_utc_s) / 60.0 + queue.minutes
        if live is None:
            return WaitEstimate(minutes, queue.source, closed=True, opens_at_s=opens_s)
        return WaitEstimate(
            minutes, "live", live.observed_at_s, True, live.operational_status, live.lanes_open, opens_at_s=opens_s
        )

    def with_observations(self, observations: Mapping[tuple[str, str], WaitObservation]) -> BorderData:
        """A new version with these live observations."""
        return _versioned(replace(self, observations=dict(observations)))

    def merged(
        self, observations: list[WaitObservation], *, now_s: int
    ) -> tuple[BorderData, list[WaitObservation], int]:
        """A new version with ``observations`` merged in (all checked first, all or nothing).

        An observation replaces the one held for its port and lane only when it is newer,
        so a late or replayed feed never turns the clock back. Returns (data, the accepted
        observations, how many were not newer).
        """
        check_observations(observations, {p.port_number for p in self.ports}, now_s)
        held = dict(self.observations)
        accepted = []
        for obs in observations:
            key = (obs.port_number, obs.lane)
            if key not in held or obs.observed_at_s > held[key].observed_at_s:
                held[key] = obs
                accepted.append(obs)
        stale = len(observations) - len(accepted)
        ports = _ports_with_feed_hours(self.ports, accepted)  # a replayed old feed changes no hours
        if ports != self.ports:
            return _versioned(replace(self, ports=ports, observations=held)), accepted, stale
        return (self.with_observations(held) if accepted else self), accepted, stale

    def usable(self, observations: list[WaitObservation], now_s: int) -> list[WaitObservation]:
        """The observations that pass :func:`check_observations` one by one (for shared data,
        where one bad entry must not block the rest)."""
        ports = {p.port_number for p in self.ports}
        good = []
        for obs in observations:
            try:
                check_observations([obs], ports, now_s)
            except InputError:
                continue
            good.append(obs)
        return good


# a reading stamped more than this ahead of the server's clock is a broken feed, not the future
MAX_CLOCK_SKEW_S = 3600
EARLIEST_OBSERVATION_S = 946_684_800  # 2000-01-01


def check_observations(observations: list[WaitObservation], ports: set[str], now_s: int) -> None:
    """Raise an InputError listing every observation that cannot be used."""
    bad: list[Violation] = []
    for i, obs in enumerate(observations):
        where = f"observations[{i}]"
        if obs.port_number not in ports:
            bad.append(Violation(f"{where}.port_number", f"{obs.port_number!r} is not a commercial port of entry"))
        if obs.lane not in LANES:
            bad.append(Violation(f"{where}.lane", f"lane {obs.lane!r} is not one of {', '.join(LANES)}"))
        if obs.wait_minutes is not None and not (0 <= obs.wait_minutes <= 24 * 60):
            bad.append(Violation(f"{where}.wait_minutes", f"wait {obs.wait_minutes} min is outside 0..1440"))
        if not EARLIEST_OBSERVATION_S <= obs.observed_at_s <= now_s + MAX_CLOCK_SKEW_S:
            bad.append(
                Violation(f"{where}.observed_at", f"observed_at {obs.observed_at_s}s is before 2000 or in the future")
            )
        if obs.lanes_open < 0:
            bad.append(Violation(f"{where}.lanes_open", f"lanes_open {obs.lanes_open} is negative"))
        if obs.hours:
            try:
                parse_cbp(obs.hours)
            except ValueError as exc:
                bad.append(Violation(f"{where}.hours", f"hours {obs.hours[:60]!r}: {exc}"))
    if bad:
        raise InputError(bad)


def _ports_with_feed_hours(ports: tuple[Port, ...], observations: list[WaitObservation]) -> tuple[Port, ...]:
    """The ports, with the hours a CBP feed gives where they differ from those held."""
    texts = {obs.port_number: obs for obs in observations if obs.hours}
    out = []
    for port in ports:
        obs = texts.get(port.port_number)
        if obs is not None:  # checked by check_observations: the text parses
            hours = from_cbp(obs.hours, f"CBP feed {_day(obs.observed_at_s)}: {obs.hours}")
            if hours.intervals != port.hours.intervals:
                port = replace(port, hours=hours)
        out.append(port)
    return tuple(out)


def _day(epoch_s: int) -> str:
    return np.datetime_as_string(np.datetime64(epoch_s, "s"), unit="D")


def read_port_hours(path: Path) -> dict[str, PortHours]:
    """``port_hours.csv``: port number → weekly hours (columns weekday, saturday, sunday:
    ``HH:MM-HH:MM``, ``24h`` or ``closed``; and source)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["port_number"]: weekly(
                parse_span(row["weekday"]), parse_span(row["saturday"]), parse_span(row["sunday"]), row["source"]
            )
            for row in csv.DictReader(handle)
        }


def load_border_data(
    ports_csv: Path,
    boundary_geojson: Path,
    profiles_json: Path,
    extra_profiles: Path | None = None,
    port_hours_csv: Path | None = None,
) -> BorderData:
    """Load the seed (or configured) border files into a versioned :class:`BorderData`.

    ``extra_profiles`` (e.g. built from CBP historical data) override ``profiles_json``
    for the ports and lanes they cover; each profile keeps its own source. ``port_hours_csv``
    gives the ports' commercial hours (a port without any is open 24 h, and says so).
    """
    hours = read_port_hours(port_hours_csv) if port_hours_csv is not None else {}
    ports = tuple(replace(p, hours=hours.get(p.port_number, UNKNOWN_HOURS)) for p in _read_ports(ports_csv))
    boundary = _read_boundary(boundary_geojson)
    profiles, sources = _read_profiles(profiles_json)
    if extra_profiles is not None:
        more, more_sources = _read_profiles(extra_profiles)
        profiles.update(more)
        sources.update(more_sources)
    return _versioned(BorderData(ports, boundary, profiles, profile_sources=sources))


def _read_profiles(path: Path) -> tuple[dict[tuple[str, str], np.ndarray], dict[tuple[str, str], str]]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    source = str(document.get("source", "default"))
    profiles = {}
    for number, lanes in document["ports"].items():
        for lane, values in lanes.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (168,) or not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ValueError(f"{path}: profile {number}/{lane} must be 168 finite, non-negative minutes")
            profiles[(number, lane)] = values
    return profiles, dict.fromkeys(profiles, source)


def _read_ports(path: Path) -> list[Port]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            Port(
                port_number=row["port_number"],
                port_name=row["port_name"],
                crossing_name=row["crossing_name"],
                mx_city=row["mx_city"],
                mx_state=row["mx_state"],
                us_state=row["us_state"],
                lat=float(row["latitude"]),
                lng=float(row["longitude"]),
                time_zone=row["time_zone"],
                commercial_lanes=int(row["commercial_lanes"] or 0),
                fast_lanes=int(row["fast_lanes"] or 0),
            )
            for row in csv.DictReader(handle)
        ]


def _read_boundary(path: Path) -> LineString:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    geometry = document["geometry"] if document.get("type") == "Feature" else document
    line = shape(geometry)
    if not isinstance(line, LineString):
        raise ValueError(f"{path}: boundary must be a LineString")
    return line


def _versioned(data: BorderData) -> BorderData:
    digest = hashlib.sha256()
    digest.update(json.dumps([_port_record(p) for p in data.ports], sort_keys=True).encode())
    digest.update(data.boundary.wkb)
    for key in sorted(data.profiles):
        digest.update(repr((key, data.profile_sources.get(key, data.profile_source))).encode())
        digest.update(np.ascontiguousarray(data.profiles[key]).tobytes())
    for key in sorted(data.observations):
        digest.update(json.dumps(data.observations[key].__dict__, sort_keys=True).encode())
    return replace(data, version=f"border-{digest.hexdigest()[:12]}")


def _port_record(port: Port) -> dict[str, object]:
    """A port as JSON for the version hash (its hours as intervals and source)."""
    record: dict[str, object] = dict(port.__dict__)
    record["hours"] = [list(port.hours.intervals), port.hours.source]
    return record


def _us_side(boundary: LineString) -> Polygon:
    """The US side of the boundary, as a polygon closed far to the north."""
    coords = list(boundary.coords)
    west, east = coords[0], coords[-1]
    return Polygon(
        [*coords, (east[0] + 20, east[1]), (east[0] + 20, 60.0), (west[0] - 20, 60.0), (west[0] - 20, west[1])]
    )


def detect_crossings(path: RoutePath, border: BorderData, max_port_km: float = 15.0) -> list[Crossing]:
    """Ports where the route crosses the boundary, in travel order; none for one-sided routes."""
    on_us_side = border.on_us_side(path.lat, path.lng)
    changes = np.flatnonzero(on_us_side[1:] != on_us_side[:-1])
    along_km = path.along_km
    crossings: list[Crossing] = []
    for index in changes:
        port = _port_at(path, int(index), border, max_port_km)
        if port is None:
            continue
        direction = "northbound" if on_us_side[index + 1] else "southbound"
        previous = crossings[-1] if crossings else None
        if previous and previous.port == port and along_km[index] - along_km[previous.vertex_index] < FLIP_KM:
            # a route hugging the line near a port flips sides back and forth: keep the net passage
            crossings.pop()
            continue
        crossings.append(Crossing(port, int(index), direction))
    return crossings


def _port_at(path: RoutePath, index: int, border: BorderData, max_port_km: float) -> Port | None:
    """The port nearest the segment that crosses, if one is within ``max_port_km`` of it (the
    distance to the segment itself, so a long segment is matched as the same line drawn densely)."""
    if not border.ports:
        return None
    lat = np.array([p.lat for p in border.ports])
    lng = np.array([p.lng for p in border.ports])
    start = (float(path.lat[index]), float(path.lng[index]))
    end = (float(path.lat[index + 1]), float(path.lng[index + 1]))
    distance = distance_to_arc_km(lat, lng, start, end)
    best = int(np.argmin(distance))
    return border.ports[best] if distance[best] <= max_port_km else None
