"""Live trip monitoring: a per-trip state machine fed one position at a time → alerts.

No gRPC here (the servicer in ``service.grpc.servicer`` adapts it), so it can be replayed in-process.

Alerts, each raised once while its condition lasts and again only after it clears and recurs:

- *entered high-risk cell*: the position's H3 cell is at HIGH or above at its local hour
  (``rate >= rate_at_level("high")``). Hotspots come in clusters of adjacent cells, so the
  condition is "inside a high-risk zone": it clears only after ``ZONE_CLEAR_KM`` driven outside
  high-risk cells; within a zone a cell of a higher level than any alerted raises a new alert.
- *stopped in high-risk cell*: speed below ``STOP_SPEED_KMH`` and within ``STOP_RADIUS_M`` of
  where the stop began, for longer than the dwell threshold, in a high-risk cell. One per stop;
  severity one level up (parked trucks are the easiest targets, cf. ``STOP_RISK_MULTIPLIER``).
- *left planned route* / *returned to route*: great-circle distance to the planned polyline
  above the threshold; back under half of it (hysteresis, so GPS noise does not flap).
- *approaching crossing*: within ``approach_km`` of a port of entry, once per port and trip,
  with the port's current expected wait (as ``ListBorderCrossings`` computes it). With a
  planned route only the ports it crosses at count, else the nearest port in reach.

Resume: :class:`TripStore` keeps the state of trips with an id (bounded, idle TTL), so a
client that reconnects with the same id continues without repeated alerts; a position at or
before the trip's last one is acknowledged as a duplicate and changes nothing.

Across replicas: given a :class:`SharedTrips` (Redis, in ``service.store.trips``), every change
of a trip's state is written there too, with a revision: a session reads the trip when it starts
(so a stream resumed on another replica continues where the first one stopped), and each write
succeeds only when the revision is still the one it read. When another writer got there first
(the old stream on another replica, still open), the session reads the newer state, keeps
whichever has the later position, and applies its position again: no alert twice, counts
continue. The planned route is written once under its own key (by a digest of its points) and
referenced. While the shared store is unusable, trips go on per process (fail open).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict, Unpack

import h3.api.basic_int as h3i
import numpy as np

from geodata.border import BorderData, Port, detect_crossings
from geodata.geometry import EARTH_RADIUS_KM, haversine_km, to_xyz
from geodata.layers import RiskLayer
from geodata.route import RoutePath
from geodata.timezones import hour_of_week, utc_offset_seconds, zone_at
from service.usecases.errors import ConflictError
from service.usecases.scoring import LEVELS, level_of_rate, rate_at_level

STOP_SPEED_KMH = 3.0
STOP_RADIUS_M = 100.0
ZONE_CLEAR_KM = 5.0
DEFAULT_OFF_ROUTE_M = 1000.0
DEFAULT_DWELL_S = 15 * 60.0
DEFAULT_APPROACH_KM = 15.0


@dataclass(frozen=True)
class Thresholds:
    """A trip's alert thresholds (defaults where the client sets none)."""

    off_route_m: float = DEFAULT_OFF_ROUTE_M
    dwell_s: float = DEFAULT_DWELL_S
    approach_km: float = DEFAULT_APPROACH_KM
    lane: str = "standard"


@dataclass(frozen=True)
class Position:
    """One validated position; ``speed_kmh`` None means derive it from the previous one."""

    time_s: float
    lat: float
    lng: float
    speed_kmh: float | None = None


@dataclass(frozen=True)
class Alert:
    """One event; ``severity`` is a level name of ``service.usecases.scoring.LEVELS``."""

    kind: str  # entered_high_risk_cell, stopped_in_high_risk_cell, left_planned_route, returned_to_route,
    # approaching_crossing
    severity: str
    reason: str
    time_s: float
    lat: float
    lng: float
    cell: int
    risk: float
    distance_m: float = 0.0
    dwell_s: float = 0.0
    port: Port | None = None
    wait_minutes: float = 0.0
    wait_source: str = ""
    closed: bool = False


@dataclass(frozen=True)
class Environment:
    """What a position is judged against: the layer and border data being served."""

    layer: RiskLayer
    border: BorderData
    live_max_age_s: int = 3600


