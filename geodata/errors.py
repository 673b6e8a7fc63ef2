"""Domain errors of the geospatial core.

They subclass builtins (as h3-py does) so library users can catch ``ValueError``,
and carry field violations so the gRPC layer can build a ``google.rpc.BadRequest``
naming the field path (with index) and the offending value, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One bad field: ``field`` is a request path such as ``route.line.points[3].latitude``."""

    field: str
    description: str


class InputError(ValueError):
    """A caller's input is invalid; nothing was changed."""

    def __init__(self, violations: Violation | Iterable[Violation]) -> None:
        items = [violations] if isinstance(violations, Violation) else list(violations)
        if not items:
            raise ValueError("InputError needs at least one violation")
        self.violations: tuple[Violation, ...] = tuple(items)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))


class InvalidRouteError(InputError):
    """The route geometry cannot be decoded or is not a usable path."""


class InvalidRequestError(InputError):
    """A request option (time, speed, lane, stop, cell) is out of its allowed range."""
