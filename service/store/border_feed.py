"""Polling a CBP Border Wait Times feed and handing the observations to a sink.

The same poller runs inside the server (``ROUTERISK_BORDER_FEED_URL``; the sink merges
into the served data) and standalone (``routerisk border poll``; the sink is the admin
RPC of a server). A feed that cannot be fetched or parsed is logged once per failure
streak and changes nothing: the observations loaded before stay.

Every fetch is bounded three ways: the connection (``connect_timeout_s``), each read
(``read_timeout_s``: a feed that sends nothing for that long) and the whole fetch
(``timeout_s``: a feed that trickles a byte every few seconds never trips a read timeout, so
a watchdog shuts the socket down at the total and the fetch fails as *stalled*). Stopping the
poller aborts a fetch in flight the same way, so a stalled feed never holds up a shutdown.
Readings stamped further ahead of this machine's clock than ``max_clock_skew_s`` are skipped
one by one and counted (a feed's clock, not the future).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import urljoin, urlsplit

from prometheus_client import Counter

import seeds
from geodata.border import WaitObservation

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 32 * 1024 * 1024
MAX_REDIRECTS = 3
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
STOP_JOIN_S = 2.0

FEED_POLLS = Counter("routerisk_border_feed_polls_total", "Border feed polls by outcome", ["outcome"])
FEED_SKIPPED = Counter("routerisk_border_feed_skipped_total", "Feed readings skipped", ["reason"])

Sink = Callable[[list[WaitObservation], str], object]


class FeedStalledError(TimeoutError):
    """The feed did not deliver its whole body within the total timeout (or the poller stopped)."""


class _Watchdog:
    """Shuts down the socket of the fetch in flight: at its deadline, or when asked to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self.reason: str | None = None

    def attach(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            aborted = self.reason is not None
        if aborted:
            self._shutdown(connection)

    def abort(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            connection = self._connection
        if connection is not None:
            self._shutdown(connection)

    @staticmethod
    def _shutdown(connection: http.client.HTTPConnection) -> None:
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread


def fetch(
    url: str,
    timeout_s: float,
    *,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    watchdog: _Watchdog | None = None,
) -> bytes:
    """The feed's body, bounded in size, in connect and read time and in total time (``timeout_s``);
    raises :class:`FeedStalledError` past the total, ``TimeoutError`` when a connect or read times out."""
    watchdog = watchdog or _Watchdog()
    timer = threading.Timer(timeout_s, watchdog.abort, args=(f"no complete answer within {timeout_s:g} s",))
    timer.daemon = True
    timer.start()
    received = [0]
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _get(url, min(connect_timeout_s, timeout_s), read_timeout_s, watchdog, received)
            if location is None:
                if status != 200:
                    raise OSError(f"feed answered HTTP {status}")
                return body
            url = urljoin(url, location)
        raise OSError(f"more than {MAX_REDIRECTS} redirects")
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.reason is not None:
            raise FeedStalledError(f"feed abandoned after {received[0]} bytes: {watchdog.reason}") from None
        if isinstance(exc, TimeoutError):
            raise
        raise OSError(f"feed fetch failed: {exc}") from None
    finally:
        timer.cancel()


def _get(
    url: str, connect_s: float, read_s: float, watchdog: _Watchdog, received: list[int]
) -> tuple[int, str | None, bytes]:
    """One GET: (status, redirect location or None, body)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OSError(f"unsupported feed URL scheme {parts.scheme!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # the standard proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as urllib honours them
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        via = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        connection = kind(via.hostname or "", via.port, timeout=connect_s)
        if parts.scheme == "https":
            connection.set_tunnel(parts.hostname, parts.port)
        else:
            path = url  # a plain-HTTP proxy takes the absolute URL
    else:
        connection = kind(parts.hostname, parts.port, timeout=connect_s)
    try:
        connection.connect()
        watchdog.attach(connection)
        if connection.sock is not None:
            connection.sock.settimeout(read_s)
        connection.request("GET", path, headers={"Accept": "application/json, application/xml;q=0.9"})
        response = connection.getresponse()
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            return response.status, response.getheader("Location"), b""
        chunks: list[bytes] = []
        while chunk := response.read1(65536):
            received[0] += len(chunk)
            if received[0] > MAX_FEED_BYTES:
                raise ValueError(f"feed is larger than {MAX_FEED_BYTES} bytes")
            chunks.append(chunk)
        if watchdog.reason is not None:  # shut down mid-body: what came is not the whole feed
            raise OSError("aborted")
        return response.status, None, b"".join(chunks)
    finally:
        connection.close()


def read_observations(body: bytes, zones: Mapping[str, str] | None = None) -> list[WaitObservation]:
    """Parse a feed body (JSON or XML) for the ports of ``zones`` (port number → IANA zone; by
    default the seed ports); raises InvalidFeedError on anything malformed."""
    from geodata.cbp_feed import parse_feed

    observations, _ = parse_feed(body, zones=seeds.port_zones() if zones is None else zones)
    return observations


def skip_future(
    observations: list[WaitObservation], now_s: float, max_clock_skew_s: float
) -> tuple[list[WaitObservation], int]:
    """(the readings not stamped beyond ``max_clock_skew_s`` ahead of ``now_s``, how many were)."""
    kept = [o for o in observations if o.observed_at_s <= now_s + max_clock_skew_s]
    return kept, len(observations) - len(kept)


class FeedPoller:
    """Fetch, parse and sink a feed every ``interval_s`` seconds on a daemon thread."""

    def __init__(
        self,
        url: str,
        interval_s: float,
        sink: Sink,
        timeout_s: float = 30.0,
        should_poll: Callable[[], bool] | None = None,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
    ) -> None:
        self.url = url
        self._should_poll = should_poll
        self._interval = interval_s
        self._sink = sink
        self._timeout = timeout_s
        self._connect_timeout = connect_timeout_s
        self._read_timeout = read_timeout_s
        self._max_skew = max_clock_skew_s
        self._failing = False
        self._stop = threading.Event()
        self._watchdog_lock = threading.Lock()
        self._watchdog: _Watchdog | None = None
        self._thread = threading.Thread(target=self._run, name="border-feed", daemon=True)

    def poll_once(self) -> int:
        """One fetch: the number of observations handed to the sink (raises on failure)."""
        watchdog = _Watchdog()
        with self._watchdog_lock:
            self._watchdog = watchdog
        if self._stop.is_set():
            watchdog.abort("the poller is stopping")
        try:
            body = fetch(
                self.url,
                self._timeout,
                connect_timeout_s=self._connect_timeout,
                read_timeout_s=self._read_timeout,
                watchdog=watchdog,
            )
        finally:
            with self._watchdog_lock:
                self._watchdog = None
        observations, future = skip_future(read_observations(body), time.time(), self._max_skew)
        if future:
            FEED_SKIPPED.labels("future").inc(future)
            log.warning(
                "border feed readings stamped in the future skipped",
                extra={"skipped": future, "max_clock_skew_s": self._max_skew},
            )
        self._sink(observations, self.url)
        return len(observations)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; a fetch in flight is aborted, so this returns within a couple of seconds."""
        self._stop.set()
        with self._watchdog_lock:
            watchdog = self._watchdog
        if watchdog is not None:
            watchdog.abort("the poller is stopping")
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_JOIN_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._should_poll is not None and not self._should_poll():
                self._stop.wait(self._interval)  # another replica polls this period
                continue
            try:
                count = self.poll_once()
            except FeedStalledError as exc:
                FEED_POLLS.labels("stalled").inc()
                if self._stop.is_set():
                    break
                if not self._failing:
                    log.warning(
                        "border feed stalled; abandoned, keeping the waits loaded before",
                        extra={"error": str(exc)[:200]},
                    )
                self._failing = True
            except Exception as exc:  # any failure keeps the data loaded before
                FEED_POLLS.labels("failed").inc()
                if not self._failing:
                    log.error("border feed failed; keeping the waits loaded before", extra={"error": str(exc)[:500]})
                self._failing = True
            else:
                FEED_POLLS.labels("ok").inc()
                if self._failing:
                    log.info("border feed recovered", extra={"observations": count})
                self._failing = False
            self._stop.wait(self._interval)
