"""Turn a :class:`~geodata.route.RoutePath` into a gap-free chain of H3 cells.

Algorithm (all geometry on unit 3-D vectors, so the antimeridian, the poles and
pentagons need no special cases):

1. Every vertex is an *anchor*: a point on the route with its cell
   (``h3 latlng_to_cell``) and its distance along the route (great-circle, km).
2. Wherever two consecutive anchors lie in different cells that are not grid
   neighbours, the great-circle midpoint of the two anchors becomes a new anchor
   (exact position, exact distance), recursively, until every consecutive pair of
   anchors is in the same cell or in neighbouring cells.  While many gaps are open
   (sparse routes) all of them are bisected per round with numpy; a few remaining
   gaps are finished with scalar maths, which is cheaper than numpy call overhead.
   Long sparse segments therefore follow the true great circle, never interpolated
   longitudes or a grid-space line.
3. Consecutive equal cells collapse into one chain entry.  The truck *enters* a
   cell halfway between the last anchor of the previous cell and the first anchor
   of the cell (the exact boundary crossing is not computed: the error is at most
   half the distance between those two anchors, and as they lie in neighbouring
   cells that is about one cell across at worst, far less on dense routes).  Each
   entry therefore has a ``start_km``, and ``length_km`` is the gap to the next
   start, so the lengths sum to the route length.

Bisection stops at *neighbouring* cells, so where a segment between two anchors in
neighbouring cells A and B cuts across the corner of a third cell C (near the vertex
A, B and C share), C is not listed and its stretch is split between A and B.  On
dense routes that stretch is short (below the vertex spacing); on sparse straight
segments at resolution 8 about 1-6 % of the length falls in such clips, each at most
about one edge long.  ``refine_km`` bounds them when that matters.

``h3.grid_path_cells`` is not used on the hot path: it costs ~5 µs per call against
~0.5 µs per bisected midpoint, fails across pentagons, and draws lines in grid space
rather than along the great circle.  It remains only as a last resort if bisection
ever fails to converge (not observed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np

from geodata import h3x
from geodata.geometry import EARTH_RADIUS_KM, to_latlng, to_xyz
from geodata.route import RoutePath

# Each round halves the longest gap; 64 rounds shrink a half-globe segment below 1e-12 m.
_MAX_ROUNDS = 64
# With fewer open gaps than this a scalar loop beats a round of numpy calls.
_SCALAR_BELOW = 48


@dataclass(frozen=True, eq=False)
class CellChain:
    """H3 cells in travel order, gap-free (consecutive entries are distinct grid
    neighbours); a cell re-appears when the route comes back to it."""

    cells: np.ndarray  # uint64 H3 cell ids
    start_km: np.ndarray  # float64, distance along the route where the cell is entered
    length_km: np.ndarray  # float64, distance travelled in the cell
    resolution: int

    @property
    def total_km(self) -> float:
        return float(self.start_km[-1] + self.length_km[-1])

    def __len__(self) -> int:
        return int(self.cells.shape[0])


def route_to_cells(path: RoutePath, resolution: int = 8, *, refine_km: float | None = None) -> CellChain:
    """The gap-free chain of resolution-``resolution`` cells the route passes through.

    ``refine_km``: also bisect between anchors in *neighbouring* cells that are more
    than this far apart, so corner clips (see the module notes) longer than about
    ``refine_km`` are found too.  Costs one cell lookup per extra midpoint; must be at
    least 1/100 of the resolution's average edge length.  Default: off.
    """
    _check_resolution(resolution)
    refine = _check_refine(refine_km, resolution)
    dist = path.along_km
    cells = _cells_of(path.lat, path.lng, resolution)
    cells, dist = _close_gaps(cells, dist, path, resolution, refine)
    return _chain(cells, dist, resolution)


def _check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(f"resolution must be an integer 0..15, got {resolution!r}")
    if not 0 <= resolution <= 15:
        raise ValueError(f"resolution must be 0..15, got {resolution}")


def _check_refine(refine_km: float | None, resolution: int) -> float:
    if refine_km is None:
        return math.inf
    floor = h3x.average_hexagon_edge_length(resolution, "km") / 100
    if not refine_km >= floor:  # also rejects NaN
        raise ValueError(f"refine_km must be at least {floor:.6g} km at resolution {resolution}, got {refine_km!r}")
    return float(refine_km)


def _cells_of(lat: np.ndarray, lng: np.ndarray, resolution: int) -> np.ndarray:
    """``latlng_to_cell`` per point; ``map`` over the Cython function is the fastest loop."""
    found = map(h3x.latlng_to_cell, lat.tolist(), lng.tolist(), repeat(resolution))
    return np.fromiter(found, dtype=np.uint64, count=lat.size)


def _neighbours(a: np.ndarray, b: np.ndarray, resolution: int) -> np.ndarray:
    """Elementwise ``are_neighbor_cells`` (False for equal cells).

    Siblings (same parent) are decided from their last index digit with numpy: the
    7 children of a hexagon are a centre (digit 0) and a ring I, IJ, J, JK, K, IK
    (digits 4, 6, 2, 3, 1, 5), each touching the centre and its two ring
    neighbours.  Cells in pentagon base cells (where digit 1 is deleted and
    rotations apply) and non-siblings ask h3.
    """
    if resolution == 0 or a.size < 32:
        return _neighbours_h3(a, b)
    shift = 3 * (15 - resolution)
    siblings = (a >> (shift + 3)) == (b >> (shift + 3))
    siblings &= ~_PENTAGON_BASE_CELL[(a >> 45) & 0x7F]
    out = np.empty(a.size, dtype=bool)
    out[siblings] = _SIBLING_ADJACENT[(a[siblings] >> shift) & 7, (b[siblings] >> shift) & 7]
    others = ~siblings
    out[others] = _neighbours_h3(a[others], b[others])
    return out


def _neighbours_h3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.fromiter(map(h3x.are_neighbor_cells, a.tolist(), b.tolist()), dtype=bool, count=a.size)


def _sibling_table() -> np.ndarray:
    adjacent = np.zeros((8, 8), dtype=bool)
    adjacent[0, 1:7] = adjacent[1:7, 0] = True
    ring = (4, 6, 2, 3, 1, 5)
    for x, y in zip(ring, ring[1:] + ring[:1], strict=True):
        adjacent[x, y] = adjacent[y, x] = True
    return adjacent


_SIBLING_ADJACENT = _sibling_table()
_PENTAGON_BASE_CELL = np.zeros(128, dtype=bool)
_PENTAGON_BASE_CELL[[h3x.get_base_cell_number(p) for p in h3x.get_pentagons(0)]] = True


@dataclass
class _Gaps:
    """Open intervals between two anchors in non-neighbouring cells.

    ``owner`` is the route vertex the interval starts after; ``t0``/``width`` place the
    interval inside that route segment as exact dyadic fractions, to order insertions.
    """

    owner: np.ndarray
    t0: np.ndarray
    width: np.ndarray
    a_xyz: np.ndarray
    b_xyz: np.ndarray
    a_cell: np.ndarray
    b_cell: np.ndarray
    a_km: np.ndarray
    b_km: np.ndarray

    def select(self, keep: np.ndarray) -> _Gaps:
        return _Gaps(*(getattr(self, f.name)[keep] for f in fields(self)))


def _close_gaps(
    cells: np.ndarray, dist: np.ndarray, path: RoutePath, resolution: int, refine: float
) -> tuple[np.ndarray, np.ndarray]:
    """Insert great-circle midpoints until consecutive anchors are equal or neighbours
    (and, for neighbours, at most ``refine`` km apart).

    All open gaps of a round are bisected together; insertions are merged into the
    vertex arrays once at the end.  Returns the anchors' cells and distances.
    """
    pairs = np.flatnonzero(cells[1:] != cells[:-1])
    i = pairs[_open(cells[pairs], cells[pairs + 1], dist[pairs + 1] - dist[pairs], refine, resolution)]
    if i.size == 0:
        return cells, dist
    lat, lng = path.lat, path.lng
    gaps = _Gaps(
        i,
        np.zeros(i.size),
        np.ones(i.size),
        to_xyz(lat[i], lng[i]),
        to_xyz(lat[i + 1], lng[i + 1]),
        cells[i],
        cells[i + 1],
        dist[i],
        dist[i + 1],
    )
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for _ in range(_MAX_ROUNDS):
        if gaps.owner.size <= _SCALAR_BELOW:  # numpy call overhead dominates: go scalar
            gaps = _bisect_scalar(gaps, resolution, refine, found)
            break
        gaps = _bisect(gaps, resolution, refine, found)
    if gaps.owner.size:  # never observed: bisection did not converge
        found.append(_grid_path_fallback(gaps))
    owner, t, new_cells, new_km = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.lexsort((t, owner))
    at = owner[order] + 1
    return np.insert(cells, at, new_cells[order]), np.insert(dist, at, new_km[order])


def _open(a: np.ndarray, b: np.ndarray, km: np.ndarray, refine: float, resolution: int) -> np.ndarray:
    """Which pairs of anchors (in different cells) still need a midpoint."""
    return ~_neighbours(a, b, resolution) | (km > refine)


def _bisect(gaps: _Gaps, resolution: int, refine: float, found: list[Any]) -> _Gaps:
    """One round: add every gap's midpoint to ``found``; return the halves still open."""
    mid = gaps.a_xyz + gaps.b_xyz
    mid /= np.linalg.norm(mid, axis=1, keepdims=True)
    mid_cell = _cells_of(*to_latlng(mid), resolution)
    mid_km = 0.5 * (gaps.a_km + gaps.b_km)
    half = 0.5 * gaps.width
    found.append((gaps.owner, gaps.t0 + half, mid_cell, mid_km))
    span = mid_km - gaps.a_km
    left = mid_cell != gaps.a_cell
    left[left] = _open(gaps.a_cell[left], mid_cell[left], span[left], refine, resolution)
    right = mid_cell != gaps.b_cell
    right[right] = _open(mid_cell[right], gaps.b_cell[right], span[right], refine, resolution)
    lo, hi = gaps.select(left), gaps.select(right)
    return _Gaps(
        np.concatenate((lo.owner, hi.owner)),
        np.concatenate((lo.t0, hi.t0 + half[right])),
        np.concatenate((half[left], half[right])),
        np.concatenate((lo.a_xyz, mid[right])),
        np.concatenate((mid[left], hi.b_xyz)),
        np.concatenate((lo.a_cell, mid_cell[right])),
        np.concatenate((mid_cell[left], hi.b_cell)),
        np.concatenate((lo.a_km, mid_km[right])),
        np.concatenate((mid_km[left], hi.b_km)),
    )


