"""MonitorTrip state shared by every replica through Redis (the ``SharedTrips`` of
:mod:`service.usecases.trip_monitor`), so a stream resumed on another replica continues there.

Keys under the cache's prefix (``-v2``: values became sealed, so replicas of the version before
keep their own keys during a rolling upgrade):

- ``trip-v2:<tenant>/<trip id>``: a hash of ``rev`` (a revision, counting writes) and ``state``
  (the trip's record as JSON, sealed). A write is a Lua script that checks the revision it was given
  is still the one held (another replica's write in between makes it a conflict, which the use
  case resolves), writes, and sets the TTL of the trip and of its route;
- ``trip-route-v2:<digest>``: a planned route's points (little-endian float64 latitudes, then
  longitudes, sealed), written once per route and shared by every trip that plans it.

Values are sealed like cached answers (:class:`~service.store.redis_client.EntrySigner`: a
checksum, or an HMAC with ``ROUTERISK_CACHE_HMAC_KEY``, over the key and the value): a corrupted
or planted state is no state (counted in ``routerisk_cache_rejected_total``), so a writer
without the key cannot make a replica send a trip's alerts, or skip them.

Every call goes through the circuit breaker with the cache's timeout. Redis unusable: the
use case goes on with each replica's own copy (one WARNING when sharing stops, one INFO when it
comes back). An entry that cannot be read is no entry.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Literal, cast

import numpy as np

from geodata.errors import InputError
from geodata.route import RoutePath, from_points
from service.store.redis_client import CACHE_REJECTED, RedisCache

log = logging.getLogger(__name__)

# KEYS: the trip's hash, its route key ('' when none); ARGV: expected revision, record JSON, TTL in ms
_SAVE_IF_REVISION = """
local held = tonumber(redis.call('hget', KEYS[1], 'rev') or '0') or 0
if held ~= tonumber(ARGV[1]) then return 0 end
redis.call('hset', KEYS[1], 'rev', held + 1, 'state', ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[3])
if KEYS[2] ~= '' then redis.call('pexpire', KEYS[2], ARGV[3]) end
return held + 1
"""

_UNUSABLE = object()


class RedisTrips:
    """Trip states in Redis, each forgotten ``ttl_s`` after its last write."""

    def __init__(self, redis_cache: RedisCache, ttl_s: float) -> None:
        self._cache = redis_cache
        self._client = redis_cache.client
        self._signer = redis_cache.signer
        self._prefix = redis_cache.prefix
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._save = self._client.register_script(_SAVE_IF_REVISION)
        self._lock = threading.Lock()
        self._sharing = True

    def _trip_key(self, key: str) -> str:
        return f"{self._prefix}trip-v2:{key}"

    def _route_key(self, route_id: str) -> str:
        return f"{self._prefix}trip-route-v2:{route_id}"

    def _open(self, full_key: str, entry: bytes, what: str) -> bytes | None:
        """The value of a sealed entry, or None (counted, logged) when it does not verify."""
        value, reason = self._signer.open(full_key, entry)
        if value is None:
            CACHE_REJECTED.labels(reason).inc()
            log.warning("shared trip entry failed verification; skipped", extra={"entry": what, "reason": reason})
        return value

    def _call(self, operation: str, fn: Any) -> Any:
        result = self._cache.breaker.call(operation, fn, _UNUSABLE)
        self._note(result is not _UNUSABLE)
        return result

    def _note(self, usable: bool) -> None:
        with self._lock:
            changed, self._sharing = self._sharing != usable, usable
        if changed and not usable:
            log.warning("trip state not shared: redis unusable; open trips go on per replica")
        elif changed:
            log.info("trip state shared through redis again")

    def load(self, key: str) -> tuple[int, dict[str, Any] | None] | None:
        def read() -> list[bytes | None]:
            return cast("list[bytes | None]", self._client.hmget(self._trip_key(key), ["rev", "state"]))

        got = self._call("trip-load", read)
        if got is _UNUSABLE:
            return None
        revision, sealed = got
        if revision is None or sealed is None:
            return 0, None
        full_key = self._trip_key(key)
        if not revision.isdigit():  # the revision check in Redis could never pass: no usable trip
            log.warning("shared trip with an unreadable revision skipped")
            return 0, None
        # the seal covers the revision the state was written as: an older state of the same trip
        # written back (its alerts not yet announced) does not verify under the revision held now
        state = self._open(f"{full_key}|state|{int(revision)}", sealed, "state")
        if state is None:
            return int(revision), None
        try:
            record = json.loads(state)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            return int(revision), record
        except ValueError as exc:
            log.warning("unreadable shared trip state skipped", extra={"error": str(exc)[:200]})
            return int(revision), None

    def save(self, key: str, record: dict[str, Any], revision: int) -> Literal["saved", "conflict", "unavailable"]:
        route_id = record.get("route_id")
        keys = [self._trip_key(key), self._route_key(route_id) if route_id else ""]
        sealed_as = f"{keys[0]}|state|{revision + 1}"  # the revision the script writes it as
        state = self._signer.seal(sealed_as, json.dumps(record, separators=(",", ":")).encode())
        args: list[bytes | int] = [revision, state, self._ttl_ms]
        written = self._call("trip-save", lambda: int(self._save(keys=keys, args=args)))
        if written is _UNUSABLE:
            return "unavailable"
        return "saved" if written else "conflict"

    def save_route(self, route_id: str, route: RoutePath) -> bool:
        points = np.concatenate([np.asarray(route.lat, dtype="<f8"), np.asarray(route.lng, dtype="<f8")]).tobytes()
        if len(points) > self._cache.max_value_bytes:
            return False
        name = self._route_key(route_id)
        sealed = self._signer.seal(name, points)
        return self._call("trip-route-save", lambda: self._client.set(name, sealed, px=self._ttl_ms)) is not _UNUSABLE

    def load_route(self, route_id: str) -> RoutePath | None:
        name = self._route_key(route_id)
        sealed = self._call("trip-route-load", lambda: cast("bytes | None", self._client.get(name)))
        if sealed is _UNUSABLE or sealed is None:
            return None
        raw = self._open(name, sealed, "route")
        if raw is None or len(raw) % 16 or not raw:
            return None
        points = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        half = len(points) // 2
        try:  # checked as any route is: what Redis holds is not trusted blindly
            return from_points(points[:half], points[half:], max_points=half + 1)
        except InputError:
            log.warning("unreadable shared planned route skipped")
            return None
