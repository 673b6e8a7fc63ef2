"""Incident files → :class:`~geodata.incidents.IncidentSet`, validated whole.

Two kinds of input:

* **Point incidents** (CSV, GeoJSON, GeoPackage, GeoParquet, chosen by extension) with the
  canonical columns ``id, occurred_at, latitude, longitude, type, violent, source`` and an
  optional ``value_usd``; ``column_map`` renames them (canonical name → the file's column).
  Vector formats may give the position as a point geometry instead of latitude/longitude.
  ``occurred_at`` is ISO 8601 with an offset (or ``Z``); naive local times are accepted
  only with ``timezone`` (an IANA name).  ``utc_s`` is the true instant; the local hour
  of week is the local hour *at the incident's location* at that instant (the zone
  lookup scoring uses, :func:`geodata.timezones.local_hour_of_week_at`), so the same
  incidents written in UTC, with any offset, or naive with ``timezone`` get the same
  hours.  Naive times that fall twice (end of daylight saving) are taken as the first
  of the two instants, times that never happened (start of daylight saving) are
  shifted forward by the gap.
* **SESNSP municipal CSVs** (monthly "Robo a transportista" counts per municipality,
  the government's own cp1252 export): each municipality-month count is spread over
  H3 cells of the municipality polygon, on road cells when a road layer has any there,
  else over all its cells in proportion to cell area.  Entries carry ``weight`` = share
  of the count and ``local_how`` = ``UNKNOWN_HOUR``.

Modules by job: :mod:`geodata.ingest_points` (point readers), :mod:`geodata.ingest_time`
(time parsing), :mod:`geodata.sesnsp` (SESNSP spreading), :mod:`geodata.ingest_report`
(error reports and shared helpers); this one reads any mix of files and checks ids across
them.

Validation is all or nothing: every bad row is collected (vectorised with pandas/numpy)
and reported in one :class:`~geodata.incidents.InvalidIncidentFileError` whose
violations are ``file:row:column`` — ``row`` is the 1-based line number in a CSV (the
header is line 1; a quoted value spanning lines shifts later numbers) or the 1-based
feature number in other formats.  Nothing is returned when anything is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geodata.errors import Violation
from geodata.incidents import (
    IncidentSet,
    InvalidIncidentFileError,
    concatenate,
)
from geodata.ingest_points import _load_points, _points_from_frame
from geodata.ingest_report import _decode, _Loaded, _norm, _now
from geodata.sesnsp import SesnspCache, _load_sesnsp, road_cells

__all__ = [
    "SourceFile",
    "incidents_from_frame",
    "incidents_from_rows",
    "is_sesnsp_municipal",
    "read_incidents",
    "read_point_incidents",
    "read_sesnsp_municipal",
    "road_cells",
]


@dataclass(frozen=True)
class SourceFile:
    """One ingested file: where it was, what it hashed to, how many data rows it had."""

    path: str
    sha256: str
    rows: int  # data rows (CSV lines after the header, blank ones excepted) or features
    kind: str  # "points" or "sesnsp"

    def provenance(self) -> dict[str, object]:
        """What a layer records about this input (the file name, not the full path)."""
        return {"file": Path(self.path).name, "sha256": self.sha256, "rows": self.rows, "kind": self.kind}


# --------------------------------------------------------------------------- public API


def read_point_incidents(
    path: Path | str,
    *,
    column_map: Mapping[str, str] | None = None,
    timezone: str | None = None,
    now_s: int | None = None,
    resolution: int = 8,
) -> IncidentSet:
    """Point incidents from a CSV, GeoJSON, GeoPackage or GeoParquet file; all rows or none.

    ``resolution`` is the layer's: each incident's local hour is taken in the zone of its cell
    at that resolution, the zone a truck in that cell is scored in."""
    return _load_points(Path(path), column_map, timezone, now_s, resolution).incidents


def read_sesnsp_municipal(
    path: Path | str,
    *,
    municipalities: Path | str,
    roads: Path | str | None = None,
    resolution: int = 8,
    now_s: int | None = None,
) -> IncidentSet:
    """Robo a transportista counts of a SESNSP municipal CSV, spread on H3 cells; all rows or none."""
    return _load_sesnsp(Path(path), Path(municipalities), None if roads is None else Path(roads), resolution, now_s)[
        0
    ].incidents


def read_incidents(
    paths: Sequence[Path | str],
    *,
    column_map: Mapping[str, str] | None = None,
    timezone: str | None = None,
    municipalities: Path | str | None = None,
    roads: Path | str | None = None,
    resolution: int = 8,
    now_s: int | None = None,
) -> tuple[IncidentSet, list[SourceFile]]:
    """Every file (SESNSP municipal CSVs detected by header, anything else as point incidents),
    concatenated; ids must be unique across files.  Problems of all files are reported at once.

    ``resolution`` is the layer's: SESNSP counts are spread on its cells, and a point's local
    hour is taken in the zone of its cell at that resolution (the zone scoring uses there)."""
    if not paths:
        raise InvalidIncidentFileError(Violation("paths", "no incident file given"))
    now = _now(now_s)
    loaded: list[_Loaded] = []
    sources: list[SourceFile] = []
    problems: list[Violation] = []
    muni_cache: SesnspCache = {}
    for raw in paths:
        path = Path(raw)
        try:
            if is_sesnsp_municipal(path):
                if municipalities is None:
                    raise InvalidIncidentFileError(
                        Violation(path.name, "is a SESNSP municipal file: municipality polygons are needed to place it")
                    )
                item, muni_cache = _load_sesnsp(
                    path, Path(municipalities), None if roads is None else Path(roads), resolution, now, muni_cache
                )
            else:
                item = _load_points(path, column_map, timezone, now, resolution)
            if len(item.incidents) == 0:  # a header-only export must not become an empty layer
                raise InvalidIncidentFileError(
                    Violation(path.name, f"has no incidents ({item.records} data rows); an empty or truncated export?")
                )
            loaded.append(item)
            sources.append(SourceFile(str(path), _sha256(path), item.records, item.kind))
        except InvalidIncidentFileError as exc:
            problems.extend(exc.violations)
    if not problems:
        problems.extend(_cross_file_duplicates(loaded, [Path(p).name for p in paths]))
    if problems:
        raise InvalidIncidentFileError(problems)
    if len(loaded) == 1:
        return loaded[0].incidents, sources
    return concatenate([item.incidents for item in loaded]), sources


def is_sesnsp_municipal(path: Path | str) -> bool:
    """Whether ``path`` is a CSV whose header is that of a SESNSP municipal crime file."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return False
    try:
        with open(path, "rb") as handle:
            first = handle.readline(65_536)
    except OSError:
        return False
    header = {_norm(h) for h in _decode(first).strip().split(",")}
    return {"cve municipio", "subtipo de delito", "modalidad", "enero"} <= header


