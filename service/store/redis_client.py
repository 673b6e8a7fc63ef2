"""Redis behind a circuit breaker: every call is bounded in time and never fails a request.

Redis down, slow, out of memory or read-only after a failover: the call returns a
fallback and the service carries on with its own computation. After
``failure_threshold`` consecutive failures the breaker opens and Redis is not called
for ``reset_after_s``; then one trial call decides whether it closes again. Each state
change logs one line and moves one metric; requests do not log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast
from urllib.parse import urlparse

import redis
from prometheus_client import Counter, Gauge
from redis.sentinel import Sentinel

log = logging.getLogger(__name__)

T = TypeVar("T")

_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

BREAKER_STATE = Gauge("routerisk_redis_breaker_open", "1 while the Redis circuit breaker is open")
REDIS_ERRORS = Counter("routerisk_redis_errors_total", "Redis calls that failed or timed out", ["operation"])
REDIS_ERRORS_CAUGHT = (redis.exceptions.RedisError, OSError)
CACHE_REJECTED = Counter(
    "routerisk_cache_rejected",
    "Shared cache entries that failed verification (read as a miss, then overwritten), by reason",
    ["reason"],
)
for _reason in ("format", "tag"):
    CACHE_REJECTED.labels(_reason)
REJECT_LOG_EVERY_S = 60.0


class EntrySigner:
    """Seals every value written to the shared cache, and checks it on the way back.

    An entry is ``b"RR1" + mode + tag(32) + value``; the tag covers the full Redis key and the
    value, so an entry copied under another key fails too. With a key (``ROUTERISK_CACHE_HMAC_KEY``)
    the mode is ``H`` and the tag an HMAC-SHA256: only a writer holding the key can plant an
    answer. Without one the mode is ``C`` and the tag a plain SHA-256: a checksum stops corrupted
    or truncated entries, **not forgery** (anyone who can write to Redis can compute it). A replica
    with a key rejects checksum-only entries (no downgrade).
    """

    MAGIC = b"RR1"
    TAG_BYTES = 32

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or None
        self._mode = b"H" if self._key else b"C"
        self._header = len(self.MAGIC) + 1 + self.TAG_BYTES

    @property
    def authenticated(self) -> bool:
        return self._key is not None

    def _tag(self, full_key: str, value: bytes) -> bytes:
        message = full_key.encode() + b"\0" + value
        if self._key is not None:
            return hmac.new(self._key, message, hashlib.sha256).digest()
        return hashlib.sha256(message).digest()

    def seal(self, full_key: str, value: bytes) -> bytes:
        return self.MAGIC + self._mode + self._tag(full_key, value) + value

    def open(self, full_key: str, entry: bytes) -> tuple[bytes | None, str]:
        """(value, "") when the entry verifies, else (None, reason): ``format`` or ``tag``."""
        if not isinstance(entry, bytes) or len(entry) < self._header or not entry.startswith(self.MAGIC):
            return None, "format"
        value = entry[self._header :]
        mode, tag = entry[len(self.MAGIC) : len(self.MAGIC) + 1], entry[len(self.MAGIC) + 1 : self._header]
        if mode != self._mode or not hmac.compare_digest(tag, self._tag(full_key, value)):
            return None, "tag"
        return value, ""


def connect(
    url: str,
    *,
    timeout_s: float = 0.05,
    sentinels: str | None = None,
    sentinel_master: str | None = None,
) -> redis.Redis:
    """A client for ``redis://``/``rediss://`` URLs (ACL user and password in the URL), or,
    with ``sentinels`` ("host:port,host:port"), the master named ``sentinel_master``."""
    options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry_on_timeout": False}
    if sentinels:
        parsed = urlparse(url)
        nodes = [(host, int(port)) for host, port in (item.rsplit(":", 1) for item in sentinels.split(",") if item)]
        sentinel = Sentinel(nodes, sentinel_kwargs={"socket_timeout": timeout_s}, **options)
        return sentinel.master_for(
            sentinel_master or "mymaster",
            username=parsed.username,
            password=parsed.password,
            ssl=parsed.scheme == "rediss",
            **options,
        )
    return redis.Redis.from_url(url, **options)


class CircuitBreaker:
    """Closed → open after consecutive failures → half-open trial after a pause → closed."""

    def __init__(
        self, failure_threshold: int = 3, reset_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failure_threshold
        self._reset_after = reset_after_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half_open" if self._clock() - self._opened_at >= self._reset_after else "open"

    def _allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial or self._clock() - self._opened_at < self._reset_after:
                return False
            self._trial = True  # one caller tries; the others keep skipping Redis
            return True

    def _succeeded(self) -> None:
        with self._lock:
            was_open = self._opened_at is not None
            self._failures, self._opened_at, self._trial = 0, None, False
        if was_open:
            BREAKER_STATE.set(0)
            log.info("redis reachable again; circuit breaker closed")

    def _failed(self, operation: str, exc: BaseException) -> None:
        REDIS_ERRORS.labels(operation).inc()
        with self._lock:
            self._failures += 1
            trial, self._trial = self._trial, False
            opening = self._opened_at is None and self._failures >= self._threshold
            if opening or trial:
                self._opened_at = self._clock()
        if opening:
            BREAKER_STATE.set(1)
            log.warning(
                "redis failing; circuit breaker open, serving without it",
                extra={"operation": operation, "error": type(exc).__name__},
            )

    def call(self, operation: str, fn: Callable[[], T], fallback: T) -> T:
        """``fn()``, or ``fallback`` when the breaker is open or the call fails."""
        if not self._allow():
            return fallback
        try:
            result = fn()
        except REDIS_ERRORS_CAUGHT as exc:
            self._failed(operation, exc)
            return fallback
        except BaseException:
            # not Redis's fault: let it propagate, but never leave the breaker stuck half-open
            with self._lock:
                self._trial = False
            raise
        self._succeeded()
        return result


class RedisCache:
    """The :class:`service.store.cache.Cache` interface on Redis, plus short locks for single flight."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "routerisk:",
        *,
        max_value_bytes: int = 4 * 1024 * 1024,
        breaker: CircuitBreaker | None = None,
        signer: EntrySigner | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.max_value_bytes = max_value_bytes
        self.breaker = breaker or CircuitBreaker()
        # every cached value is sealed: a corrupted (or, with a key, forged) entry is a miss
        self.signer = signer or EntrySigner()
        self._last_reject_log = -REJECT_LOG_EVERY_S
        # register_script only hashes the script here; Redis sees it on first use
        self._release = client.register_script(_RELEASE_IF_OWNER)

    def get(self, key: str) -> bytes | None:
        """The verified value, or None: absent, Redis unusable, or an entry that fails
        verification (counted in ``routerisk_cache_rejected_total{reason}``; the caller computes
        the answer and its ``set`` overwrites the bad entry)."""
        full_key = self.prefix + key
        # the client is made without decode_responses (connect), so replies are bytes
        entry = self.breaker.call("get", lambda: cast("bytes | None", self.client.get(full_key)), None)
        if entry is None:
            return None
        value, reason = self.signer.open(full_key, entry)
        if value is None:
            CACHE_REJECTED.labels(reason).inc()
            now = time.monotonic()
            if now - self._last_reject_log >= REJECT_LOG_EVERY_S:  # at most one line a minute
                self._last_reject_log = now
                log.warning(
                    "shared cache entry failed verification; treated as a miss and overwritten",
                    extra={"reason": reason, "authenticated": self.signer.authenticated},
                )
        return value

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if len(value) > self.max_value_bytes:
            return
        ttl_ms = max(int(ttl_seconds * 1000), 1)
        full_key = self.prefix + key
        entry = self.signer.seal(full_key, value)
        self.breaker.call("set", lambda: self.client.set(full_key, entry, px=ttl_ms), None)

    def try_lock(self, key: str, ttl_ms: int) -> bool | None:
        """True: this caller computes; False: another does; None: Redis unusable (compute)."""
        token = self._token()
        return self.breaker.call(
            "lock", lambda: bool(self.client.set(f"{self.prefix}lock:{key}", token, nx=True, px=ttl_ms)), None
        )

    def unlock(self, key: str) -> None:
        """Release the lock only if this process still holds it (it may have expired and moved on)."""
        name, token = f"{self.prefix}lock:{key}", self._token()
        self.breaker.call("unlock", lambda: self._release(keys=[name], args=[token]), None)

    def _token(self) -> bytes:
        return f"{os.getpid()}:{threading.get_ident()}".encode()
