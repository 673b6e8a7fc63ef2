"""Point incident files (CSV, GeoJSON, GeoPackage, GeoParquet) → :class:`~geodata.incidents.IncidentSet`.

The canonical columns ``id, occurred_at, latitude, longitude, type, violent, source`` and an
optional ``value_usd``; ``column_map`` renames them (canonical name → the file's column).
Vector formats may give the position as a point geometry instead of latitude/longitude.
Every bad row is reported (``file:row:column``; ``row`` is the 1-based line in a CSV, the
header being line 1, or the 1-based feature number in other formats).
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geodata.errors import Violation
from geodata.incidents import (
    CANONICAL_COLUMNS,
    INCIDENT_TYPES,
    IncidentSet,
    InvalidIncidentFileError,
)
from geodata.ingest_report import _Loaded, _map_distinct, _now, _numbers, _Report, _text
from geodata.ingest_time import _check_zone, _parse_times
from geodata.timezones import CELL_RESOLUTION, local_hour_of_week_at

if TYPE_CHECKING:
    from pyproj import CRS

OPTIONAL_COLUMNS = ("value_usd",)
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


def _load_points(
    path: Path,
    column_map: Mapping[str, str] | None,
    timezone: str | None,
    now_s: int | None,
    resolution: int = CELL_RESOLUTION,
) -> _Loaded:
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
    incidents, id_column = _points_from_frame(
        frame, geometry, rows, name, column_map, timezone, _now(now_s), resolution
    )
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


def _read_ogr(path: Path, **kwargs: object) -> gpd.GeoDataFrame:
    """``pyogrio.read_dataframe`` without GDAL's notice that it renumbered duplicate feature ids
    (feature ids are not incident ids: those come from a column)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Several features with id", category=RuntimeWarning)
        return pyogrio.read_dataframe(path, **kwargs)


def _is_wgs84(crs: CRS) -> bool:
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
    resolution: int = CELL_RESOLUTION,
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
        local_how=local_hour_of_week_at(lat, lng, utc_s, resolution),
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

        def missing(v: object, c: str = canon) -> str:
            return f"{c} is missing ({v!r})"

        def not_finite(v: object, c: str = canon) -> str:
            return f"{c} {v!r} is not a finite number"

        report.add(text == "", canon, text, missing)
        nan = (text != "") & ~np.isfinite(values)
        report.add(nan, canon, text, not_finite)
        _check_range(values, np.isfinite(values), canon, text, limit, report)
        out.append(values)
    return out[0], out[1]


def _check_range(
    values: np.ndarray, valid: np.ndarray, canon: str, text: pd.Series, limit: int, report: _Report
) -> None:
    with np.errstate(invalid="ignore"):
        out = valid & (np.abs(values) > limit)
    report.add(out, canon, text, lambda v: f"{canon} {v!r} is out of range [-{limit}, {limit}]")


def _type_code(value: object) -> float:
    kind = value.strip().lower() if isinstance(value, str) else None
    return float(INCIDENT_TYPES.index(kind)) if kind in INCIDENT_TYPES else np.nan


def _violent_code(value: object) -> float:
    word = unicodedata.normalize("NFC", value.strip().lower()) if isinstance(value, str) else None
    flag = _BOOL_WORDS.get(word) if word is not None else None
    return np.nan if flag is None else float(flag)
