"""State every replica shares through Redis: live border waits and the active layer.

- Live border observations are written once (by the replica that received them or
  polled the feed) into a hash, and a counter is bumped; every replica's
  :class:`BorderSync` notices the counter and merges what it has not seen (merging keeps
  only newer readings, so the order of arrival does not matter).
- The active layer version is a key that ``routerisk layers activate`` sets; the layer
  watcher of every replica reads it, so they all switch within one poll interval.
Redis calls go through the circuit breaker: with Redis gone, each replica keeps what
it has and goes on serving.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import cast

from prometheus_client import Counter

from geodata.border import WaitObservation
from service.store.redis_client import RedisCache

log = logging.getLogger(__name__)


# KEYS: observations hash, their observed_at hash, revision; ARGV: revision token, then
# (field, observed_at, json) triples. A field is written only when newer than the one held.
_PUBLISH_NEWER = """
local written = 0
for i = 2, #ARGV, 3 do
  local held = tonumber(redis.call('hget', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > held then
    redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 2])
    redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1])
    written = written + 1
  end
end
if written > 0 then redis.call('set', KEYS[3], ARGV[1]) end
return written
"""


OBSERVATIONS_SKIPPED = Counter(
    "routerisk_shared_observations_skipped",
    "Shared border observations (Redis) skipped one by one: unreadable, of the wrong type, or not"
    " sealed by a replica (seal)",
    ["reason"],
)
for _reason in ("unreadable", "type", "seal"):
    OBSERVATIONS_SKIPPED.labels(_reason)

# the JSON type each field of a shared observation must have (bool is not a number here)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "port_number": (str,),
    "lane": (str,),
    "wait_minutes": (int, float, type(None)),
    "observed_at_s": (int,),
    "operational_status": (str,),
    "lanes_open": (int,),
    "closed": (bool,),
    # the port's CBP hours text (geodata/port_hours.py); absent from entries of older replicas
    "hours": (str,),
}
_REQUIRED_FIELDS = ("port_number", "lane", "wait_minutes", "observed_at_s")


def _decode_observation(raw: bytes | None) -> WaitObservation | None:
    """A shared observation, or None (counted, logged) when it cannot be read or a field has the
    wrong type: one bad entry is skipped, the others are merged."""
    if raw is None:  # failed its seal: counted where it was opened
        return None
    try:
        data = json.loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        OBSERVATIONS_SKIPPED.labels("unreadable").inc()
        log.warning("unreadable shared border observation skipped", extra={"error": str(exc)[:200]})
        return None
    problem = _type_problem(data)
    if problem:
        OBSERVATIONS_SKIPPED.labels("type").inc()
        log.warning("shared border observation of the wrong type skipped", extra={"error": problem})
        return None
    return WaitObservation(**data)


def _type_problem(data: object) -> str:
    if not isinstance(data, dict):
        return f"a {type(data).__name__}, not an object"
    unknown = set(data) - set(_FIELD_TYPES)
    if unknown:
        return f"unknown fields {sorted(unknown)[:5]}"[:200]
    for name in _REQUIRED_FIELDS:
        if name not in data:
            return f"{name} is missing"
    for name, value in data.items():
        types = _FIELD_TYPES[name]
        if isinstance(value, bool) and bool not in types:
            return f"{name} is a bool"
        if not isinstance(value, types):
            return f"{name} is a {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} is not finite"
    return ""


# the border keys' version: entries became sealed in v2, so replicas of the version before
# (which wrote plain JSON to ``border:obs``) and this one each keep their own during an upgrade
_OBS, _OBS_AT, _REV = "border:obs-v2", "border:obs-at-v2", "border:rev-v2"


class SharedState:
    """Keys under the cache's prefix: ``border:obs-v2`` and ``border:obs-at-v2`` (hashes by
    port|lane), ``border:rev-v2`` (a token per publication), ``layers:active``.

    Each observation is sealed like a cached answer (:class:`EntrySigner`: a checksum, or an
    HMAC with ``ROUTERISK_CACHE_HMAC_KEY``) over the hash's key and field, so a corrupted or
    planted reading is skipped and counted instead of becoming a wait that dispatchers read.
    """

    def __init__(self, redis_cache: RedisCache) -> None:
        self._cache = redis_cache
        self._client = redis_cache.client
        self._prefix = redis_cache.prefix
        self._publish = self._client.register_script(_PUBLISH_NEWER)

    def _key(self, name: str) -> str:
        return self._prefix + name

    def publish_observations(self, observations: list[WaitObservation]) -> bool:
        """Store observations for every replica (a reading replaces a held one only when newer,
        checked inside Redis); False when Redis could not take them."""
        if not observations:
            return True
        args: list[str | bytes] = [uuid.uuid4().hex]
        for o in observations:
            field = f"{o.port_number}|{o.lane}"
            sealed = self._cache.signer.seal(self._field_key(field), json.dumps(asdict(o)).encode())
            args += [field, str(o.observed_at_s), sealed]
        keys = [self._key(_OBS), self._key(_OBS_AT), self._key(_REV)]
        return self._cache.breaker.call("border-publish", lambda: bool(self._publish(keys=keys, args=args)), False)

    def observations_since(self, revision: str | None) -> tuple[str, list[WaitObservation]] | None:
        """(revision, all observations) when the revision changed from ``revision``, else None.

        A revision is a random token per publication, so a Redis that restarted empty and
        counted again can never look unchanged.
        """

        def read() -> tuple[str, dict[bytes, bytes]] | None:
            # replies are bytes: the client is made without decode_responses
            current = cast("bytes | None", self._client.get(self._key(_REV)))
            if current is None or current.decode() == revision:
                return None
            return current.decode(), cast("dict[bytes, bytes]", self._client.hgetall(self._key(_OBS)))

        update = self._cache.breaker.call("border-read", read, None)
        if update is None:
            return None
        current, raw = update
        opened = (self._open(field, entry) for field, entry in raw.items())
        return current, [obs for obs in map(_decode_observation, opened) if obs is not None]

    def _field_key(self, field: str) -> str:
        """What a seal covers: the hash's full key and the field, so an entry moved between ports fails."""
        return f"{self._key(_OBS)}|{field}"

    def _open(self, field: bytes, entry: bytes) -> bytes | None:
        value, _ = self._cache.signer.open(self._field_key(field.decode("utf-8", errors="replace")), entry)
        if value is None:
            OBSERVATIONS_SKIPPED.labels("seal").inc()
            log.warning("unsealed or corrupted shared border observation skipped")
        return value

    def active_layer(self) -> str | None:
        value = self._cache.breaker.call(
            "layer-read", lambda: cast("bytes | None", self._client.get(self._key("layers:active"))), None
        )
        # bytes that are not UTF-8 become a version no store holds: refused (counted, logged) once
        return value.decode("utf-8", errors="replace") if value else None

    def set_active_layer(self, version: str) -> bool:
        return self._cache.breaker.call(
            "layer-set", lambda: bool(self._client.set(self._key("layers:active"), version)), False
        )

    def try_lead(self, name: str, ttl_ms: int) -> bool:
        """One replica per period: True for the one that takes the short lease, and for
        every replica while Redis is unusable (each then does the work itself)."""
        return self._cache.try_lock(f"lead:{name}", ttl_ms) is not False


# ServingState.merge_observations without publishing: (observations, now_s) → (accepted, stale, version)
Merge = Callable[[list[WaitObservation], int], tuple[int, int, str]]


class BorderSync:
    """Polls the shared border revision and merges new observations into this replica."""

    def __init__(self, shared: SharedState, merge: Merge, interval_s: float = 1.0) -> None:
        self._shared = shared
        self._merge = merge
        self._interval = interval_s
        self._revision: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="border-sync", daemon=True)

    def check(self) -> int:
        """One poll: the number of observations merged."""
        update = self._shared.observations_since(self._revision)
        if update is None:
            return 0
        self._revision, observations = update
        accepted, _, _ = self._merge(observations, int(time.time()))
        return accepted

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:
                log.exception("border sync failed")