def _bisect_scalar(gaps: _Gaps, resolution: int, refine: float, found: list[Any]) -> _Gaps:
    """Bisect each gap to completion with scalar maths (cheaper for a handful of gaps).

    Returns the gaps still open after ``_MAX_ROUNDS`` levels (normally none)."""
    l2c, nb = h3x.latlng_to_cell, h3x.are_neighbor_cells
    out: list[tuple[int, float, int, float]] = []
    stuck: list[tuple[Any, ...]] = []
    columns = zip(*(getattr(gaps, f.name).tolist() for f in fields(gaps)), strict=True)
    for owner, t0, width, a, b, ca, cb, ka, kb in columns:
        stack = [(a, b, ca, cb, ka, kb, t0, width, 0)]
        while stack:
            a, b, ca, cb, ka, kb, t0, w, depth = stack.pop()
            if depth >= _MAX_ROUNDS:
                stuck.append((owner, t0, w, a, b, ca, cb, ka, kb))
                continue
            x, y, z = a[0] + b[0], a[1] + b[1], a[2] + b[2]
            norm = math.sqrt(x * x + y * y + z * z)
            m = (x / norm, y / norm, z / norm)
            cm = l2c(
                math.degrees(math.atan2(m[2], math.hypot(m[0], m[1]))), math.degrees(math.atan2(m[1], m[0])), resolution
            )
            km, half = 0.5 * (ka + kb), 0.5 * w
            out.append((owner, t0 + half, cm, km))
            far = km - ka > refine
            if cm != cb and (far or not nb(cm, cb)):
                stack.append((m, b, cm, cb, km, kb, t0 + half, half, depth + 1))
            if cm != ca and (far or not nb(ca, cm)):
                stack.append((a, m, ca, cm, ka, km, t0, half, depth + 1))
    if out:
        o, t, c, k = zip(*out, strict=True)
        found.append((np.array(o, dtype=np.int64), np.array(t), np.array(c, dtype=np.uint64), np.array(k)))
    if not stuck:
        return gaps.select(np.zeros(gaps.owner.size, dtype=bool))
    o, t, w, a, b, ca, cb, ka, kb = zip(*stuck, strict=True)
    return _Gaps(
        np.array(o),
        np.array(t),
        np.array(w),
        np.array(a),
        np.array(b),
        np.array(ca, dtype=np.uint64),
        np.array(cb, dtype=np.uint64),
        np.array(ka),
        np.array(kb),
    )


