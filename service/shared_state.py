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
import threading
import time
from dataclasses import asdict

from geodata.border import WaitObservation
from service.redis_store import RedisCache

log = logging.getLogger(__name__)


class SharedState:
    """Keys under the cache's prefix: ``border:obs`` (hash), ``border:rev``, ``layers:active``."""

    def __init__(self, redis_cache: RedisCache) -> None:
        self._cache = redis_cache
        self._client = redis_cache.client
        self._prefix = redis_cache.prefix

    def _key(self, name: str) -> str:
        return self._prefix + name

    def publish_observations(self, observations: list[WaitObservation]) -> bool:
        """Store observations for every replica; False when Redis could not take them."""
        if not observations:
            return True
        fields = {f"{o.port_number}|{o.lane}": json.dumps(asdict(o)) for o in observations}

        def write() -> bool:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(self._key("border:obs"), mapping=fields)
                pipe.incr(self._key("border:rev"))
                pipe.execute()
            return True

        return self._cache.breaker.call("border-publish", write, False)

    def observations_since(self, revision: int | None) -> tuple[int, list[WaitObservation]] | None:
        """(revision, all observations) when the revision moved on from ``revision``, else None."""

        def read() -> tuple[int, list[WaitObservation]] | None:
            current = int(self._client.get(self._key("border:rev")) or 0)
            if current == revision or current == 0:
                return None
            raw = self._client.hgetall(self._key("border:obs"))
            return current, [WaitObservation(**json.loads(value)) for value in raw.values()]

        return self._cache.breaker.call("border-read", read, None)

    def active_layer(self) -> str | None:
        value = self._cache.breaker.call("layer-read", lambda: self._client.get(self._key("layers:active")), None)
        return value.decode() if value else None

    def set_active_layer(self, version: str) -> bool:
        return self._cache.breaker.call(
            "layer-set", lambda: bool(self._client.set(self._key("layers:active"), version)), False
        )

    def try_lead(self, name: str, ttl_ms: int) -> bool:
        """One replica per period: True for the one that takes the short lease."""
        return bool(self._cache.try_lock(f"lead:{name}", ttl_ms))


class BorderSync:
    """Polls the shared border revision and merges new observations into this replica."""

    def __init__(self, shared: SharedState, merge, interval_s: float = 1.0) -> None:
        self._shared = shared
        self._merge = merge
        self._interval = interval_s
        self._revision: int | None = None
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
