"""Decode and validate a route in any accepted input form into a :class:`RoutePath`.

Accepted forms: explicit points, a Google encoded polyline (precision 5 or 6),
GeoJSON (a LineString, a Feature holding one, or a FeatureCollection with exactly
one such Feature), and GPX (track points, else route points).

Every problem is reported as :class:`~geodata.errors.InvalidRouteError` carrying
:class:`~geodata.errors.Violation` items whose ``field`` is the request path and
whose ``description`` names the offending value.  Coordinate checks are vectorised
and all bad coordinates are reported together (the first :data:`MAX_LISTED`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import gpxpy
import numpy as np

from geodata.bounded import check_size, load_json
from geodata.errors import InvalidRouteError, Violation
from geodata.geometry import cumulative_km, to_xyz

DEFAULT_MAX_POINTS = 100_000
MAX_LISTED = 20
# Consecutive points closer to antipodal than this (radians) have no defined great circle.
_ANTIPODAL_EPS = 1e-9
# Points whose unit vectors differ by less than this (~6 µm) count as the same point.
_SAME_POINT_EPS = 1e-12
# a DOCTYPE or ENTITY declaration: GPX never needs one
_DTD = re.compile(r"<!\s*(?:doctype|entity)", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class RoutePath:
    """A validated route: at least two distinct points, all finite and in range.

    ``lat`` and ``lng`` are read-only float64 arrays in degrees, in travel order.
    """

    lat: np.ndarray
    lng: np.ndarray

    def __len__(self) -> int:
        return int(self.lat.shape[0])

    @cached_property
    def along_km(self) -> np.ndarray:
        """Great-circle distance along the route at each vertex (0 at the start), computed once."""
        along = cumulative_km(self.lat, self.lng)
        along.flags.writeable = False
        return along


# --------------------------------------------------------------------------- points


def from_points(
    lats: Sequence[float] | np.ndarray,
    lngs: Sequence[float] | np.ndarray,
    *,
    field: str = "route.line.points",
    max_points: int = DEFAULT_MAX_POINTS,
) -> RoutePath:
    """Validate explicit latitude/longitude sequences (degrees).

    Violations name ``{field}[i].latitude`` / ``{field}[i].longitude``.
    """
    lat = _as_float_array(lats, field, "latitudes")
    lng = _as_float_array(lngs, field, "longitudes")
    if lat.shape != lng.shape:
        raise InvalidRouteError(Violation(field, f"got {lat.size} latitudes but {lng.size} longitudes"))

    def where(i: int, name: str | None) -> tuple[str, str]:
        return (f"{field}[{i}].{name}" if name else f"{field}[{i}]"), ""

    return _validated(lat, lng, field, max_points, where)


def _as_float_array(values: object, field: str, what: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidRouteError(Violation(field, f"{what} must be numbers: {exc}")) from None
    if arr.ndim != 1:
        raise InvalidRouteError(Violation(field, f"{what} must be a flat sequence, got shape {arr.shape}"))
    return arr


# --------------------------------------------------------------------------- validation

# where(i, "latitude" | "longitude" | None for the whole point) -> (field path, description prefix)
_Where = Callable[[int, "str | None"], tuple[str, str]]


def _validated(lat: np.ndarray, lng: np.ndarray, field: str, max_points: int, where: _Where) -> RoutePath:
    n = lat.size
    if n > max_points:
        raise InvalidRouteError(Violation(field, f"has {n} points, more than the limit of {max_points}"))
    bad = _coordinate_violations(lat, lng, field, where)
    if bad:
        raise InvalidRouteError(bad)
    if not _has_two_distinct(lat, lng):
        distinct = {0: "no points", 1: "1 point"}.get(n, f"{n} points, all identical")
        raise InvalidRouteError(Violation(field, f"needs at least two distinct points (got {distinct})"))
    _check_antipodal(lat, lng, where)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    lng = np.ascontiguousarray(lng, dtype=np.float64)
    lat.flags.writeable = False
    lng.flags.writeable = False
    return RoutePath(lat, lng)


def _coordinate_violations(lat: np.ndarray, lng: np.ndarray, field: str, where: _Where) -> list[Violation]:
    with np.errstate(invalid="ignore"):
        lat_bad = ~(np.abs(lat) <= 90.0)  # NaN compares False, so it is caught too
        lng_bad = ~(np.abs(lng) <= 180.0)
    bad_idx = np.flatnonzero(lat_bad | lng_bad)
    if bad_idx.size == 0:
        return []
    out: list[Violation] = []
    total = int(lat_bad.sum() + lng_bad.sum())
    for i in bad_idx.tolist():
        if lat_bad[i]:
            out.append(_coordinate_violation(i, "latitude", lat[i], lng[i], where))
        if lng_bad[i]:
            out.append(_coordinate_violation(i, "longitude", lng[i], lat[i], where))
        if len(out) >= MAX_LISTED:
            break
    out = out[:MAX_LISTED]
    if total > len(out):
        out.append(Violation(field, f"... and {total - len(out)} more invalid coordinates not listed"))
    return out


def _coordinate_violation(i: int, name: str, value: float, other: float, where: _Where) -> Violation:
    path, prefix = where(i, name)
    limit = 90 if name == "latitude" else 180
    v = float(value)
    if not math.isfinite(v):
        text = f"{name} {v!r} is not a finite number"
    else:
        text = f"{name} {v!r} is out of range [-{limit}, {limit}]"
        o = float(other)
        if name == "latitude" and abs(v) <= 180 and math.isfinite(o) and abs(o) <= 90:
            text += " (latitude and longitude look swapped)"
    return Violation(path, prefix + text)


def _has_two_distinct(lat: np.ndarray, lng: np.ndarray) -> bool:
    """True when some point differs from the first (poles and ±180° handled)."""
    if lat.size < 2:
        return False
    differ = np.flatnonzero((lat != lat[0]) | (lng != lng[0]))
    if differ.size == 0:
        return False
    # Raw inequality is almost always real; confirm on unit vectors, cheapest first.
    first = to_xyz(lat[:1], lng[:1])
    for chunk in (differ[:1], differ):
        far = np.abs(to_xyz(lat[chunk], lng[chunk]) - first).max(axis=1) > _SAME_POINT_EPS
        if far.any():
            return True
    return False


def _check_antipodal(lat: np.ndarray, lng: np.ndarray, where: _Where) -> None:
    """Reject consecutive antipodal points: the great circle between them is undefined."""
    # Cheap prefilter in degrees, wide enough for _ANTIPODAL_EPS (5.7e-8°) everywhere:
    # outside the polar caps the longitude tolerance needed is at most eps/cos(89.99°).
    lat_tol, lng_tol, cap = 1e-6, 1e-3, 0.01
    cand = np.flatnonzero(np.abs(np.diff(lng)) > 180.0 - lng_tol)
    if lat.max() > 90.0 - cap or lat.min() < cap - 90.0:  # near a pole any longitude will do
        polar = np.flatnonzero(np.abs(lat) > 90.0 - cap)
        cand = np.union1d(cand, np.union1d(polar, polar - 1))
        cand = cand[(cand >= 0) & (cand < lat.size - 1)]
    cand = cand[np.abs(lat[cand] + lat[cand + 1]) < lat_tol]
    if cand.size == 0:
        return
    s = to_xyz(lat[cand], lng[cand]) + to_xyz(lat[cand + 1], lng[cand + 1])
    near = cand[np.einsum("ij,ij->i", s, s) < (2 * _ANTIPODAL_EPS) ** 2]
    if near.size:
        i = int(near[0])
        path, prefix = where(i + 1, None)
        raise InvalidRouteError(
            Violation(
                path,
                f"{prefix}point {i + 1} is antipodal to point {i}; the path "
                "between them is undefined (add intermediate points)",
            )
        )


def _item_where(field: str, item: str) -> _Where:
    """Violations on ``field`` itself, the description naming ``item[i]``."""

    def where(i: int, name: str | None) -> tuple[str, str]:
        return field, f"{item}[{i}]: "

    return where


# --------------------------------------------------------------------------- polyline


def from_polyline(
    text: str,
    *,
    precision: int = 5,
    field: str = "route.encoded_polyline",
    max_points: int = DEFAULT_MAX_POINTS,
) -> RoutePath:
    """Decode a Google encoded polyline (``precision`` 5 = Google, 6 = OSRM/Valhalla)."""
    if not isinstance(precision, int) or not 1 <= precision <= 9:
        raise InvalidRouteError(Violation(field, f"precision {precision!r} must be 1..9"))
    lat, lng = decode_polyline(text, precision=precision, field=field, max_points=max_points)
    return _validated(lat, lng, field, max_points, _item_where(field, "points"))


# Longest value we accept, in 5-bit chunks: the largest legal delta (±360° at
# precision 9, zig-zag encoded: < 2^40) needs 8; more means corrupt input.
_MAX_CHUNKS = 8
# so a point (two values) takes 2..16 characters: a longer text has more points than the limit
POLYLINE_CHARS_PER_POINT = 2 * _MAX_CHUNKS
# GeoJSON text: generous room per position (pretty-printed with altitude takes ~60 characters)
# and for a Feature's properties; the values (``[``, ``{``, ``,`` outside strings) likewise
GEOJSON_CHARS_PER_POINT = 256
GEOJSON_VALUES_PER_POINT = 8
GEOJSON_EXTRA_CHARS = 1 << 20
GEOJSON_EXTRA_VALUES = 100_000


def polyline_max_chars(max_points: int) -> int:
    """The longest encoded polyline a route of ``max_points`` points can be."""
    return POLYLINE_CHARS_PER_POINT * max_points


def gpx_max_chars(max_points: int) -> int:
    """The longest GPX text accepted for a route of at most ``max_points`` points (a track point with
    its time, elevation and extensions takes a few hundred characters)."""
    return GEOJSON_EXTRA_CHARS + 2 * GEOJSON_CHARS_PER_POINT * max_points


def geojson_max_chars(max_points: int) -> int:
    """The longest GeoJSON text accepted for a route of at most ``max_points`` points."""
    return GEOJSON_EXTRA_CHARS + GEOJSON_CHARS_PER_POINT * max_points


def decode_polyline(
    text: str,
    *,
    precision: int = 5,
    field: str = "route.encoded_polyline",
    max_points: int = DEFAULT_MAX_POINTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised polyline decoder; returns (lat, lng) float64 arrays, unvalidated.

    Raises :class:`InvalidRouteError` for anything that is not a complete polyline
    (bad characters, a value cut off mid-way, a latitude without its longitude).
    """
    if not isinstance(text, str):
        raise InvalidRouteError(Violation(field, f"must be a string, got {type(text).__name__}"))
    # before anything is allocated for it: a point takes at most 16 characters, so a longer text
    # has more points than the limit (or is corrupt)
    if len(text) > polyline_max_chars(max_points):
        raise InvalidRouteError(
            Violation(
                field,
                f"is {len(text)} characters long, more than a route of at most {max_points} points can be "
                f"({POLYLINE_CHARS_PER_POINT} characters a point at most)",
            )
        )
    try:
        raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as exc:
        raise InvalidRouteError(
            Violation(field, f"invalid character {text[exc.start]!r} at offset {exc.start}")
        ) from None
    wrong = np.flatnonzero((raw < 63) | (raw > 126))
    if wrong.size:
        k = int(wrong[0])
        raise InvalidRouteError(Violation(field, f"invalid character {text[k]!r} at offset {k} (not polyline data)"))
    last = raw < 63 + 0x20  # a chunk without the continuation bit ends a value
    n_values = int(last.sum())
    if n_values // 2 > max_points:
        raise InvalidRouteError(Violation(field, f"has {n_values // 2} points, more than the limit of {max_points}"))
    chunk = raw.astype(np.int64) - 63
    if raw.size and not last[-1]:
        raise InvalidRouteError(Violation(field, f"is truncated: the last value (at offset {raw.size}) is incomplete"))
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    pos = np.arange(raw.size) - np.repeat(starts, ends - starts + 1)
    if pos.size and pos.max() >= _MAX_CHUNKS:
        k = int(np.argmax(pos >= _MAX_CHUNKS))
        raise InvalidRouteError(
            Violation(field, f"has a value running past offset {k}, too long to be a coordinate (corrupt data)")
        )
    if n_values % 2:
        raise InvalidRouteError(
            Violation(field, f"is truncated: {n_values} values is odd (a latitude lacks its longitude)")
        )
    shifted = (chunk & 0x1F) << (5 * pos)
    values = np.add.reduceat(shifted, starts) if starts.size else shifted[:0]
    deltas = np.where(values & 1, ~(values >> 1), values >> 1)
    coords = np.cumsum(deltas.reshape(-1, 2), axis=0) / float(10**precision)
    return coords[:, 0].copy(), coords[:, 1].copy()