def _grid_path_fallback(gaps: _Gaps) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Close gaps bisection could not with ``grid_path_cells``, spreading the k
    transitions evenly between the two anchors.  Raises if that fails too."""
    owner: list[int] = []
    t: list[float] = []
    out_cells: list[int] = []
    km: list[float] = []
    for g in range(gaps.owner.size):
        a, b = int(gaps.a_cell[g]), int(gaps.b_cell[g])
        try:
            between = [int(c) for c in h3x.grid_path_cells(a, b)][1:-1]
        except Exception as exc:  # h3 raises its own error classes
            raise RuntimeError(f"cannot connect H3 cells {a:x} and {b:x}") from exc
        for j, c in enumerate(between, start=1):
            frac = j / (len(between) + 1)
            owner.append(int(gaps.owner[g]))
            t.append(float(gaps.t0[g] + frac * gaps.width[g]))
            out_cells.append(c)
            km.append(float(gaps.a_km[g] + frac * (gaps.b_km[g] - gaps.a_km[g])))
    return (np.array(owner, dtype=np.int64), np.array(t), np.array(out_cells, dtype=np.uint64), np.array(km))


def _chain(cells: np.ndarray, dist: np.ndarray, resolution: int) -> CellChain:
    """Collapse runs of equal cells; each entry starts halfway between anchors."""
    change = np.flatnonzero(cells[1:] != cells[:-1])
    chain_cells = np.concatenate((cells[:1], cells[change + 1]))
    start = np.empty(chain_cells.size)
    start[0] = 0.0
    start[1:] = 0.5 * (dist[change] + dist[change + 1])
    length = np.diff(start, append=dist[-1])
    for arr in (chain_cells, start, length):
        arr.flags.writeable = False
    return CellChain(chain_cells, start, length, resolution)


# --------------------------------------------------------------------------- stops


class ChainPosition(NamedTuple):
    """Where a point lands on a route: chain entry, distance along, distance off."""

    # shadows tuple.index (a method) on purpose: a field name callers use since the start; the
    # NamedTuple works (fields win), mypy only objects to the override of the method's type
    index: int  # type: ignore[assignment]  # index into CellChain.cells
    along_km: float  # distance along the route of the closest route point
    offset_km: float  # great-circle distance from the point to the route


def nearest_chain_index(chain: CellChain, path: RoutePath, lat: float, lng: float) -> ChainPosition:
    """The chain entry closest to a point (e.g. a planned stop).

    The point is projected on every segment's great circle (clamped to the segment);
    the closest projection gives the distance along the route, and the chain entry
    whose ``[start_km, start_km + length_km)`` holds it is returned.  ``chain`` must
    have been built from ``path``.  Where the route passes the same place twice the
    first (closest) segment wins.
    """
    if not (abs(lat) <= 90.0 and abs(lng) <= 180.0):  # also rejects NaN
        raise ValueError(f"point ({lat!r}, {lng!r}) is not a valid latitude/longitude")
    xyz = to_xyz(path.lat, path.lng)
    p = to_xyz(np.array([lat], dtype=np.float64), np.array([lng], dtype=np.float64))[0]
    a, b = xyz[:-1], xyz[1:]
    seg = _angle(a, b)
    # Foot of the perpendicular from p on each segment's great circle.
    normal = np.cross(a, b)
    normal /= np.maximum(np.linalg.norm(normal, axis=1), 1e-300)[:, None]
    foot = p - (normal @ p)[:, None] * normal
    foot /= np.maximum(np.linalg.norm(foot, axis=1), 1e-300)[:, None]
    t = _angle(a, foot)
    inside = (seg > 0) & (t <= seg) & (_angle(foot, b) <= seg)
    # Candidates per segment: the foot (when inside the segment) or either end.
    cand = np.stack((np.where(inside, _angle(foot, p), np.inf), _angle(a, p), _angle(b, p)))
    which = np.argmin(cand, axis=0)
    best = cand[which, np.arange(a.shape[0])]
    s = int(np.argmin(best))
    into = (t[s], 0.0, seg[s])[int(which[s])]
    cum = path.along_km
    along = float(min(cum[s] + into * EARTH_RADIUS_KM, cum[-1]))
    index = int(np.searchsorted(chain.start_km, along, side="right")) - 1
    return ChainPosition(max(index, 0), along, float(best[s] * EARTH_RADIUS_KM))


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between unit vectors (rows), robust at all sizes."""
    angle: np.ndarray = np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), np.einsum("...j,...j->...", u, v))
    return angle


