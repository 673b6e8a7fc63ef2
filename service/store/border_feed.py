"""Polling a CBP Border Wait Times feed and handing the observations to a sink.

The same poller runs inside the server (``ROUTERISK_BORDER_FEED_URL``; the sink merges
into the served data) and standalone (``routerisk border poll``; the sink is the admin
RPC of a server). A feed that cannot be fetched or parsed is logged once per failure
streak and changes nothing: the observations loaded before stay.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping

import seeds
from geodata.border import WaitObservation

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 32 * 1024 * 1024

Sink = Callable[[list[WaitObservation], str], object]


def fetch(url: str, timeout_s: float) -> bytes:
    """The feed's body (bounded in size and time)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/xml;q=0.9"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body = response.read(MAX_FEED_BYTES + 1)
    if len(body) > MAX_FEED_BYTES:
        raise ValueError(f"feed is larger than {MAX_FEED_BYTES} bytes")
    return body


def read_observations(body: bytes, zones: Mapping[str, str] | None = None) -> list[WaitObservation]:
    """Parse a feed body (JSON or XML) for the ports of ``zones`` (port number → IANA zone; by
    default the seed ports); raises InvalidFeedError on anything malformed."""
    from geodata.cbp_feed import parse_feed

    observations, _ = parse_feed(body, zones=seeds.port_zones() if zones is None else zones)
    return observations


class FeedPoller:
    """Fetch, parse and sink a feed every ``interval_s`` seconds on a daemon thread."""

    def __init__(
        self,
        url: str,
        interval_s: float,
        sink: Sink,
        timeout_s: float = 10.0,
        should_poll: Callable[[], bool] | None = None,
    ) -> None:
        self.url = url
        self._should_poll = should_poll
        self._interval = interval_s
        self._sink = sink
        self._timeout = timeout_s
        self._failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="border-feed", daemon=True)

    def poll_once(self) -> int:
        """One fetch: the number of observations handed to the sink (raises on failure)."""
        observations = read_observations(fetch(self.url, self._timeout))
        self._sink(observations, self.url)
        return len(observations)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._should_poll is not None and not self._should_poll():
                self._stop.wait(self._interval)  # another replica polls this period
                continue
            try:
                count = self.poll_once()
            except Exception as exc:  # any failure keeps the data loaded before
                if not self._failing:
                    log.error("border feed failed; keeping the waits loaded before", extra={"error": str(exc)[:500]})
                self._failing = True
            else:
                if self._failing:
                    log.info("border feed recovered", extra={"observations": count})
                self._failing = False
            self._stop.wait(self._interval)
