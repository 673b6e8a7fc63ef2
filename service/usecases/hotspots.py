"""ListHotspots: the riskiest cells of a layer in a box, paginated per AIP-158.

The page token carries the layer version, the offset and a hash of the query, so a
token cannot be replayed against another query or a newer layer (the caller restarts
paging instead of silently getting a mixed list).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from geodata.errors import InvalidRequestError, Violation
from geodata.layers import RiskLayer
from geodata.timezones import LocalClock

DEFAULT_TOP = 100
MAX_TOP = 10_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1_000


@dataclass(frozen=True)
class HotspotQuery:
    west: float
    south: float
    east: float
    north: float
    top: int
    page_size: int
    at_s: int | None  # rank at this UTC time; None: weekly mean

    def digest(self) -> str:
        text = json.dumps([self.west, self.south, self.east, self.north, self.top, self.at_s])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HotspotPage:
    rows: np.ndarray  # layer rows, riskiest first
    risk: np.ndarray  # risk of each row at the query time (or weekly mean)
    scale: np.ndarray  # risk / weekly mean, to scale the weekly bounds
    next_token: str
    total: int


def validate_query(
    west: float, south: float, east: float, north: float, top: int, page_size: int, at_s: int | None
) -> HotspotQuery:
    """Check the box and limits; every problem reported at once."""
    bad: list[Violation] = []
    for name, value, limit in (("west", west, 180), ("east", east, 180), ("south", south, 90), ("north", north, 90)):
        if not math.isfinite(value) or abs(value) > limit:
            bad.append(Violation(f"bounds.{name}", f"{name} {value} is out of range [-{limit}, {limit}]"))
    if not bad and south >= north:
        bad.append(Violation("bounds.south", f"south {south} must be below north {north}"))
    if top < 0 or top > MAX_TOP:
        bad.append(Violation("top", f"top {top} is outside [0, {MAX_TOP}] (0 means {DEFAULT_TOP})"))
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        bad.append(Violation("page_size", f"page_size {page_size} is outside [0, {MAX_PAGE_SIZE}]"))
    if bad:
        raise InvalidRequestError(bad)
    return HotspotQuery(west, south, east, north, top or DEFAULT_TOP, page_size or DEFAULT_PAGE_SIZE, at_s)


def page(layer: RiskLayer, query: HotspotQuery, token: str) -> HotspotPage:
    """One page of the query's ranking on ``layer``."""
    offset = _offset(token, layer.version, query)
    rows = rows_in_box(layer, query)
    risk, scale = risk_at(layer, rows, query.at_s)
    order = np.lexsort((layer.cells[rows], -risk))[: query.top]
    chosen = order[offset : offset + query.page_size]
    end = offset + len(chosen)
    next_token = _token(layer.version, end, query) if end < len(order) else ""
    return HotspotPage(rows[chosen], risk[chosen], scale[chosen], next_token, len(order))


def rows_in_box(layer: RiskLayer, query: HotspotQuery) -> np.ndarray:
    """Layer rows whose cell centre lies in the query's box."""
    lat, lng = layer.centers
    inside_lat = (lat >= query.south) & (lat <= query.north)
    if query.west <= query.east:
        inside_lng = (lng >= query.west) & (lng <= query.east)
    else:  # the box wraps across the antimeridian
        inside_lng = (lng >= query.west) | (lng <= query.east)
    return np.flatnonzero(inside_lat & inside_lng)


def risk_at(layer: RiskLayer, rows: np.ndarray, at_s: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Risk of each row at ``at_s`` (its cell's local hour of week; weekly mean when None), and
    its ratio to the weekly mean."""
    mean = layer.weekly_mean[rows]
    if at_s is None or len(rows) == 0:
        return mean, np.ones(len(rows))
    hours = LocalClock(layer.cells[rows]).hour_of_week(np.full(len(rows), at_s, dtype=np.int64))
    risk = layer.intensity[rows, hours].astype(np.float64)
    return risk, np.divide(risk, mean, out=np.zeros(len(rows)), where=mean > 0)


def _token(version: str, offset: int, query: HotspotQuery) -> str:
    payload = json.dumps({"v": version, "o": offset, "q": query.digest()}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _offset(token: str, version: str, query: HotspotQuery) -> int:
    if not token:
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, token_version, digest = int(payload["o"]), str(payload["v"]), str(payload["q"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequestError(Violation("page_token", "page_token is not one this service issued")) from exc
    if digest != query.digest():
        raise InvalidRequestError(Violation("page_token", "page_token belongs to a different query; restart paging"))
    if token_version != version:
        raise InvalidRequestError(
            Violation("page_token", f"the active layer changed ({token_version} → {version}); restart paging")
        )
    return max(offset, 0)