_CHAIN_HEADER = np.dtype([("resolution", "<u1"), ("count", "<u4")])


def chain_to_bytes(chain: CellChain) -> bytes:
    """A compact, self-describing encoding of a chain (for the route-geometry cache)."""
    header = np.array([(chain.resolution, len(chain.cells))], dtype=_CHAIN_HEADER).tobytes()
    body = (
        chain.cells.astype("<u8").tobytes()
        + chain.start_km.astype("<f8").tobytes()
        + chain.length_km.astype("<f8").tobytes()
    )
    return header + body


def chain_from_bytes(data: bytes) -> CellChain:
    """Inverse of :func:`chain_to_bytes`; raises ValueError on anything else."""
    size = _CHAIN_HEADER.itemsize
    if len(data) < size:
        raise ValueError("not an encoded cell chain")
    header = np.frombuffer(data[:size], dtype=_CHAIN_HEADER)[0]
    n = int(header["count"])
    if len(data) != size + 24 * n or n == 0:
        raise ValueError("encoded cell chain has the wrong length")
    cells = np.frombuffer(data, dtype="<u8", count=n, offset=size).astype(np.uint64)
    start = np.frombuffer(data, dtype="<f8", count=n, offset=size + 8 * n).astype(np.float64)
    length = np.frombuffer(data, dtype="<f8", count=n, offset=size + 16 * n).astype(np.float64)
    for array in (cells, start, length):
        array.flags.writeable = False
    return CellChain(cells, start, length, int(header["resolution"]))