def incidents_from_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    first_row: int = 1,
    geometry: gpd.GeoSeries | None = None,
    column_map: Mapping[str, str] | None = None,
    timezone: str | None = None,
    now_s: int | None = None,
) -> IncidentSet:
    """Incidents from a table already in memory (row ``i`` is reported as ``first_row + i``)."""
    frame = frame.reset_index(drop=True)
    rows = np.arange(first_row, first_row + len(frame), dtype=np.int64)
    return _points_from_frame(frame, geometry, rows, name, column_map, timezone, _now(now_s))[0]


def incidents_from_rows(
    records: Iterable[Mapping[str, str]], *, where: str = "row", first_line: int = 1, now_s: int | None = None
) -> IncidentSet:
    """Incidents from canonical records (dicts of column → text); every bad row is reported
    (as ``{where}:{line}:{column}``), with the checks of the file readers."""
    frame = pd.DataFrame.from_records(list(records))
    if frame.empty and len(frame.columns) == 0:
        return IncidentSet(
            ids=np.array([], dtype=object),
            lat=np.array([], dtype=np.float64),
            lng=np.array([], dtype=np.float64),
            utc_s=np.array([], dtype=np.int64),
            local_how=np.array([], dtype=np.int16),
            violent=np.array([], dtype=bool),
            types=np.array([], dtype=object),
            sources=(),
        )
    return incidents_from_frame(frame, name=where, first_row=first_line, now_s=now_s)


def _cross_file_duplicates(loaded: list[_Loaded], names: list[str]) -> list[Violation]:
    if len(loaded) < 2:
        return []
    ids = np.concatenate([item.incidents.ids for item in loaded])
    file_no = np.concatenate([np.full(len(item.incidents), i) for i, item in enumerate(loaded)])
    rows = np.concatenate([item.rows for item in loaded])
    table = pd.DataFrame({"id": ids, "file": file_no, "row": rows})
    dup = table["id"].duplicated(keep="first").to_numpy()
    if not dup.any():
        return []
    first = table.drop_duplicates("id").set_index("id")
    problems = []
    for i in np.flatnonzero(dup).tolist():
        f, row, ident = int(file_no[i]), int(rows[i]), ids[i]
        other = first.loc[ident]
        where = f"{names[int(other['file'])]}:{int(other['row'])}"
        problems.append(Violation(f"{names[f]}:{row}:{loaded[f].id_column}", f"id {ident!r} is also in {where}"))
    return problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
