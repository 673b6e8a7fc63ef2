"""Point incidents: the input of a risk layer.

An :class:`IncidentSet` is columnar (numpy) so layer builds stay vectorised.
``occurred_at`` keeps both the UTC instant and the *local* wall-clock hour of
week, because hijackings follow local night, not UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from geodata.errors import InputError

INCIDENT_TYPES = ("hijacking", "theft_from_parked", "cargo_theft", "attempt", "other")
CANONICAL_COLUMNS = ("id", "occurred_at", "latitude", "longitude", "type", "violent", "source")


class InvalidIncidentFileError(InputError):
    """An incident file has bad rows; it is rejected whole."""


UNKNOWN_HOUR = -1


@dataclass(frozen=True)
class IncidentSet:
    """Columnar incidents: one entry per incident (or per share of an aggregated count).

    Point incidents have ``weight`` 1 and a known local hour. Aggregated counts (SESNSP
    municipal months) become entries placed on cells, with ``weight`` = the share of the
    count and ``local_how`` = ``UNKNOWN_HOUR``: the layer gives them the learned profile.
    """

    ids: np.ndarray  # str objects, unique within a set
    lat: np.ndarray  # float64
    lng: np.ndarray  # float64
    utc_s: np.ndarray  # int64 epoch seconds
    local_how: np.ndarray  # int16 local hour of week, 0 = Monday 00:00; UNKNOWN_HOUR (-1) when unknown
    violent: np.ndarray  # bool
    types: np.ndarray  # str objects, one of INCIDENT_TYPES
    sources: tuple[str, ...]
    weight: np.ndarray | None = None  # float64; None means 1 for every entry
    value_usd: np.ndarray | None = None  # float64, NaN where unknown; None when no column

    def __len__(self) -> int:
        return len(self.lat)

    @property
    def weights(self) -> np.ndarray:
        """Per-entry weight (1 for point incidents)."""
        return np.ones(len(self.lat)) if self.weight is None else self.weight

    def select(self, mask: np.ndarray) -> IncidentSet:
        """The entries where ``mask`` is true (for train/test splits)."""
        columns = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        # getattr() is Any; the columns go back to the fields they came from
        picked: dict[str, Any] = {name: None if column is None else column[mask] for name, column in columns.items()}
        return IncidentSet(sources=self.sources, **picked)


def concatenate(sets: list[IncidentSet]) -> IncidentSet:
    """One set from several (ids must stay unique across them: the caller checks)."""

    def cat(name: str, fill: float) -> np.ndarray | None:
        if all(getattr(s, name) is None for s in sets):
            return None
        return np.concatenate(
            [getattr(s, name) if getattr(s, name) is not None else np.full(len(s), fill) for s in sets]
        )

    return IncidentSet(
        ids=np.concatenate([s.ids for s in sets]),
        lat=np.concatenate([s.lat for s in sets]),
        lng=np.concatenate([s.lng for s in sets]),
        utc_s=np.concatenate([s.utc_s for s in sets]),
        local_how=np.concatenate([s.local_how for s in sets]).astype(np.int16),
        violent=np.concatenate([s.violent for s in sets]),
        types=np.concatenate([s.types for s in sets]),
        sources=tuple(sorted({src for s in sets for src in s.sources})),
        weight=cat("weight", 1.0),
        value_usd=cat("value_usd", np.nan),
    )