# --------------------------------------------------------------------------- GeoJSON


def from_geojson(
    text: str,
    *,
    field: str = "route.geojson",
    max_points: int = DEFAULT_MAX_POINTS,
) -> RoutePath:
    """Decode a GeoJSON LineString, a Feature holding one, or a one-feature collection.

    Positions are ``[longitude, latitude(, altitude)]``; the altitude is ignored. The text's
    length, how many values it holds and how deeply it nests are checked before it is parsed
    (:func:`geodata.bounded.load_json`).
    """
    if not isinstance(text, str):
        raise InvalidRouteError(Violation(field, f"must be a string, got {type(text).__name__}"))
    doc = load_json(
        text,
        field,
        max_chars=geojson_max_chars(max_points),
        max_items=GEOJSON_EXTRA_VALUES + GEOJSON_VALUES_PER_POINT * max_points,
        error=InvalidRouteError,
        what="GeoJSON",
    )
    coords, path = _find_linestring(doc, field)
    lat, lng = _positions(coords, path, field, max_points, maybe_bools="true" in text or "false" in text)
    return _validated(lat, lng, field, max_points, _item_where(field, path))


def _kind(value: object) -> str:
    if isinstance(value, dict):
        t = value.get("type")
        return f"{t}" if isinstance(t, str) else 'an object without a "type"'
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _find_linestring(doc: object, field: str) -> tuple[object, str]:
    """Return (coordinates, JSON path of the coordinates) or raise."""
    prefix = ""
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list) or len(feats) != 1:
            count = len(feats) if isinstance(feats, list) else "no"
            raise InvalidRouteError(
                Violation(
                    field, f"expected a FeatureCollection with exactly one LineString feature, found {count} features"
                )
            )
        doc, prefix = feats[0], "features[0]."
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc, prefix = doc.get("geometry"), prefix + "geometry."
    if not (isinstance(doc, dict) and doc.get("type") == "LineString"):
        raise InvalidRouteError(
            Violation(
                field,
                f"expected a LineString geometry (or a Feature holding one), "
                f"found {_kind(doc)}" + (f" at {prefix.rstrip('.')}" if prefix else ""),
            )
        )
    if "coordinates" not in doc:
        where = f" at {prefix.rstrip('.')}" if prefix else ""
        raise InvalidRouteError(Violation(field, f'LineString{where} has no "coordinates"'))
    return doc["coordinates"], prefix + "coordinates"


