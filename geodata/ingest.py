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

Validation is all or nothing: every bad row is collected (vectorised with pandas/numpy)
and reported in one :class:`~geodata.incidents.InvalidIncidentFileError` whose
violations are ``file:row:column`` — ``row`` is the 1-based line number in a CSV (the
header is line 1; a quoted value spanning lines shifts later numbers) or the 1-based
feature number in other formats.  Nothing is returned when anything is wrong.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from h3 import _cy

from geodata.errors import InputError, Violation
from geodata.incidents import (
    CANONICAL_COLUMNS,
    INCIDENT_TYPES,
    UNKNOWN_HOUR,
    IncidentSet,
    InvalidIncidentFileError,
    concatenate,
)
from geodata.timezones import local_hour_of_week_at

__all__ = [
    "SourceFile",
    "incidents_from_frame",
    "is_sesnsp_municipal",
    "read_incidents",
    "read_point_incidents",
    "read_sesnsp_municipal",
]

OPTIONAL_COLUMNS = ("value_usd",)
FUTURE_TOLERANCE_S = 86_400
POINT_FORMATS = {
    ".csv": "csv",
    ".geojson": "vector",
    ".json": "vector",
    ".gpkg": "vector",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}
_TRUE = ("true", "1", "yes", "si", "sí")
_FALSE = ("false", "0", "no")
_BOOL_WORDS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
# date, time (minutes or seconds, optional fraction), optional offset
_TIME_PATTERN = (
    r"^\s*(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)"
    r"\s*(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_MAX_OFFSET_S = 14 * 3600

SESNSP_MONTHS = (
    "Enero",
    "Febrero",
    "Marzo",
    "Abril",
    "Mayo",
    "Junio",
    "Julio",
    "Agosto",
    "Septiembre",
    "Octubre",
    "Noviembre",
    "Diciembre",
)
_SESNSP_SUBTYPE = "robo a transportista"
_SESNSP_MODALITIES = {"con violencia": True, "sin violencia": False}
_SESNSP_UNPUBLISHED = ("", "na", "n/a", "nd", "n.d.")


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


@dataclass(frozen=True)
class _Loaded:
    """A file's incidents plus, per entry, the row it came from (to report cross-file duplicates)."""

    incidents: IncidentSet
    rows: np.ndarray  # int64, per entry
    id_column: str  # the file's column the ids are reported under
    records: int
    kind: str


# --------------------------------------------------------------------------- public API


def read_point_incidents(
    path: Path | str,
    *,
    column_map: Mapping[str, str] | None = None,
    timezone: str | None = None,
    now_s: int | None = None,
) -> IncidentSet:
    """Point incidents from a CSV, GeoJSON, GeoPackage or GeoParquet file; all rows or none."""
    return _load_points(Path(path), column_map, timezone, now_s).incidents


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
    concatenated; ids must be unique across files.  Problems of all files are reported at once."""
    if not paths:
        raise InvalidIncidentFileError(Violation("paths", "no incident file given"))
    now = _now(now_s)
    loaded: list[_Loaded] = []
    sources: list[SourceFile] = []
    problems: list[Violation] = []
    muni_cache: dict = {}
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
                item = _load_points(path, column_map, timezone, now)
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


# --------------------------------------------------------------------------- point files


def _load_points(path: Path, column_map, timezone, now_s) -> _Loaded:
    name = path.name
    kind = POINT_FORMATS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(POINT_FORMATS))
        raise InvalidIncidentFileError(Violation(name, f"unsupported file type {path.suffix!r} (expected {known})"))
    if kind == "csv":
        frame = _read_csv(path)
        geometry = None
        first_row = 2
    else:
        frame, geometry = _read_vector(path, kind)
        first_row = 1
    records = len(frame)
    blank = _blank_rows(frame) if kind == "csv" else np.zeros(len(frame), dtype=bool)
    if blank.any():
        records -= int(blank.sum())
        frame = frame[~blank]
    rows = frame.index.to_numpy(dtype=np.int64) + first_row
    frame = frame.reset_index(drop=True)
    incidents, id_column = _points_from_frame(frame, geometry, rows, name, column_map, timezone, _now(now_s))
    return _Loaded(incidents, rows, id_column, records, "points")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return _read_csv_text(path)
    except InvalidIncidentFileError:
        raise
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidIncidentFileError(Violation(path.name, f"cannot read {path.name!r} as CSV: {exc}")) from None


def _read_csv_text(path: Path, encodings: Sequence[str] = ("utf-8-sig",)) -> pd.DataFrame:
    """Every cell as text (missing = ""), blank lines kept so row numbers are line numbers."""
    last: Exception | None = None
    for encoding in encodings:
        try:
            with warnings.catch_warnings():
                # a row with more fields than the header: pandas would drop the extra fields
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    dtype=str,
                    na_filter=False,
                    keep_default_na=False,
                    skip_blank_lines=False,
                    index_col=False,
                    encoding=encoding,
                    encoding_errors="strict",
                )
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except pd.errors.ParserWarning:
            raise InvalidIncidentFileError(
                Violation(path.name, f"cannot read {path.name!r} as CSV: a row has more fields than the header")
            ) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame
    raise InvalidIncidentFileError(
        Violation(path.name, f"cannot decode {path.name!r} as {' or '.join(encodings)}: {last}")
    )


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=bool)
    first = frame.iloc[:, 0]
    blank = np.array(_text(first).str.strip() == "", dtype=bool)
    for column in frame.columns[1:]:
        candidates = np.flatnonzero(blank)
        if candidates.size == 0:
            break
        blank[candidates] = (_text(frame[column].iloc[candidates]).str.strip() == "").to_numpy()
    return blank


def _read_vector(path: Path, kind: str) -> tuple[pd.DataFrame, gpd.GeoSeries | None]:
    name = path.name
    try:
        if kind == "parquet":
            try:
                data = gpd.read_parquet(path)
            except ValueError as exc:  # a plain Parquet table: no geometry metadata
                if "geo" not in str(exc).lower():
                    raise
                data = pd.read_parquet(path)
        else:
            data = _read_ogr(path, datetime_as_string=True)
    except ImportError as exc:
        raise InvalidIncidentFileError(Violation(name, f"cannot read {name!r}: {exc}")) from None
    except Exception as exc:  # pyogrio, pyarrow and GDAL raise many kinds of errors for a broken file
        raise InvalidIncidentFileError(Violation(name, f"cannot read {name!r}: {exc}")) from None
    geometry = None
    if isinstance(data, gpd.GeoDataFrame) and data.geometry.name in data.columns:
        geometry = data.geometry
        if geometry.crs is not None and not _is_wgs84(geometry.crs):
            geometry = geometry.to_crs("OGC:CRS84")
        data = pd.DataFrame(data.drop(columns=[data.geometry.name]))
    data = data.reset_index(drop=True)
    if geometry is not None:
        geometry = geometry.reset_index(drop=True)
    data.columns = [str(c).strip() for c in data.columns]
    return data, geometry


def _read_ogr(path: Path, **kwargs) -> gpd.GeoDataFrame:
    """``pyogrio.read_dataframe`` without GDAL's notice that it renumbered duplicate feature ids
    (feature ids are not incident ids: those come from a column)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Several features with id", category=RuntimeWarning)
        return pyogrio.read_dataframe(path, **kwargs)


def _is_wgs84(crs) -> bool:
    try:
        return crs.equals("OGC:CRS84") or crs.equals("EPSG:4326") or crs.to_epsg() == 4326
    except Exception:
        return False


def _resolve_columns(
    frame: pd.DataFrame, column_map: Mapping[str, str] | None, has_geometry: bool, name: str
) -> dict[str, str]:
    """canonical name → the file's column; missing required columns are one violation each."""
    column_map = dict(column_map or {})
    unknown = sorted(set(column_map) - set(CANONICAL_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        allowed = ", ".join((*CANONICAL_COLUMNS, *OPTIONAL_COLUMNS))
        raise InvalidIncidentFileError(
            [Violation("column_map", f"unknown canonical column {u!r} (one of {allowed})") for u in unknown]
        )
    resolved = {canon: column_map.get(canon, canon) for canon in (*CANONICAL_COLUMNS, *OPTIONAL_COLUMNS)}
    present = set(frame.columns)
    use_geometry = has_geometry and resolved["latitude"] not in present and resolved["longitude"] not in present
    missing = []
    for canon in CANONICAL_COLUMNS:
        if use_geometry and canon in ("latitude", "longitude"):
            continue
        if resolved[canon] not in present:
            mapped = "" if resolved[canon] == canon else f" (mapped to {resolved[canon]!r})"
            missing.append(Violation(name, f"missing required column {canon!r}{mapped}"))
    if missing:
        raise InvalidIncidentFileError(missing)
    out = {canon: column for canon, column in resolved.items() if column in present}
    if use_geometry:
        out["latitude"] = out["longitude"] = "geometry"
    return out


def _points_from_frame(
    frame: pd.DataFrame,
    geometry: gpd.GeoSeries | None,
    rows: np.ndarray,
    name: str,
    column_map: Mapping[str, str] | None,
    timezone: str | None,
    now_s: int,
) -> tuple[IncidentSet, str]:
    columns = _resolve_columns(frame, column_map, geometry is not None, name)
    zone = _check_zone(timezone)
    report = _Report(name, rows, columns)
    n = len(frame)

    ids = _text(frame[columns["id"]]).str.strip()
    report.add(ids == "", "id", ids, lambda v: f"id is missing ({v!r})")
    present = ids != ""
    dup = ids.duplicated(keep="first") & present
    if dup.any():
        first_row = pd.Series(rows, index=ids.index)[present].groupby(ids[present], sort=False).first()
        firsts = ids[dup].map(first_row).to_numpy()
        report.add_each(dup, "id", ids, firsts, lambda v, r: f"duplicate id {v!r} (first on row {r})")

    lat, lng = _coordinates(frame, geometry, columns, report, n)

    when = _text(frame[columns["occurred_at"]])
    utc_s, _ = _parse_times(when, zone, now_s, report)

    type_text = _text(frame[columns["type"]])
    kind_code = _map_distinct(type_text, _type_code)
    allowed = ", ".join(INCIDENT_TYPES)
    report.add(np.isnan(kind_code), "type", type_text, lambda v: f"type {v!r} is not one of {allowed}")

    violent_text = _text(frame[columns["violent"]])
    violent = _map_distinct(violent_text, _violent_code)
    report.add(
        np.isnan(violent),
        "violent",
        violent_text,
        lambda v: f"violent {v!r} is not one of true/false, 1/0, yes/no, si/sí/no",
    )

    source = _text(frame[columns["source"]]).str.strip()
    report.add(source == "", "source", source, lambda v: f"source is missing ({v!r})")

    value_usd = None
    if "value_usd" in columns:
        value_text = _text(frame[columns["value_usd"]]).str.strip()
        value_usd = _numbers(frame[columns["value_usd"]])
        bad_value = (value_text != "") & ~(np.isfinite(value_usd) & (value_usd >= 0))
        report.add(bad_value, "value_usd", value_text, lambda v: f"value_usd {v!r} is not a non-negative number")

    report.raise_if_any()
    incidents = IncidentSet(
        ids=ids.to_numpy(dtype=object),
        lat=lat,
        lng=lng,
        utc_s=utc_s,
        local_how=local_hour_of_week_at(lat, lng, utc_s),
        violent=violent == 1,
        types=np.array(INCIDENT_TYPES, dtype=object)[kind_code.astype(np.int64)],
        sources=tuple(sorted(source.unique().tolist())),
        weight=None,
        value_usd=value_usd,
    )
    return incidents, columns["id"]


def _coordinates(
    frame: pd.DataFrame, geometry: gpd.GeoSeries | None, columns: dict[str, str], report: _Report, n: int
) -> tuple[np.ndarray, np.ndarray]:
    if columns["latitude"] == "geometry":
        assert geometry is not None
        geoms = geometry.to_numpy()
        missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        kind = shapely.get_type_id(geoms)
        not_point = ~missing & (kind != 0)  # 0 = Point
        types = pd.Series(geometry.geom_type, dtype=object).fillna("None")
        report.add(missing, "latitude", types, lambda v: "geometry is missing or empty (latitude/longitude absent)")
        report.add(not_point, "latitude", types, lambda v: f"geometry {v!r} is not a Point")
        points = np.where(kind == 0, geoms, None)
        lat = np.asarray(shapely.get_y(points), dtype=np.float64)
        lng = np.asarray(shapely.get_x(points), dtype=np.float64)
        ok_geom = ~(missing | not_point)
        lat_text = pd.Series(lat, dtype=object)
        lng_text = pd.Series(lng, dtype=object)
        _check_range(lat, ok_geom, "latitude", lat_text, 90, report)
        _check_range(lng, ok_geom, "longitude", lng_text, 180, report)
        return lat, lng
    out = []
    for canon, limit in (("latitude", 90), ("longitude", 180)):
        raw = frame[columns[canon]]
        text = _text(raw).str.strip()
        values = _numbers(raw)
        report.add(text == "", canon, text, lambda v, c=canon: f"{c} is missing ({v!r})")
        nan = (text != "") & ~np.isfinite(values)
        report.add(nan, canon, text, lambda v, c=canon: f"{c} {v!r} is not a finite number")
        _check_range(values, np.isfinite(values), canon, text, limit, report)
        out.append(values)
    return out[0], out[1]


def _check_range(values: np.ndarray, valid: np.ndarray, canon: str, text, limit: int, report: _Report) -> None:
    with np.errstate(invalid="ignore"):
        out = valid & (np.abs(values) > limit)
    report.add(out, canon, text, lambda v: f"{canon} {v!r} is out of range [-{limit}, {limit}]")


def _type_code(value) -> float:
    kind = value.strip().lower() if isinstance(value, str) else None
    return float(INCIDENT_TYPES.index(kind)) if kind in INCIDENT_TYPES else np.nan


def _violent_code(value) -> float:
    word = unicodedata.normalize("NFC", value.strip().lower()) if isinstance(value, str) else None
    flag = _BOOL_WORDS.get(word) if word is not None else None
    return np.nan if flag is None else float(flag)


def _parse_times(text: pd.Series, zone: str | None, now_s: int, report: _Report) -> tuple[np.ndarray, np.ndarray]:
    """(utc_s, local wall-clock seconds) per row; problems go to ``report``."""
    n = len(text)
    # RE2 in Arrow: ~10x faster than pandas' per-row Python regex on a million rows
    parts = pc.extract_regex(pa.array(text, type=pa.large_string(), from_pandas=True), _TIME_PATTERN)
    date, clock, offset = (pc.struct_field(parts, f) for f in ("date", "time", "offset"))
    matched = np.array(pc.is_valid(date), dtype=bool)
    wall_text = pc.binary_join_element_wise(date, pc.replace_substring(clock, ",", "."), pa.scalar("T", date.type))
    wall = pd.to_datetime(pd.Series(pd.array(wall_text, dtype="str")), format="ISO8601", errors="coerce")
    parsed = np.array(wall.notna(), dtype=bool) & matched
    local_s = np.zeros(n, dtype=np.int64)
    local_s[parsed] = wall[parsed].to_numpy().astype("datetime64[s]").astype(np.int64)
    report.add(
        ~parsed,
        "occurred_at",
        text,
        lambda v: f"occurred_at {v!r} is not an ISO 8601 date and time (YYYY-MM-DDTHH:MM[:SS][±HH:MM|Z])",
    )

    # few distinct offsets: parse each once
    offset_s = _map_distinct(pd.Series(pd.array(offset, dtype="str")), _offset_seconds)
    has_offset = parsed & ~np.isnan(offset_s)
    bad_offset = parsed & (offset_s == _BAD_OFFSET)
    report.add(bad_offset, "occurred_at", text, lambda v: f"occurred_at {v!r} has a UTC offset out of range")
    offset_s = np.where(has_offset & ~bad_offset, offset_s, 0).astype(np.int64)
    has_offset |= bad_offset

    utc_s = local_s - offset_s
    naive = parsed & ~has_offset
    if zone is None:
        report.add(
            naive,
            "occurred_at",
            text,
            lambda v: f"occurred_at {v!r} has no UTC offset and no time zone was given (--timezone)",
        )
    elif naive.any():
        local = pd.DatetimeIndex(wall[naive].to_numpy().astype("datetime64[s]"))
        instants = local.tz_localize(zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
        utc_s[naive] = instants.as_unit("s").asi8

    future = parsed & ~bad_offset & (utc_s > now_s + FUTURE_TOLERANCE_S)
    if zone is None:
        future &= ~naive
    report.add(future, "occurred_at", text, lambda v: f"occurred_at {v!r} is in the future")
    return utc_s, local_s


_BAD_OFFSET = float(1 << 40)


def _offset_seconds(text) -> float:
    """'Z' → 0, '-06:00'/'-0600'/'-06' → -21600; NaN for no offset; _BAD_OFFSET beyond ±14:00."""
    if not isinstance(text, str) or not text:
        return np.nan
    if text in ("Z", "z"):
        return 0.0
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    seconds = (hours * 3600 + minutes * 60) * (-1 if text[0] == "-" else 1)
    return _BAD_OFFSET if minutes >= 60 or abs(seconds) > _MAX_OFFSET_S else float(seconds)


def _map_distinct(series: pd.Series, func: Callable[[object], float]) -> np.ndarray:
    """``func`` applied once per distinct value (NaN/None included), as a float64 array."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.array([func(u) for u in uniques] + [func(None)], dtype=np.float64)
    return table[codes]  # code -1 (missing) picks the last entry


def _check_zone(timezone: str | None) -> str | None:
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidIncidentFileError(Violation("timezone", f"unknown IANA time zone {timezone!r}")) from None
    return timezone


# --------------------------------------------------------------------------- SESNSP municipal files


def _load_sesnsp(
    path: Path,
    municipalities: Path,
    roads: Path | None,
    resolution: int,
    now_s: int | None,
    cache: dict | None = None,
) -> tuple[_Loaded, dict]:
    """The file's entries and a cache (polygons, road cells, per-municipality spreads) for the next file."""
    if not (isinstance(resolution, int) and 0 <= resolution <= 15):
        raise InvalidIncidentFileError(Violation("resolution", f"H3 resolution {resolution!r} is not in 0..15"))
    name = path.name
    now = _now(now_s)
    frame = _read_csv_sesnsp(path)
    blank = _blank_rows(frame)
    records = len(frame) - int(blank.sum())
    frame = frame[~blank]
    header = {_norm(c): c for c in frame.columns}
    needed = ["ano", "cve municipio", "subtipo de delito", "modalidad", *(m.lower() for m in SESNSP_MONTHS)]
    missing = [n for n in needed if n not in header]
    if missing:
        raise InvalidIncidentFileError([Violation(name, f"missing required SESNSP column {m!r}") for m in missing])
    col = {n: header[n] for n in needed}

    subtype = frame[col["subtipo de delito"]].map(_norm)
    frame = frame[(subtype == _SESNSP_SUBTYPE).to_numpy()]
    rows = frame.index.to_numpy(dtype=np.int64) + 2
    frame = frame.reset_index(drop=True)
    report = _Report(name, rows, {k: v for k, v in col.items()})

    cache = {} if cache is None else cache
    polygons = _municipality_polygons(municipalities, cache)

    year_text = frame[col["ano"]].str.strip()
    year = pd.to_numeric(year_text, errors="coerce").to_numpy()
    bad_year = ~(np.isfinite(year) & (year == np.round(year)) & (year >= 1990) & (year <= 2200))
    report.add(bad_year, "ano", year_text, lambda v: f"Año {v!r} is not a year")

    key_text = frame[col["cve municipio"]].str.strip()
    keys = _municipality_keys(key_text)
    bad_key = keys.isna().to_numpy()
    report.add(bad_key, "cve municipio", key_text, lambda v: f"municipality key {v!r} is not a 1-5 digit number")
    unknown = ~bad_key & ~keys.isin(polygons.index).to_numpy()
    where = municipalities.name
    report.add(unknown, "cve municipio", key_text, lambda v: f"unknown municipality key {v!r} (not in {where})")

    modality_text = frame[col["modalidad"]]
    violent = modality_text.map(_norm).map(_SESNSP_MODALITIES)
    report.add(
        violent.isna().to_numpy(),
        "modalidad",
        modality_text,
        lambda v: f"Modalidad {v!r} is not 'Con violencia' or 'Sin violencia'",
    )

    valid_key = ~(bad_key | unknown | bad_year | violent.isna().to_numpy())
    dup_key = pd.DataFrame({"k": keys.to_numpy(dtype=object), "y": year, "m": violent.to_numpy(dtype=object)})
    dup = dup_key.duplicated(keep="first").to_numpy() & valid_key
    if dup.any():
        first = pd.Series(rows).groupby([dup_key["k"], dup_key["y"], dup_key["m"]], dropna=False).transform("first")
        report.add_each(
            dup,
            "cve municipio",
            key_text,
            first.to_numpy()[dup],
            lambda v, r: f"municipality {v!r} has this year and modality twice (first on row {r})",
        )

    counts = np.zeros((len(frame), 12), dtype=np.float64)
    for m, month in enumerate(SESNSP_MONTHS):
        text = frame[col[month.lower()]].str.strip()
        unpublished = text.str.lower().isin(_SESNSP_UNPUBLISHED).to_numpy()
        value = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~unpublished & ~(np.isfinite(value) & (value >= 0) & (value == np.round(value)))
        report.add(bad, month.lower(), text, lambda v, mo=month: f"{mo} count {v!r} is not a non-negative whole number")
        counts[:, m] = np.where(unpublished | bad, 0, value)

    ok_year = ~bad_year
    month_start = np.full((len(frame), 13), np.iinfo(np.int64).max, dtype=np.int64)
    if ok_year.any():
        month_start[ok_year] = _month_starts(year[ok_year].astype(np.int64))
    future = (counts > 0) & (month_start[:, :12] > now + FUTURE_TOLERANCE_S)
    for m, month in enumerate(SESNSP_MONTHS):
        report.add(
            future[:, m] & ok_year,
            month.lower(),
            frame[col[month.lower()]],
            lambda v, mo=month: f"{mo} count {v!r} is for a month that has not begun",
        )
    report.raise_if_any()

    # aggregate: (municipality, year, month, violent) with count > 0
    r_idx, m_idx = np.nonzero(counts > 0)
    groups = pd.DataFrame(
        {
            "key": keys.to_numpy(dtype=object)[r_idx],
            "row": rows[r_idx],
            "year": year[r_idx].astype(np.int64),
            "month": m_idx + 1,
            "violent": violent.to_numpy(dtype=bool)[r_idx],
            "count": counts[r_idx, m_idx],
            "mid": (month_start[r_idx, m_idx] + month_start[r_idx, m_idx + 1]) // 2,
        }
    )
    road_cells = _road_cells(roads, resolution, cache) if roads is not None else None
    by_key = [
        (key, group, _spread(key, polygons.loc[key], resolution, road_cells, cache))
        for key, group in groups.groupby("key", sort=True)
    ]
    incidents, entry_rows = _expand(by_key, name)
    return _Loaded(incidents, entry_rows, col["cve municipio"], records, "sesnsp"), cache


def _read_csv_sesnsp(path: Path) -> pd.DataFrame:
    try:
        return _read_csv_text(path, ("utf-8-sig", "cp1252"))
    except InvalidIncidentFileError:
        raise
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidIncidentFileError(Violation(path.name, f"cannot read {path.name!r} as CSV: {exc}")) from None


def _municipality_keys(text: pd.Series) -> pd.Series:
    """5-digit keys ("19039"); unpadded integers ("5030", "5030.0") are padded; anything else → NA."""
    cleaned = text.str.replace(r"\.0+$", "", regex=True)
    ok = cleaned.str.fullmatch(r"\d{1,5}").fillna(False).astype(bool)
    return cleaned.where(ok).str.zfill(5)


def _month_starts(years: np.ndarray) -> np.ndarray:
    """UTC epoch seconds of the first of each month (13 columns: up to next January) per year."""
    months = (years[:, None] - 1970) * 12 + np.arange(13)[None, :]
    return months.astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)


def _read_wgs84(path: Path, what: str) -> gpd.GeoDataFrame:
    """A vector file in WGS84 longitude/latitude; an unreadable one is the caller's error."""
    name = path.name
    try:
        data = _read_ogr(path)
    except Exception as exc:
        raise InvalidIncidentFileError(Violation(name, f"cannot read {what} {name!r}: {exc}")) from None
    if data.crs is not None and not _is_wgs84(data.crs):
        data = data.to_crs("OGC:CRS84")
    return data


def _municipality_polygons(path: Path, cache: dict) -> gpd.GeoSeries:
    key = ("polygons", str(path))
    if key in cache:
        return cache[key]
    name = path.name
    data = _read_wgs84(path, "municipality polygons")
    columns = {c.lower(): c for c in data.columns}
    if "cve_geo" in columns:
        keys = data[columns["cve_geo"]].astype(str).str.strip().str.zfill(5)
    elif "cve_ent" in columns and "cve_mun" in columns:
        ent = data[columns["cve_ent"]].astype(str).str.strip().str.zfill(2)
        keys = ent + data[columns["cve_mun"]].astype(str).str.strip().str.zfill(3)
    else:
        raise InvalidIncidentFileError(Violation(name, "municipality polygons need 'cve_geo' or 'cve_ent' + 'cve_mun'"))
    geoms = gpd.GeoSeries(data.geometry.to_numpy(), index=keys.to_numpy())
    polygonal = geoms.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if not polygonal.all():
        bad = geoms.index[~polygonal][0]
        raise InvalidIncidentFileError(Violation(name, f"municipality {bad!r} has no polygon geometry"))
    if geoms.index.has_duplicates:
        geoms = geoms.groupby(level=0).agg(lambda g: shapely.union_all(g.to_numpy()))
        geoms = gpd.GeoSeries(geoms)
    cache[key] = geoms
    return geoms


def road_cells(path: Path | str, resolution: int = 8) -> np.ndarray:
    """Sorted unique cells that the lines of a road layer pass through (for layer builds)."""
    return _road_cells(Path(path), resolution, {})


def _road_cells(path: Path, resolution: int, cache: dict) -> np.ndarray:
    """Sorted unique uint64 cells that the road lines pass through (gap-free along each line)."""
    key = ("roads", str(path), resolution)
    if key in cache:
        return cache[key]
    from geodata.cells import route_to_cells
    from geodata.route import from_points

    name = path.name
    data = _read_wgs84(path, "road lines")
    geoms = data.geometry.to_numpy()
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    lines = shapely.get_parts(shapely.line_merge(geoms)) if len(geoms) else geoms
    if not np.isin(shapely.get_type_id(lines), (1, 2)).all():  # LineString, LinearRing
        raise InvalidIncidentFileError(Violation(name, f"road layer {name!r} must hold only lines"))
    found = []
    for line in lines:
        coords = shapely.get_coordinates(line)
        try:
            chain = route_to_cells(
                from_points(coords[:, 1], coords[:, 0], field=name, max_points=max(len(coords), 2)), resolution
            )
        except InputError:  # a degenerate part (one distinct point): its cell alone
            found.append(np.array([_cy.latlng_to_cell(coords[0, 1], coords[0, 0], resolution)], dtype=np.uint64))
            continue
        found.append(chain.cells)
    cells = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)
    cache[key] = cells
    return cells


@dataclass(frozen=True)
class _Spread:
    cells: np.ndarray  # uint64
    share: np.ndarray  # float64, sums to 1
    lat: np.ndarray
    lng: np.ndarray
    names: list[str]  # hex cell ids


def _spread(key: str, polygon, resolution: int, road_cells: np.ndarray | None, cache: dict) -> _Spread:
    """Cells of one municipality and each one's share of a count (road cells if any, else by area)."""
    cache_key = ("spread", key, resolution, road_cells is not None)
    if cache_key in cache:
        return cache[cache_key]
    cells = _polygon_cells(polygon, resolution)
    on_road = cells[np.isin(cells, road_cells)] if road_cells is not None else cells[:0]
    if on_road.size:
        cells = on_road
        share = np.full(cells.size, 1.0 / cells.size)
    else:
        area = np.fromiter((_cy.cell_area(int(c), "km^2") for c in cells.tolist()), dtype=np.float64, count=cells.size)
        share = area / area.sum()
    centres = [_cy.cell_to_latlng(int(c)) for c in cells.tolist()]
    lat = np.fromiter((c[0] for c in centres), dtype=np.float64, count=cells.size)
    lng = np.fromiter((c[1] for c in centres), dtype=np.float64, count=cells.size)
    spread = _Spread(cells, share, lat, lng, [h3.int_to_str(int(c)) for c in cells.tolist()])
    cache[cache_key] = spread
    return spread


def _polygon_cells(polygon, resolution: int) -> np.ndarray:
    """Cells whose centre is inside the polygon; a polygon too small for any centre gets the cell
    of a point inside it."""
    cells = h3.geo_to_cells(polygon, resolution)
    if not cells:
        inside = shapely.point_on_surface(polygon)
        cells = [h3.latlng_to_cell(inside.y, inside.x, resolution)]
    return np.sort(np.array([h3.str_to_int(c) for c in cells], dtype=np.uint64))


def _expand(by_key: list[tuple[str, pd.DataFrame, _Spread]], name: str) -> tuple[IncidentSet, np.ndarray]:
    """One entry per (municipality, month, modality, cell), written straight into arrays sized
    up front (the ids are most of the memory: no intermediate copies of them)."""
    total = sum(len(group) * spread.cells.size for _, group, spread in by_key)
    ids = np.empty(total, dtype=object)
    lat, lng, weight = np.empty(total), np.empty(total), np.empty(total)
    utc_s, rows = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)
    violent = np.empty(total, dtype=bool)
    start = 0
    for key, group, spread in by_key:
        k, n = len(group), spread.cells.size
        end = start + k * n
        flags = group["violent"].tolist()
        labels = [
            f"sesnsp:{key}:{y:04d}-{m:02d}:{'v' if v else 'nv'}:"
            for y, m, v in zip(group["year"].tolist(), group["month"].tolist(), flags, strict=True)
        ]
        ids[start:end] = [prefix + cell for prefix in labels for cell in spread.names]
        lat[start:end] = np.tile(spread.lat, k)
        lng[start:end] = np.tile(spread.lng, k)
        weight[start:end] = np.outer(group["count"].to_numpy(dtype=np.float64), spread.share).ravel()
        utc_s[start:end] = np.repeat(group["mid"].to_numpy(dtype=np.int64), n)
        rows[start:end] = np.repeat(group["row"].to_numpy(dtype=np.int64), n)
        violent[start:end] = np.repeat(np.array(flags, dtype=bool), n)
        start = end
    kinds = np.array(["cargo_theft", "hijacking"], dtype=object)  # two shared str objects, not one per entry
    incidents = IncidentSet(
        ids=ids,
        lat=lat,
        lng=lng,
        utc_s=utc_s,
        local_how=np.full(total, UNKNOWN_HOUR, dtype=np.int16),
        violent=violent,
        types=kinds[violent.astype(np.intp)],
        sources=(name,),
        weight=weight,
        value_usd=None,
    )
    return incidents, rows


# --------------------------------------------------------------------------- shared helpers


class _Report:
    """Collects violations as ``file:row:column``; built only for the bad rows."""

    def __init__(self, name: str, rows: np.ndarray, columns: Mapping[str, str]) -> None:
        self.name = name
        self.rows = rows
        self.columns = dict(columns)
        self.order = {canon: i for i, canon in enumerate(self.columns)}
        self.items: list[tuple[int, int, Violation]] = []

    def add(self, mask, canon: str, values, describe: Callable[[object], str]) -> None:
        self.add_each(mask, canon, values, None, lambda v, _: describe(v))

    def add_each(self, mask, canon: str, values, extra, describe: Callable[[object, object], str]) -> None:
        where = np.flatnonzero(np.asarray(mask, dtype=bool))
        if where.size == 0:
            return
        column = self.columns.get(canon, canon)
        order = self.order.get(canon, len(self.order))
        picked = values.to_numpy(dtype=object)[where] if isinstance(values, pd.Series) else np.asarray(values)[where]
        others = repeat_none(where.size) if extra is None else extra
        for i, value, other in zip(where.tolist(), picked.tolist(), others, strict=True):
            row = int(self.rows[i])
            self.items.append((row, order, Violation(f"{self.name}:{row}:{column}", describe(_plain(value), other))))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: (item[0], item[1]))
            raise InvalidIncidentFileError([v for _, _, v in self.items])


