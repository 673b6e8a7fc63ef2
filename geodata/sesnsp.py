"""SESNSP municipal CSVs (monthly "Robo a transportista" counts) spread onto H3 cells.

The government's own cp1252 export: each municipality-month count is spread over H3 cells
of the municipality polygon, on road cells when a road layer has any there, else over all
its cells in proportion to cell area.  Entries carry ``weight`` = share of the count and
``local_how`` = ``UNKNOWN_HOUR`` (the layer gives them the learned hour profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias, cast

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geodata import h3x
from geodata.errors import InputError, Violation
from geodata.incidents import (
    UNKNOWN_HOUR,
    IncidentSet,
    InvalidIncidentFileError,
)
from geodata.ingest_points import _blank_rows, _is_wgs84, _read_csv_text, _read_ogr
from geodata.ingest_report import _Loaded, _norm, _now, _Report
from geodata.ingest_time import FUTURE_TOLERANCE_S

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

# what one file's read leaves for the next, by key: ("polygons", path) → GeoSeries,
# ("roads", path, resolution) → cells, ("spread", municipality, resolution, on roads) → _Spread
SesnspCache: TypeAlias = dict[tuple[str | int | bool, ...], "gpd.GeoSeries | np.ndarray | _Spread"]


def _load_sesnsp(
    path: Path,
    municipalities: Path,
    roads: Path | None,
    resolution: int,
    now_s: int | None,
    cache: SesnspCache | None = None,
) -> tuple[_Loaded, SesnspCache]:
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

        def not_whole(v: object, mo: str = month) -> str:
            return f"{mo} count {v!r} is not a non-negative whole number"

        report.add(bad, month.lower(), text, not_whole)
        counts[:, m] = np.where(unpublished | bad, 0, value)

    ok_year = ~bad_year
    month_start = np.full((len(frame), 13), np.iinfo(np.int64).max, dtype=np.int64)
    if ok_year.any():
        month_start[ok_year] = _month_starts(year[ok_year].astype(np.int64))
    future = (counts > 0) & (month_start[:, :12] > now + FUTURE_TOLERANCE_S)
    for m, month in enumerate(SESNSP_MONTHS):

        def not_begun(v: object, mo: str = month) -> str:
            return f"{mo} count {v!r} is for a month that has not begun"

        report.add(future[:, m] & ok_year, month.lower(), frame[col[month.lower()]], not_begun)
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


def read_areas(path: Path, what: str) -> list[BaseGeometry]:
    """The geometries of a vector file (any format GDAL reads), in WGS84 longitude/latitude:
    the area a layer's data covers (``layers build --coverage``, the municipalities of SESNSP data)."""
    return [g for g in _read_wgs84(path, what).geometry if g is not None]


def _municipality_polygons(path: Path, cache: SesnspCache) -> gpd.GeoSeries:
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


def _road_cells(path: Path, resolution: int, cache: SesnspCache) -> np.ndarray:
    """Sorted unique uint64 cells that the road lines pass through (gap-free along each line)."""
    key = ("roads", str(path), resolution)
    if key in cache:
        return cast("np.ndarray", cache[key])  # a "roads" key holds the cells
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
            found.append(np.array([h3x.latlng_to_cell(coords[0, 1], coords[0, 0], resolution)], dtype=np.uint64))
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


def _spread(
    key: str,
    polygon: shapely.Polygon | shapely.MultiPolygon,
    resolution: int,
    road_cells: np.ndarray | None,
    cache: SesnspCache,
) -> _Spread:
    """Cells of one municipality and each one's share of a count (road cells if any, else by area)."""
    cache_key = ("spread", key, resolution, road_cells is not None)
    if cache_key in cache:
        return cast("_Spread", cache[cache_key])  # a "spread" key holds a _Spread
    cells = _polygon_cells(polygon, resolution)
    on_road = cells[np.isin(cells, road_cells)] if road_cells is not None else cells[:0]
    if on_road.size:
        cells = on_road
        share = np.full(cells.size, 1.0 / cells.size)
    else:
        area = np.fromiter((h3x.cell_area(int(c), "km^2") for c in cells.tolist()), dtype=np.float64, count=cells.size)
        share = area / area.sum()
    centres = [h3x.cell_to_latlng(int(c)) for c in cells.tolist()]
    lat = np.fromiter((c[0] for c in centres), dtype=np.float64, count=cells.size)
    lng = np.fromiter((c[1] for c in centres), dtype=np.float64, count=cells.size)
    spread = _Spread(cells, share, lat, lng, [h3.int_to_str(int(c)) for c in cells.tolist()])
    cache[cache_key] = spread
    return spread


def _polygon_cells(polygon: shapely.Polygon | shapely.MultiPolygon, resolution: int) -> np.ndarray:
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