def _positions(
    coords: object, path: str, field: str, max_points: int, *, maybe_bools: bool
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(coords, list):
        raise InvalidRouteError(
            Violation(field, f"{path} must be an array of [longitude, latitude] positions, found {_kind(coords)}")
        )
    if len(coords) > max_points:
        raise InvalidRouteError(Violation(field, f"has {len(coords)} points, more than the limit of {max_points}"))
    try:  # fast path: a rectangular all-number array
        arr = np.array(coords)
    except (TypeError, ValueError):
        arr = None
    if (
        arr is not None
        and arr.ndim == 2
        and arr.shape[1] >= 2
        and arr.dtype.kind in "fi"
        # numpy silently turns JSON true/false into 1/0: look for them only if present at all
        and not (maybe_bools and any(type(v) is bool for pos in coords for v in pos))
    ):
        arr = arr.astype(np.float64, copy=False)
        return arr[:, 1].copy(), arr[:, 0].copy()
    return _positions_slow(coords, path, field)


def _positions_slow(coords: list[Any], path: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    lat = np.empty(len(coords))
    lng = np.empty(len(coords))
    for i, pos in enumerate(coords):
        if not isinstance(pos, list) or len(pos) < 2:
            raise InvalidRouteError(
                Violation(field, f"{path}[{i}] must be a [longitude, latitude] array, found {json.dumps(pos)[:60]}")
            )
        for j, (name, out) in enumerate((("longitude", lng), ("latitude", lat))):
            v = pos[j]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidRouteError(
                    Violation(field, f"{path}[{i}][{j}] ({name}) must be a number, found {json.dumps(v)[:60]}")
                )
            try:
                out[i] = float(v)
            except OverflowError:
                out[i] = math.inf if v > 0 else -math.inf
    return lat, lng


# --------------------------------------------------------------------------- GPX


def from_gpx(
    text: str,
    *,
    field: str = "route",
    max_points: int = DEFAULT_MAX_POINTS,
) -> RoutePath:
    """Decode GPX: all track points (every track and segment, in document order), or,
    when there are none, all route points. Waypoints are ignored. The text's length is checked
    first, and a document declaring a DTD (entities: the XML bomb) is refused before it is parsed."""
    if not isinstance(text, str):
        raise InvalidRouteError(Violation(field, f"must be a string, got {type(text).__name__}"))
    check_size(text, field, gpx_max_chars(max_points), InvalidRouteError)
    if _DTD.search(text):
        raise InvalidRouteError(Violation(field, "GPX with a DOCTYPE or ENTITY declaration is not accepted"))
    try:
        gpx = gpxpy.parse(text)
    except Exception as exc:  # gpxpy raises GPXException and also bare Exception
        raise InvalidRouteError(Violation(field, f"is not valid GPX: {exc}")) from None
    pts: list[Any] = [p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    item = "trkpt"
    if not pts:
        pts = [p for rte in gpx.routes for p in rte.points]
        item = "rtept"
    if not pts:
        raise InvalidRouteError(
            Violation(
                field, f"GPX has no track or route points (found {len(gpx.waypoints)} waypoints, which are not a path)"
            )
        )
    if len(pts) > max_points:
        raise InvalidRouteError(Violation(field, f"has {len(pts)} points, more than the limit of {max_points}"))
    lat = np.fromiter((p.latitude for p in pts), dtype=np.float64, count=len(pts))
    lng = np.fromiter((p.longitude for p in pts), dtype=np.float64, count=len(pts))
    return _validated(lat, lng, field, max_points, _item_where(field, item))


# --------------------------------------------------------------------------- files


def from_file(
    path: Path | str,
    *,
    precision: int = 5,
    max_points: int = DEFAULT_MAX_POINTS,
    field: str | None = None,
) -> RoutePath:
    """Read a route file: ``.geojson``/``.json`` → GeoJSON, ``.gpx`` → GPX,
    ``.polyline``/``.txt`` → encoded polyline; otherwise sniff the content
    (``<`` GPX, ``{`` GeoJSON, else polyline)."""
    p = Path(path)
    name = field or str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRouteError(Violation(name, f"is not UTF-8 text: {exc}")) from None
    kind = {".geojson": "geojson", ".json": "geojson", ".gpx": "gpx", ".polyline": "polyline", ".txt": "polyline"}.get(
        p.suffix.lower()
    )
    if kind is None:
        head = text.lstrip()[:1]
        kind = "gpx" if head == "<" else "geojson" if head in "{[" and head else "polyline"
    if kind == "geojson":
        return from_geojson(text, field=name, max_points=max_points)
    if kind == "gpx":
        return from_gpx(text, field=name, max_points=max_points)
    return from_polyline(text.strip(), precision=precision, field=name, max_points=max_points)
