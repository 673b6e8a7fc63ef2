"""Spherical geometry helpers on numpy arrays (degrees in, kilometres out).

Everything works on unit 3-D vectors so antimeridian crossings and the poles need
no special cases: longitudes are never interpolated directly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# The authalic radius H3 itself uses (``h3.great_circle_distance`` agrees with us).
EARTH_RADIUS_KM = 6371.007180918475


def to_xyz(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    """Unit vectors, shape ``(n, 3)``, for latitudes/longitudes in degrees."""
    phi = np.radians(lat)
    lam = np.radians(lng)
    cos_phi = np.cos(phi)
    return np.stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)), axis=-1)


def to_latlng(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes in degrees for (not necessarily unit) vectors ``(n, 3)``."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    lng = np.degrees(np.arctan2(y, x))
    return lat, lng


def distance_to_arc_km(lat: ArrayLike, lng: ArrayLike, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Great-circle distance from each point to the shorter arc from ``a`` to ``b`` (lat, lng):
    to the arc's nearest point when the point's foot on the great circle lies between the ends,
    else to the nearer end. Exact on the sphere, however long the arc."""
    points = to_xyz(np.atleast_1d(np.asarray(lat, dtype=np.float64)), np.atleast_1d(np.asarray(lng, dtype=np.float64)))
    ends = to_xyz(np.array([a[0], b[0]]), np.array([a[1], b[1]]))
    to_ends: np.ndarray = np.minimum(haversine_km(lat, lng, a[0], a[1]), haversine_km(lat, lng, b[0], b[1]))
    to_ends = to_ends.reshape(len(points))
    normal = np.cross(ends[0], ends[1])
    size = float(np.linalg.norm(normal))
    if size < 1e-12:  # the ends coincide (or are antipodal): only the ends are defined
        return to_ends
    normal /= size
    off = points @ normal
    foot = points - off[:, None] * normal
    between = (np.cross(ends[0], foot) @ normal >= 0) & (np.cross(foot, ends[1]) @ normal >= 0)
    to_arc = np.arcsin(np.clip(np.abs(off), 0.0, 1.0)) * EARTH_RADIUS_KM
    distance: np.ndarray = np.where(between, to_arc, to_ends)
    return distance


def cumulative_km(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    """Distance along the polyline (haversine) at each vertex, starting at 0, shape ``(n,)``."""
    phi = np.radians(lat)
    s_phi = np.sin(np.diff(phi) * 0.5)
    s_lam = np.sin(np.diff(np.radians(lng)) * 0.5)
    c = np.cos(phi)
    h = s_phi * s_phi
    h += c[:-1] * c[1:] * s_lam * s_lam
    np.sqrt(h, out=h)
    np.minimum(h, 1.0, out=h)
    np.arcsin(h, out=h)
    out = np.zeros(len(phi))
    np.cumsum(h, out=out[1:])
    out *= 2.0 * EARTH_RADIUS_KM
    return out


def haversine_km(lat1: ArrayLike, lng1: ArrayLike, lat2: ArrayLike, lng2: ArrayLike) -> np.ndarray:
    """Classic haversine distance in km (broadcasting), degrees in."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlam = np.radians(np.asarray(lng2) - np.asarray(lng1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    distance: np.ndarray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return distance
