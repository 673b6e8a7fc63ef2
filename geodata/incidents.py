"""Point incidents: the input of a risk layer.

An :class:`IncidentSet` is columnar (numpy) so layer builds stay vectorised.
``occurred_at`` keeps both the UTC instant and the *local* wall-clock hour of
week, because hijackings follow local night, not UTC.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from geodata.errors import InputError, Violation
from geodata.timezones import hour_of_week

INCIDENT_TYPES = ("hijacking", "theft_from_parked", "cargo_theft", "attempt", "other")
CANONICAL_COLUMNS = ("id", "occurred_at", "latitude", "longitude", "type", "violent", "source")


class InvalidIncidentFileError(InputError):
    """An incident file has bad rows; it is rejected whole."""


@dataclass(frozen=True)
class IncidentSet:
    """Columnar incidents: one entry per incident."""

    ids: np.ndarray  # str objects
    lat: np.ndarray  # float64
    lng: np.ndarray  # float64
    utc_s: np.ndarray  # int64 epoch seconds
    local_how: np.ndarray  # int16 local hour of week, 0 = Monday 00:00
    violent: np.ndarray  # bool
    types: np.ndarray  # str objects
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.lat)


def read_canonical_csv(path: Path | str) -> IncidentSet:
    """Read a canonical incident CSV (``occurred_at`` with an offset); all rows or none."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CANONICAL_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InvalidIncidentFileError(Violation(str(path), f"missing columns: {', '.join(missing)}"))
        return incidents_from_rows(reader, where=str(path), first_line=2)


def incidents_from_rows(
    records: Iterable[Mapping[str, str]], *, where: str = "row", first_line: int = 1
) -> IncidentSet:
    """Incidents from canonical records (dicts of column → text); every bad row is reported."""
    rows: list[tuple[str, float, float, int, int, bool, str]] = []
    sources: set[str] = set()
    problems: list[Violation] = []
    for line, record in enumerate(records, start=first_line):
        try:
            rows.append(_parse_row(record))
            sources.add(record["source"])
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(Violation(f"{where}:{line}", str(exc)))
    if problems:
        raise InvalidIncidentFileError(problems)
    return _to_set(rows, tuple(sorted(sources)))


def _parse_row(record: Mapping[str, str]) -> tuple[str, float, float, int, int, bool, str]:
    lat, lng = float(record["latitude"]), float(record["longitude"])
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValueError(f"latitude/longitude {lat}, {lng} out of range")
    when = datetime.fromisoformat(record["occurred_at"])
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"occurred_at {record['occurred_at']!r} has no UTC offset")
    kind = record["type"]
    if kind not in INCIDENT_TYPES:
        raise ValueError(f"type {kind!r} is not one of {', '.join(INCIDENT_TYPES)}")
    utc_s = int(when.timestamp())
    local_s = utc_s + int(offset.total_seconds())
    violent = record["violent"].strip().lower() in ("true", "1", "yes")
    return record["id"], lat, lng, utc_s, local_s, violent, kind


def _to_set(rows: list[tuple[str, float, float, int, int, bool, str]], sources: tuple[str, ...]) -> IncidentSet:
    ids, lat, lng, utc_s, local_s, violent, kinds = zip(*rows, strict=True) if rows else ((),) * 7
    return IncidentSet(
        ids=np.array(ids, dtype=object),
        lat=np.array(lat, dtype=np.float64),
        lng=np.array(lng, dtype=np.float64),
        utc_s=np.array(utc_s, dtype=np.int64),
        local_how=hour_of_week(np.array(local_s, dtype=np.int64)),
        violent=np.array(violent, dtype=bool),
        types=np.array(kinds, dtype=object),
        sources=sources,
    )