@dataclass
class TripState:
    """Everything remembered about one trip between positions (and streams)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    route: RoutePath | None = None
    route_ports: tuple[Port, ...] | None = None  # ports the planned route crosses at
    last: Position | None = None
    processed: int = 0
    # high-risk zone
    in_zone: bool = False
    zone_level: int = -1
    outside_km: float = 0.0
    # stop
    stop_start: Position | None = None
    stop_alerted: bool = False
    # route
    off_route: bool = False
    # ports already announced
    announced: set[str] = field(default_factory=set)
    touched_s: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # the shared store: the revision this state was read at or last written as, the route's id there
    revision: int = 0
    route_id: str | None = None

    def set_route(self, route: RoutePath, border: BorderData) -> None:
        self.route = route
        self.route_id = route_digest(route)
        self.route_ports = tuple(c.port for c in detect_crossings(route, border))

    def to_record(self) -> dict[str, Any]:
        """Everything of the trip but its route (referenced by ``route_id``), as JSON-able values."""

        def position(p: Position | None) -> list[float | None] | None:
            return None if p is None else [p.time_s, p.lat, p.lng, p.speed_kmh]

        t = self.thresholds
        return {
            "v": RECORD_VERSION,
            "thresholds": [t.off_route_m, t.dwell_s, t.approach_km, t.lane],
            "route_id": self.route_id,
            "route_ports": None if self.route_ports is None else [p.port_number for p in self.route_ports],
            "last": position(self.last),
            "processed": self.processed,
            "zone": [self.in_zone, self.zone_level, self.outside_km],
            "stop_start": position(self.stop_start),
            "stop_alerted": self.stop_alerted,
            "off_route": self.off_route,
            "announced": sorted(self.announced),
        }

    def restore(self, record: dict[str, Any], route: RoutePath | None, border: BorderData) -> None:
        """Take the state of ``record`` (from :meth:`to_record`) and ``route`` (its ``route_id``'s)."""

        def position(v: list[Any] | None) -> Position | None:
            return None if v is None else Position(float(v[0]), float(v[1]), float(v[2]), v[3])

        off, dwell, approach, lane = record["thresholds"]
        self.thresholds = Thresholds(float(off), float(dwell), float(approach), str(lane))
        self.route, self.route_id = route, record["route_id"] if route is not None else None
        ports = record["route_ports"]
        found = [border.port(n) for n in ports] if ports is not None else None
        self.route_ports = None if found is None else tuple(p for p in found if p is not None)
        self.last = position(record["last"])
        self.processed = int(record["processed"])
        in_zone, zone_level, outside_km = record["zone"]
        self.in_zone, self.zone_level, self.outside_km = bool(in_zone), int(zone_level), float(outside_km)
        self.stop_start = position(record["stop_start"])
        self.stop_alerted = bool(record["stop_alerted"])
        self.off_route = bool(record["off_route"])
        self.announced = set(record["announced"])

    def feed(self, position: Position, env: Environment) -> tuple[bool, list[Alert]]:
        """Process one position: (duplicate, alerts). Call with ``lock`` held."""
        if self.last is not None and position.time_s <= self.last.time_s:
            return True, []
        moved_km = 0.0
        speed = position.speed_kmh
        if self.last is not None:
            moved_km = float(haversine_km(self.last.lat, self.last.lng, position.lat, position.lng))
            if speed is None:
                speed = moved_km / ((position.time_s - self.last.time_s) / 3600.0)
        cell = h3i.latlng_to_cell(position.lat, position.lng, env.layer.resolution)
        risk = cell_rate(env.layer, cell, position)
        level = LEVELS.index(level_of_rate(risk))
        high = risk >= rate_at_level("high")
        here = _Here(position, cell, risk)
        alerts: list[Alert] = []
        alerts += self._zone(here, high, level, moved_km)
        alerts += self._stop(here, high, level, speed)
        alerts += self._route(here, level)
        alerts += self._approach(here, env)
        self.last = position
        self.processed += 1
        return False, alerts

    def _zone(self, here: _Here, high: bool, level: int, moved_km: float) -> list[Alert]:
        if not high:
            if self.in_zone:
                self.outside_km += moved_km
                if self.outside_km >= ZONE_CLEAR_KM:
                    self.in_zone, self.zone_level = False, -1
            return []
        self.outside_km = 0.0
        if self.in_zone and level <= self.zone_level:
            return []
        again = "a higher-risk cell" if self.in_zone else "a high-risk cell"
        self.in_zone, self.zone_level = True, level
        return [
            here.alert(
                "entered_high_risk_cell",
                LEVELS[level],
                f"entered {again} ({LEVELS[level]}: {here.risk:.2e} incidents per truck-hour at this local hour)",
            )
        ]

    def _stop(self, here: _Here, high: bool, level: int, speed: float | None) -> list[Alert]:
        p = here.position
        slow = speed is not None and speed < STOP_SPEED_KMH
        if self.stop_start is not None:
            away_m = float(haversine_km(self.stop_start.lat, self.stop_start.lng, p.lat, p.lng)) * 1000
            if not slow and away_m > STOP_RADIUS_M:
                self.stop_start, self.stop_alerted = None, False
        if slow and self.stop_start is None:
            self.stop_start = p
        if self.stop_start is None or self.stop_alerted or not high:
            return []
        dwell = p.time_s - self.stop_start.time_s
        if dwell < self.thresholds.dwell_s:
            return []
        self.stop_alerted = True
        severity = LEVELS[min(level + 1, len(LEVELS) - 1)]
        minutes = dwell / 60
        return [
            here.alert(
                "stopped_in_high_risk_cell",
                severity,
                f"stopped {minutes:.0f} min in a {LEVELS[level]}-risk cell (alert after "
                f"{self.thresholds.dwell_s / 60:.0f} min): parked trucks are the easiest targets",
                dwell_s=dwell,
            )
        ]

    def _route(self, here: _Here, level: int) -> list[Alert]:
        if self.route is None:
            return []
        p = here.position
        off_m = distance_to_route_km(self.route, p.lat, p.lng) * 1000
        limit = self.thresholds.off_route_m
        if not self.off_route and off_m > limit:
            self.off_route = True
            severity = LEVELS[max(level, LEVELS.index("moderate"))]
            return [
                here.alert(
                    "left_planned_route",
                    severity,
                    f"{off_m / 1000:.1f} km off the planned route (threshold {limit:.0f} m)",
                    distance_m=off_m,
                )
            ]
        if self.off_route and off_m <= limit / 2:
            self.off_route = False
            return [
                here.alert("returned_to_route", "low", f"back on the planned route ({off_m:.0f} m)", distance_m=off_m)
            ]
        return []

    def _approach(self, here: _Here, env: Environment) -> list[Alert]:
        p = here.position
        ports = self.route_ports if self.route_ports else env.border.ports
        candidates = [port for port in ports if port.port_number not in self.announced]
        if not candidates:
            return []
        lats = np.array([port.lat for port in candidates])
        lngs = np.array([port.lng for port in candidates])
        km = haversine_km(p.lat, p.lng, lats, lngs)
        nearest = int(np.argmin(km))
        if km[nearest] > self.thresholds.approach_km:
            return []
        port = candidates[nearest]
        if not self.route_ports:  # without a route: one approach per trip and area, to the nearest port
            self.announced.update(q.port_number for q, d in zip(candidates, km.tolist(), strict=True) if d <= 30.0)
        self.announced.add(port.port_number)
        wait = env.border.expected_wait(port, self.thresholds.lane, int(p.time_s), env.live_max_age_s)
        minutes = wait.minutes
        if wait.closed:
            opens = f" until {_utc_text(wait.opens_at_s)}" if wait.opens_at_s else ""
            severity, state = "high", f"commercial lanes CLOSED{opens} (expected wait {minutes:.0f} min)"
        else:
            severity = "moderate" if minutes >= 60 else "low"
            state = f"expected {self.thresholds.lane} wait {minutes:.0f} min ({wait.source})"
        name = f"{port.port_name} ({port.crossing_name})" if port.crossing_name else port.port_name
        return [
            here.alert(
                "approaching_crossing",
                severity,
                f"{km[nearest]:.1f} km from {name}: {state}",
                distance_m=float(km[nearest]) * 1000,
                port=port,
                wait_minutes=minutes,
                wait_source=wait.source,
                closed=wait.closed,
            )
        ]


def _utc_text(epoch_s: int) -> str:
    """``2025-03-12 13:00 UTC``: when a closed port opens, in an alert's message."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


class _AlertExtras(TypedDict, total=False):
    """The optional fields of an :class:`Alert`, by kind."""

    distance_m: float
    dwell_s: float
    port: Port | None
    wait_minutes: float
    wait_source: str
    closed: bool


@dataclass(frozen=True)
class _Here:
    position: Position
    cell: int
    risk: float

    def alert(self, kind: str, severity: str, reason: str, **extra: Unpack[_AlertExtras]) -> Alert:
        p = self.position
        return Alert(kind, severity, reason, p.time_s, p.lat, p.lng, self.cell, self.risk, **extra)


RECORD_VERSION = 1


def route_digest(route: RoutePath) -> str:
    """A planned route's id in the shared store: the digest of its points."""
    digest = hashlib.sha256(np.ascontiguousarray(route.lat, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(route.lng, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


SaveOutcome = Literal["saved", "conflict", "unavailable"]


class SharedTrips(Protocol):
    """Trip states every replica sees (Redis in ``service.store.trips``), each with a revision
    (0: no such trip). Every method answers, never raises: ``None`` / ``"unavailable"`` when the
    store cannot be used right now (the caller then goes on with its own state)."""

    def load(self, key: str) -> tuple[int, dict[str, Any] | None] | None:
        """(revision, record) of the trip (``(0, None)`` when there is none), or None when unusable."""
        ...

    def save(self, key: str, record: dict[str, Any], revision: int) -> SaveOutcome:
        """Write ``record`` as revision ``revision + 1`` if the trip is still at ``revision``
        (and refresh the TTL of the trip and of its route)."""
        ...

    def save_route(self, route_id: str, route: RoutePath) -> bool:
        """Store a planned route under its id (False when unusable)."""
        ...

    def load_route(self, route_id: str) -> RoutePath | None: ...


def cell_rate(layer: RiskLayer, cell: int, position: Position) -> float:
    """The layer's rate in ``cell`` at the position's local hour of week."""
    zone = zone_at(position.lat, position.lng)
    at = int(position.time_s)
    how = hour_of_week(np.array([at + utc_offset_seconds(zone, at)]))
    return float(layer.rates(np.array([cell], dtype=np.uint64), how.astype(np.intp))[0])


def distance_to_route_km(route: RoutePath, lat: float, lng: float) -> float:
    """Great-circle distance from a point to the polyline (to the nearest segment, clamped)."""
    xyz = to_xyz(route.lat, route.lng)
    p = to_xyz(np.array([lat]), np.array([lng]))[0]
    a, b = xyz[:-1], xyz[1:]
    normal = np.cross(a, b)
    norm = np.linalg.norm(normal, axis=1)
    ok = norm > 1e-15
    normal[ok] /= norm[ok][:, None]
    # angle to the great circle of each segment, valid where the foot falls inside the segment
    to_circle = np.abs(np.arcsin(np.clip(normal @ p, -1.0, 1.0)))
    foot = p - (normal @ p)[:, None] * normal
    inside = (
        ok
        & (np.einsum("ij,ij->i", np.cross(a, foot), normal) >= 0)
        & (np.einsum("ij,ij->i", np.cross(foot, b), normal) >= 0)
    )
    ends = np.arccos(np.clip(xyz @ p, -1.0, 1.0))
    best = float(ends.min())
    if inside.any():
        best = min(best, float(to_circle[inside].min()))
    return best * EARTH_RADIUS_KM


class TripStore:
    """Trip states by id: at most ``max_trips``, each forgotten after ``ttl_s`` idle (LRU).

    In-process; with ``shared`` (every replica's store, e.g. Redis) this is the replica's copy,
    and sessions keep the shared one up to date (see :class:`TripSession`)."""

    def __init__(
        self,
        max_trips: int = 10_000,
        ttl_s: float = 2 * 3600,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedTrips | None = None,
    ):
        self._trips: OrderedDict[str, TripState] = OrderedDict()
        self._max, self._ttl, self._clock = max_trips, ttl_s, clock
        self._lock = threading.Lock()
        self.shared = shared

    def get(self, trip_id: str) -> tuple[TripState, bool]:
        """The trip's state and whether it existed (a new one is stored)."""
        now = self._clock()
        with self._lock:
            while self._trips:
                oldest_id, oldest = next(iter(self._trips.items()))
                full = len(self._trips) >= self._max and trip_id not in self._trips
                if not full and now - oldest.touched_s <= self._ttl:
                    break
                del self._trips[oldest_id]
            state = self._trips.get(trip_id)
            existed = state is not None
            if state is None:
                state = self._trips[trip_id] = TripState(touched_s=now)
            self._trips.move_to_end(trip_id)
            state.touched_s = now
            return state, existed

    def touch(self, trip_id: str) -> None:
        with self._lock:
            state = self._trips.get(trip_id)
            if state is not None:
                state.touched_s = self._clock()
                self._trips.move_to_end(trip_id)

    def __len__(self) -> int:
        return len(self._trips)


@dataclass(frozen=True)
class Acknowledgement:
    """What one position of a trip produced."""

    duplicate: bool  # at or before the last position processed: changed nothing
    alerts: list[Alert]
    processed: int  # positions of the trip processed so far
    acknowledged_s: float  # the time of the last position processed
    resumed: bool  # the first position of a session that continued a stored trip


class TripSession:
    """One stream of positions of one trip: the trip's state is taken from the store under ``key``
    (resumed when it is there, in this replica or in the shared store) or, without a key, kept for
    this session only."""

    MAX_ATTEMPTS = 5  # writes lost to other writers before the position is refused as a conflict

    def __init__(self, store: TripStore, key: str | None) -> None:
        self._store = store
        self._key = key
        self._shared = store.shared if key else None
        if key:
            self.state, self.resumed = store.get(key)
        else:
            self.state, self.resumed = TripState(), False
        self._first = True

    def feed(
        self,
        position: Position,
        env: Environment,
        route: RoutePath | None = None,
        thresholds: Thresholds | None = None,
    ) -> Acknowledgement:
        """Take a new planned route and thresholds when given, then the position."""
        state = self.state
        with state.lock:
            if self._first and self._shared is not None:
                self.resumed = self._pull(state, env) or self.resumed
            duplicate, alerts = self._apply(state, position, env, route, thresholds)
            processed = state.processed
            acknowledged = state.last.time_s if state.last is not None else position.time_s
        if self._key:
            self._store.touch(self._key)
        first, self._first = self._first, False
        return Acknowledgement(duplicate, alerts, processed, acknowledged, self.resumed and first)

    def _apply(
        self,
        state: TripState,
        position: Position,
        env: Environment,
        route: RoutePath | None,
        thresholds: Thresholds | None,
    ) -> tuple[bool, list[Alert]]:
        shared, key = self._shared, self._key
        for _ in range(self.MAX_ATTEMPTS):
            before = state.to_record() if shared is not None else None
            before_route = state.route  # kept with the record: restoring must not need Redis for it
            if route is not None:
                state.set_route(route, env.border)
            if thresholds is not None:
                state.thresholds = thresholds
            duplicate, alerts = state.feed(position, env)
            if shared is None or key is None or before is None or (duplicate and state.to_record() == before):
                return duplicate, alerts
            if route is not None and state.route_id is not None and not shared.save_route(state.route_id, route):
                return duplicate, alerts  # unusable: this replica's state goes on alone
            outcome = shared.save(key, state.to_record(), state.revision)
            if outcome != "conflict":
                if outcome == "saved":
                    state.revision += 1
                return duplicate, alerts
            # another writer moved the trip on: take the newer of the two and apply this position again
            theirs = shared.load(key)
            if theirs is None:
                return duplicate, alerts
            revision, record = theirs
            ours_s = _last_time(before) or float("-inf")
            theirs_s = _last_time(record)
            if record is None or theirs_s is None or theirs_s < ours_s or not self._restore(state, record, env):
                state.restore(before, before_route, env.border)  # ours is further along (or theirs unreadable)
            state.revision = revision
        # every write lost: the state holds the last one read back, without this position, so its
        # alerts were never recorded and must not be sent (the other writer may send them too)
        raise ConflictError(
            f"trip changed by other streams {self.MAX_ATTEMPTS} times while this position was applied;"
            " nothing was recorded: send it again"
        )

    def _pull(self, state: TripState, env: Environment) -> bool:
        """Take the shared state when it is newer than this replica's copy: whether it had the trip."""
        assert self._shared is not None and self._key is not None
        found = self._shared.load(self._key)
        if found is None:
            return False
        revision, record = found
        if record is None:
            state.revision = 0  # not (or no longer) shared: the next write creates it
            return False
        if revision != state.revision:
            if not self._restore(state, record, env):
                return False  # unreadable (another version wrote it?): this replica's copy goes on
            state.revision = revision
        return True

    def _restore(self, state: TripState, record: dict[str, Any], env: Environment) -> bool:
        """Take ``record``; False (``state`` unchanged) when it cannot be read."""
        if record.get("v") != RECORD_VERSION:
            return False
        route_id = record.get("route_id")
        route = state.route if route_id is not None and route_id == state.route_id else None
        if route is None and route_id is not None and self._shared is not None:
            route = self._shared.load_route(route_id)
        saved = state.to_record(), state.route
        try:
            state.restore(record, route, env.border)
        except (KeyError, TypeError, ValueError, IndexError):
            state.restore(saved[0], saved[1], env.border)
            return False
        return True


def _last_time(record: dict[str, Any] | None) -> float | None:
    """The time of a record's last position (None: none, or unreadable)."""
    try:
        return float(record["last"][0]) if record is not None and record.get("last") is not None else None
    except (KeyError, TypeError, ValueError, IndexError):
        return None
