"""What ``routerisk border load`` did, in the server's own terms.

"37 accepted" says nothing a dispatcher can act on when the 37 readings are from 2022: the server
keeps them, but a reading is live only within the server's live window of the time asked, so
scoring and ``crossings list`` use the wait profiles instead. After a load the CLI asks the server
(ListBorderCrossings, the same answer scoring sees) which readings it now holds and which are
live now, finds the live window by asking at times after a held reading, and says: how many
readings are current and until when they will be used, how many are only historical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from geodata.border import WaitObservation
from routerisk.v1 import route_risk_service_pb2 as pb
from service.cli.times import DATE_CLOCK, local_text

# the longest live window searched for (a server's ROUTERISK_BORDER_LIVE_MAX_AGE_MINUTES)
LONGEST_WINDOW_MIN = 7 * 24 * 60

Lister = Callable[[str, int | None], pb.ListBorderCrossingsResponse]  # (port number or "", UTC second or now)
LANES = {pb.CROSSING_LANE_STANDARD: "standard", pb.CROSSING_LANE_FAST: "fast"}


@dataclass(frozen=True)
class Held:
    """A loaded reading the server now holds, with whether it is live now and its port's zone."""

    reading: WaitObservation
    live: bool
    zone: ZoneInfo
    port_name: str


def held_readings(observations: list[WaitObservation], now: pb.ListBorderCrossingsResponse) -> list[Held]:
    """The loaded readings the server holds (a newer one held for the same lane supersedes a reading)."""
    answer: dict[tuple[str, str], tuple[pb.LaneWait, pb.BorderCrossing]] = {
        (c.port_number, LANES.get(w.lane, "")): (w, c) for c in now.crossings for w in c.lane_waits
    }
    out = []
    for reading in observations:
        found = answer.get((reading.port_number, reading.lane))
        if found is None or not found[0].HasField("observed_at"):
            continue
        wait, crossing = found
        if wait.observed_at.seconds == reading.observed_at_s:
            live = wait.source == pb.WAIT_SOURCE_LIVE
            out.append(Held(reading, live, ZoneInfo(crossing.time_zone or "UTC"), crossing.port_name))
    return out


def live_window_s(held: Held, lister: Lister) -> int | None:
    """The server's live window, in whole minutes: the longest time after a held reading at which
    the server still answers with it (binary search; None when it is not live even when taken)."""

    def live_after(minutes: int) -> bool:
        at = held.reading.observed_at_s + minutes * 60
        reply = lister(held.reading.port_number, at)
        return any(
            LANES.get(w.lane) == held.reading.lane and w.source == pb.WAIT_SOURCE_LIVE
            for c in reply.crossings
            for w in c.lane_waits
        )

    if not live_after(0):
        return None
    low, high = 0, LONGEST_WINDOW_MIN
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if live_after(middle) else (low, middle - 1)
    return low * 60


def report(observations: list[WaitObservation], lister: Lister) -> list[str]:
    """Lines on how many loaded readings are current (and until when) and how many only historical."""
    held = held_readings(observations, lister("", None))
    usable = [h for h in held if h.reading.wait_minutes is not None or h.reading.closed]
    window = live_window_s(max(usable, key=lambda h: h.reading.observed_at_s), lister) if usable else None
    current = [h for h in held if h.live]
    past = [h for h in usable if not h.live]
    pending = len(held) - len(usable)
    lines = []
    if current:
        last = max(current, key=lambda h: h.reading.observed_at_s)
        until = _when(last.reading.observed_at_s + (window or 0), last.zone)
        lines.append(f"current: {len(current)} reading(s), live now; used until {until} ({last.port_name}, newest)")
    else:
        lines.append("current: none of the readings is live now")
    if past:
        newest = max(past, key=lambda h: h.reading.observed_at_s)
        taken = _when(newest.reading.observed_at_s, newest.zone)
        span = f"{window // 60} min" if window is not None else "the server's live window"
        lines.append(
            f"only historical: {len(past)} reading(s), newest taken {taken} ({newest.port_name}); "
            f"a reading is live only within {span} of the time asked, so now the wait profiles answer"
        )
    if pending:
        lines.append(f"no wait number: {pending} reading(s) (such as Update Pending); the wait profiles answer")
    return lines


def _when(epoch_s: int, zone: ZoneInfo) -> str:
    return local_text(datetime.fromtimestamp(epoch_s, UTC), zone, DATE_CLOCK)
