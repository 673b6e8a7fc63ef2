"""Result cache behind a small interface: in-process LRU now, Redis later.

Values are serialized responses (bytes) so every backend stores the same thing.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from prometheus_client import Counter

CACHE_REQUESTS = Counter(
    "routerisk_cache_requests", "Result cache look-ups: hit (answered without computing) or miss", ["result"]
)
_HITS = CACHE_REQUESTS.labels("hit")
_MISSES = CACHE_REQUESTS.labels("miss")


class Cache(Protocol):
    """What the scoring use case needs from a cache."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...


@runtime_checkable
class LockingCache(Cache, Protocol):
    """A cache shared between processes that can also lock a key for one computation
    (Redis: ``SET NX PX``), so that one process computes it and the others wait for it."""

    def try_lock(self, key: str, ttl_ms: int) -> bool | None:
        """True: this caller holds the lock; False: another one does; None: no lock could be
        asked for (the shared cache is unreachable or has none), so compute without one."""
        ...

    def unlock(self, key: str) -> None: ...


def locks_of(cache: Cache) -> LockingCache | None:
    """``cache`` when it can lock keys across processes, else None."""
    return cache if isinstance(cache, LockingCache) else None


class NullCache:
    """Caches nothing (cache size 0)."""

    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        return None


class InProcessCache:
    """A thread-safe LRU with per-entry expiry, bounded by entry count."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        with self._lock:
            self._items[key] = (self._clock() + ttl_seconds, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ResultCache:
    """Get-or-compute over a :class:`Cache`, computing each missing key once.

    Concurrent misses of one key in this process wait for the first (in-process single
    flight); across processes a short ``SET NX PX`` lock in Redis does the same, and the
    others poll for the result for at most ``wait_s`` before computing it themselves
    rather than fail. TTLs get ±``jitter`` so entries written together do not expire together.
    """

    def __init__(
        self,
        backend: Cache,
        ttl_seconds: float,
        *,
        jitter: float = 0.1,
        wait_s: float = 0.5,
        lock_ms: int = 2000,
        seed: int | None = None,
    ) -> None:
        self.backend = backend
        self._locks = locks_of(backend)
        self._ttl = ttl_seconds
        self._jitter = jitter
        self._wait = wait_s
        self._lock_ms = lock_ms
        self._random = random.Random(seed)
        self._inflight: dict[str, _Flight] = {}
        self._guard = threading.Lock()

    def ttl(self) -> float:
        return self._ttl * (1.0 + self._jitter * (2.0 * self._random.random() - 1.0))

    def get(self, key: str) -> bytes | None:
        """The stored value, without computing; counts a hit when there is one (on a miss the caller
        goes on to :meth:`get_or_compute`, which counts it)."""
        value = self.backend.get(key)
        if value is not None:
            _HITS.inc()
        return value

    def get_or_compute(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, bool]:
        """(value, True) from the cache, or (value, False) freshly computed and stored.

        Counts ``routerisk_cache_requests_total``: ``hit`` when answered without computing here
        (including a value handed over by a concurrent computation), else ``miss``."""
        cached = False
        try:
            value, cached = self._get_or_compute(key, compute)
            return value, cached
        finally:
            (_HITS if cached else _MISSES).inc()

    def _get_or_compute(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, bool]:
        value = self.backend.get(key)
        if value is not None:
            return value, True
        with self._guard:
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                flight = self._inflight[key] = _Flight()
        if not leader:
            # the leader hands its value over even when the backend cannot store it
            if flight.done.wait(self._wait) and flight.value is not None:
                return flight.value, True
            value = self.backend.get(key)
            return (value, True) if value is not None else (compute(), False)
        try:
            flight.value, cached = self._compute_once_across_processes(key, compute)
            return flight.value, cached
        finally:
            with self._guard:
                self._inflight.pop(key, None)
            flight.done.set()

    def _compute_once_across_processes(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, bool]:
        locks = self._locks
        locked = locks.try_lock(key, self._lock_ms) if locks is not None else None
        if locked is False:  # another process computes it: wait briefly for its result
            deadline = time.monotonic() + self._wait
            while time.monotonic() < deadline:
                time.sleep(0.005)
                value = self.backend.get(key)
                if value is not None:
                    return value, True
        try:
            value = self.backend.get(key) if locked else None  # it may have landed just before the lock
            if value is not None:
                return value, True
            value = compute()
            self.backend.set(key, value, self.ttl())
            return value, False
        finally:
            if locked and locks is not None:
                locks.unlock(key)


class _Flight:
    """One in-process computation that others wait for."""

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: bytes | None = None


class TieredCache:
    """An in-process LRU in front of a shared cache (Redis).

    Keys carry the layer and border versions, so a local copy is never stale: it only
    saves the network round trip for answers this replica has already seen.
    """

    def __init__(self, local: InProcessCache, shared: Cache, local_ttl_seconds: float = 60.0) -> None:
        self.local = local
        self.shared = shared
        self._locks = locks_of(shared)
        self._local_ttl = local_ttl_seconds

    def get(self, key: str) -> bytes | None:
        value = self.local.get(key)
        if value is None:
            value = self.shared.get(key)
            if value is not None:
                self.local.set(key, value, self._local_ttl)
        return value

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.local.set(key, value, min(ttl_seconds, self._local_ttl))
        self.shared.set(key, value, ttl_seconds)

    def try_lock(self, key: str, ttl_ms: int) -> bool | None:
        return self._locks.try_lock(key, ttl_ms) if self._locks is not None else None

    def unlock(self, key: str) -> None:
        if self._locks is not None:
            self._locks.unlock(key)