def repeat_none(n: int) -> Iterable[None]:
    return [None] * n


def _plain(value):
    """NaN/None/NA as ''; numpy scalars as Python values, so ``!r`` shows what the file held."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return value.item() if isinstance(value, np.generic) else value


def _text(series: pd.Series) -> pd.Series:
    """A column as text ("" where missing), whatever type the file gave it."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.map({True: "true", False: "false"}).fillna("").astype(object)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.map(lambda t: "" if pd.isna(t) else t.isoformat()).astype(object)
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if np.all(values[finite] == np.round(values[finite])):
            text = pd.Series([str(int(v)) if f else "" for v, f in zip(values, finite, strict=True)], dtype=object)
            return text.set_axis(series.index)
        return series.map(lambda v: "" if pd.isna(v) else repr(float(v))).astype(object)
    if pd.api.types.is_string_dtype(series.dtype):
        return series.fillna("") if series.hasnans else series
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype(object).where(series.notna(), "").astype(str)
    return series.map(_cell_text).astype(object)


def _cell_text(value) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(_text(series), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


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


def _now(now_s: int | None) -> int:
    return int(time.time()) if now_s is None else int(now_s)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@lru_cache(maxsize=4096)
def _norm_cached(text: str) -> str:
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[\s._]+", " ", stripped.lower()).strip()


def _norm(text) -> str:
    """Lower case, accents dropped ("Año" → "ano"), runs of spaces, dots and underscores → one space."""
    return _norm_cached(str(text))
