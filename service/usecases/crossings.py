"""ListBorderCrossings: every commercial port of entry (or one) with the expected wait of each lane."""

from __future__ import annotations

from dataclasses import dataclass, replace

from geodata.border import BorderData, Port, WaitEstimate
from service.usecases.errors import NotFoundError

LANES = ("standard", "fast")


@dataclass(frozen=True)
class PortWaits:
    port: Port
    waits: tuple[tuple[str, WaitEstimate], ...]  # (lane, its expected wait at the asked time), LANES order


def select_ports(border: BorderData, port_number: str) -> tuple[Port, ...]:
    """Every port, or only ``port_number`` when given (:class:`NotFoundError` when unknown)."""
    ports = border.ports
    if port_number:
        ports = tuple(p for p in ports if p.port_number == port_number)
        if not ports:
            raise NotFoundError(f"no commercial port of entry with port_number {port_number!r}")
    return ports


def lane_waits(border: BorderData, ports: tuple[Port, ...], at_s: int, live_max_age_s: int) -> list[PortWaits]:
    """The ports with their lanes' expected waits at ``at_s`` (live when fresh, else the profile)."""
    return [
        PortWaits(
            port,
            tuple(
                (lane, _with_reading(border, port, lane, border.expected_wait(port, lane, at_s, live_max_age_s)))
                for lane in LANES
            ),
        )
        for port in ports
    ]


def _with_reading(border: BorderData, port: Port, lane: str, estimate: WaitEstimate) -> WaitEstimate:
    """A profile answer still carries when the lane's latest reading was taken: a reader sees the
    feed's age (a reading too old to be used, a feed that stopped) instead of nothing."""
    held = border.observations.get((port.port_number, lane))
    if estimate.observed_at_s or held is None:
        return estimate
    return replace(estimate, observed_at_s=held.observed_at_s)
