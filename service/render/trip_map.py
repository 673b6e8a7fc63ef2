"""A trip's risk as a map: a self-contained HTML page (inline SVG) or a GeoJSON FeatureCollection.

Pure rendering from plain data, no gRPC: ``service.render.gather`` gathers the data, for the CLI
(``service.cli.map``, from a server) and the HTTP port's dispatcher page (in the server). The page
loads nothing (no tiles, no scripts, no fonts, no URL at all) so a dispatcher can mail it or open
it on a truck-stop laptop without network; the price is that there is no base map: the route,
its cells, hotspots and the border crossing are drawn on a plain background.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h3

LEVELS = ("low", "moderate", "high", "severe", "critical")
LEVEL_COLOURS = {
    "low": "#43a047",
    "moderate": "#fdd835",
    "high": "#fb8c00",
    "severe": "#e53935",
    "critical": "#7b1fa2",
}
ROUTE_COLOUR = "#0d47a1"
# stretches outside the layer's data coverage: the layer knows nothing there
UNCOVERED_COLOUR = "#757575"
# the smallest a cell may be drawn (its edge, in pixels); smaller cells are merged into parents
MIN_CELL_EDGE_PX = 4.0


@dataclass(frozen=True)
class MapCell:
    """An H3 cell the route passes, with its risk at the time of passage."""

    cell: str  # hexadecimal H3 index
    level: str  # one of LEVELS
    rate: float  # expected incidents per truck-hour
    incidents: int = 0


@dataclass(frozen=True)
class MapHotspot:
    cell: str
    lat: float
    lng: float
    risk: float
    incidents: int


@dataclass(frozen=True)
class MapCrossing:
    name: str  # "Laredo (World Trade Bridge)"
    lat: float
    lng: float
    wait_minutes: float
    wait_source: str  # live, historical, default
    closed: bool = False
    opens: str = ""  # when closed at arrival: when the lanes open (local at the port: "Wed 07:00 CDT")


@dataclass(frozen=True)
class TripMap:
    """Everything a trip map shows; ``lat``/``lng`` are the route's points in travel order."""

    title: str
    lat: Sequence[float]
    lng: Sequence[float]
    score: float
    level: str
    cells: Sequence[MapCell] = ()
    hotspots: Sequence[MapHotspot] = ()
    crossings: Sequence[MapCrossing] = ()
    facts: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (label, value) lines of the summary
    synthetic: bool = False
    # stretches of the route outside the layer's data coverage, each as (lat, lng) points in order
    uncovered: Sequence[Sequence[tuple[float, float]]] = ()
    covered_fraction: float = 1.0


def hours_text(seconds: float) -> str:
    """'2 h 05 min'."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def wait_text(crossing: MapCrossing) -> str:
    """'56 min (default)', or 'CLOSED until Wed 12:00 UTC, 305 min'."""
    if crossing.closed:
        until = f" until {crossing.opens}" if crossing.opens else ""
        return f"CLOSED{until}, {crossing.wait_minutes:.0f} min ({crossing.wait_source})"
    return f"{crossing.wait_minutes:.0f} min ({crossing.wait_source})"


# --------------------------------------------------------------------------- GeoJSON


def to_geojson(trip: TripMap) -> dict[str, Any]:
    """A FeatureCollection: the route LineString, cell Polygons (level, rate), hotspot and crossing Points."""
    features: list[dict[str, Any]] = [
        _feature(
            {"type": "LineString", "coordinates": [[x, y] for x, y in zip(trip.lng, trip.lat, strict=True)]},
            kind="route",
            title=trip.title,
            score=trip.score,
            level=trip.level,
            synthetic=trip.synthetic,
            covered_fraction=trip.covered_fraction,
        )
    ]
    for stretch in trip.uncovered:
        features.append(
            _feature(
                {"type": "LineString", "coordinates": [[lng, lat] for lat, lng in stretch]},
                kind="uncovered",
                note="outside the layer's data coverage",
            )
        )
    for c in trip.cells:
        ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(c.cell)]
        features.append(
            _feature(
                {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                kind="cell",
                cell=c.cell,
                level=c.level,
                rate=c.rate,
                incident_count=c.incidents,
            )
        )
    for rank, h in enumerate(trip.hotspots, start=1):
        features.append(
            _feature(
                {"type": "Point", "coordinates": [h.lng, h.lat]},
                kind="hotspot",
                rank=rank,
                cell=h.cell,
                risk=h.risk,
                incident_count=h.incidents,
            )
        )
    for x in trip.crossings:
        features.append(
            _feature(
                {"type": "Point", "coordinates": [x.lng, x.lat]},
                kind="crossing",
                name=x.name,
                wait_minutes=x.wait_minutes,
                wait_source=x.wait_source,
                closed=x.closed,
            )
        )
    return {"type": "FeatureCollection", "features": features}


def _feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


# --------------------------------------------------------------------------- projection


def _mercator(lat: float, lng: float) -> tuple[float, float]:
    """Web-Mercator x, y in radians (y up); latitude clamped where Mercator ends."""
    lat = max(min(lat, 85.0), -85.0)
    return math.radians(lng), math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


@dataclass(frozen=True)
class _Frame:
    """Fits a Mercator box into a pixel rectangle, same scale on both axes."""

    x0: float
    y1: float
    scale: float  # pixels per Mercator radian
    left: float
    top: float

    @classmethod
    def fit(cls, points: list[tuple[float, float]], left: float, top: float, width: float, height: float) -> _Frame:
        xs, ys = zip(*(_mercator(lat, lng) for lat, lng in points), strict=True)
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        span = max(x1 - x0, y1 - y0, 1e-6)
        pad = span * 0.06
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
        scale = min(width / (x1 - x0), height / (y1 - y0))
        # centre the box in the rectangle
        left += (width - (x1 - x0) * scale) / 2
        top += (height - (y1 - y0) * scale) / 2
        return cls(x0, y1, scale, left, top)

    def xy(self, lat: float, lng: float) -> tuple[float, float]:
        x, y = _mercator(lat, lng)
        return self.left + (x - self.x0) * self.scale, self.top + (self.y1 - y) * self.scale

    def px_per_km(self, lat: float) -> float:
        return self.scale / (6371.0088 * math.cos(math.radians(lat)))


def display_cells(cells: Sequence[MapCell], px_per_km: float) -> list[MapCell]:
    """The cells as drawn: merged into parents (the worst child's level and rate) until a cell's
    edge is at least :data:`MIN_CELL_EDGE_PX`, so a 1,000 km route still shows a visible band."""
    if not cells:
        return []
    resolution = h3.get_resolution(cells[0].cell)
    target = resolution
    while target > 0 and h3.average_hexagon_edge_length(target, "km") * px_per_km < MIN_CELL_EDGE_PX:
        target -= 1
    if target == resolution:
        return list(cells)
    merged: dict[str, MapCell] = {}
    for c in cells:
        parent = h3.cell_to_parent(c.cell, target)
        held = merged.get(parent)
        if held is None or (LEVELS.index(c.level), c.rate) > (LEVELS.index(held.level), held.rate):
            merged[parent] = MapCell(parent, c.level, c.rate, c.incidents)
    return list(merged.values())


# --------------------------------------------------------------------------- HTML


def to_html(trip: TripMap, width: int = 620) -> str:
    """A complete HTML page with the map as inline SVG, its legend and the trip's summary.

    The map is ``width`` pixels wide and as tall as the route's shape needs (within limits)."""
    points = list(zip(trip.lat, trip.lng, strict=True))
    points += [(h.lat, h.lng) for h in trip.hotspots] + [(x.lat, x.lng) for x in trip.crossings]
    height = _height_for(points, width)
    frame = _Frame.fit(points, 10, 10, width - 20, height - 20)
    mid_lat = (min(trip.lat) + max(trip.lat)) / 2
    px_per_km = frame.px_per_km(mid_lat)
    shown = display_cells(trip.cells, px_per_km)
    parts = [f'<svg class="map" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    parts.append(f'<rect width="{width}" height="{height}" fill="#f4f1ea"/>')
    parts.append('<g class="cells" stroke="#ffffff" stroke-width="0.3" fill-opacity="0.85">')
    for c in sorted(shown, key=lambda c: LEVELS.index(c.level)):
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in (frame.xy(lat, lng) for lat, lng in h3.cell_to_boundary(c.cell)))
        tip = html.escape(f"{c.level}: {c.rate:.2e} incidents per truck-hour")
        parts.append(f'<polygon points="{ring}" fill="{LEVEL_COLOURS[c.level]}"><title>{tip}</title></polygon>')
    parts.append("</g>")
    parts.append(
        f'<polyline class="route" points="{_route_points(frame, trip)}" fill="none" stroke="{ROUTE_COLOUR}" '
        'stroke-width="2" stroke-opacity="0.9" stroke-linejoin="round" stroke-linecap="round"/>'
    )
    parts.extend(_uncovered(frame, trip))
    parts.extend(_ends(frame, trip))
    # the riskiest hotspot last, so it is drawn on top where markers overlap
    for rank, h in reversed(list(enumerate(trip.hotspots, start=1))):
        x, y = frame.xy(h.lat, h.lng)
        tip = html.escape(f"hotspot {rank}: {h.risk:.2e} incidents per truck-hour, {h.incidents} recorded")
        parts.append(
            f'<g class="hotspot"><title>{tip}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="#212121" stroke="#ffffff" stroke-width="2"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" fill="#ffffff">{rank}</text></g>'
        )
    for crossing in trip.crossings:
        x, y = frame.xy(crossing.lat, crossing.lng)
        label = html.escape(f"{crossing.name}: {wait_text(crossing)}")
        # bold 14 px text is about 8 px a character: put the label on the side where it fits
        anchor = "end" if x + 16 + 8 * len(label) > width and x > width / 2 else "start"
        dx = -16 if anchor == "end" else 16
        parts.append(
            f'<g class="crossing"><rect x="{x - 8:.1f}" y="{y - 8:.1f}" width="16" height="16" '
            f'transform="rotate(45 {x:.1f} {y:.1f})" fill="#ffffff" stroke="#000000" stroke-width="2.5"/>'
            f'<text x="{x + dx:.1f}" y="{y + 5:.1f}" text-anchor="{anchor}" font-size="14" font-weight="bold" '
            f'paint-order="stroke" stroke="#ffffff" stroke-width="4">{label}</text></g>'
        )
    parts.append(_scale_bar(px_per_km, height))
    parts.append("</svg>")
    return _page(trip, "\n".join(parts), shown, trip.cells)


def _height_for(points: list[tuple[float, float]], width: int) -> int:
    """The map height that fits the points' Mercator box at ``width``, kept between 0.6 and 1.2 widths."""
    xs, ys = zip(*(_mercator(lat, lng) for lat, lng in points), strict=True)
    ratio = (max(ys) - min(ys)) / max(max(xs) - min(xs), 1e-6)
    return int(width * min(max(ratio, 0.6), 1.2))


def _route_points(frame: _Frame, trip: TripMap) -> str:
    """The route in pixels, dropping points that land on the same half pixel as the previous one."""
    out: list[str] = []
    last = None
    for lat, lng in zip(trip.lat, trip.lng, strict=True):
        x, y = frame.xy(lat, lng)
        key = (round(x * 2), round(y * 2))
        if key != last:
            out.append(f"{x:.1f},{y:.1f}")
            last = key
    return " ".join(out)


def _uncovered(frame: _Frame, trip: TripMap) -> list[str]:
    """Each stretch outside the data's coverage, dashed grey over the route."""
    out = []
    for stretch in trip.uncovered:
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (frame.xy(lat, lng) for lat, lng in stretch))
        out.append(
            f'<polyline class="uncovered" points="{points}" fill="none" stroke="{UNCOVERED_COLOUR}" stroke-width="5" '
            'stroke-dasharray="6 4" stroke-linecap="round"><title>outside the layer\'s data coverage</title></polyline>'
        )
    return out


def _ends(frame: _Frame, trip: TripMap) -> list[str]:
    (x0, y0), (x1, y1) = frame.xy(trip.lat[0], trip.lng[0]), frame.xy(trip.lat[-1], trip.lng[-1])
    return [
        f'<circle class="start" cx="{x0:.1f}" cy="{y0:.1f}" r="6" fill="#ffffff" stroke="{ROUTE_COLOUR}" '
        'stroke-width="3"><title>start</title></circle>',
        f'<circle class="end" cx="{x1:.1f}" cy="{y1:.1f}" r="6" fill="{ROUTE_COLOUR}" stroke="#ffffff" '
        'stroke-width="2"><title>destination</title></circle>',
    ]


def _scale_bar(px_per_km: float, height: int) -> str:
    """A round-number kilometre bar of at most 150 px, bottom left."""
    km = 150 / px_per_km
    step = 10 ** math.floor(math.log10(km))
    km = max((m * step for m in (1, 2, 5) if m * step <= km), default=step)
    length = km * px_per_km
    y = height - 24
    return (
        f'<g class="scale"><line x1="20" y1="{y}" x2="{20 + length:.1f}" y2="{y}" stroke="#000000" stroke-width="3"/>'
        f'<text x="20" y="{y - 6}" font-size="12">{km:g} km</text></g>'
    )


_STYLE = """
body { font-family: sans-serif; margin: 16px; color: #212121; background: #ffffff; }
h1 { font-size: 20px; margin: 0 0 8px 0; }
.layout { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.map { border: 1px solid #9e9e9e; flex: none; }
.side { flex: 1 1 240px; min-width: 240px; font-size: 14px; }
.side table { border-collapse: collapse; margin-bottom: 12px; }
.side td { padding: 2px 8px 2px 0; vertical-align: top; }
.swatch { display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: middle;
          border: 1px solid #616161; }
.badge { font-weight: bold; padding: 1px 6px; border-radius: 3px; color: #ffffff; }
.warn { color: #b71c1c; font-weight: bold; }
.note { color: #616161; font-size: 12px; }
"""


def _score_text(trip: TripMap) -> str:
    """``42.0 / 100``; ``n/a`` for a route mostly outside the data's coverage (0 would read as safe)."""
    return "n/a" if trip.level == "not_covered" else f"{trip.score:.1f} / 100"


def _page(trip: TripMap, svg: str, shown: Sequence[MapCell], cells: Sequence[MapCell]) -> str:
    e = html.escape
    facts = "".join(f"<tr><td>{e(label)}</td><td>{e(value)}</td></tr>" for label, value in trip.facts)
    legend = "".join(
        f'<tr><td><span class="swatch" style="background:{LEVEL_COLOURS[level]}"></span>{level}</td>'
        f"<td>{sum(c.level == level for c in cells)} cell(s)</td></tr>"
        for level in LEVELS
    )
    crossings = "".join(f"<tr><td>{e(x.name)}</td><td>{e(wait_text(x))}</td></tr>" for x in trip.crossings)
    merged = ""
    if cells and shown and h3.get_resolution(shown[0].cell) != h3.get_resolution(cells[0].cell):
        merged = (
            f'<p class="note">Cells drawn at H3 resolution {h3.get_resolution(shown[0].cell)}, each showing the '
            f"worst of its resolution-{h3.get_resolution(cells[0].cell)} cells on the route.</p>"
        )
    synthetic = '<p class="warn">SYNTHETIC seed data: not real incidents.</p>' if trip.synthetic else ""
    colour = LEVEL_COLOURS.get(trip.level, "#616161")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(trip.title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{e(trip.title)}: {_score_text(trip)} <span class="badge" style="background:{colour}">{e(trip.level)}</span></h1>
<div class="layout">
{svg}
<div class="side">
{synthetic}
<table class="facts">{facts}</table>
<h2 style="font-size:16px">Risk of the cells on the route</h2>
<table class="legend">{legend}</table>
<table class="symbols">
<tr><td><svg width="30" height="12"><line x1="0" y1="6" x2="30" y2="6" stroke="{ROUTE_COLOUR}"
stroke-width="3"/></svg></td>
<td>route (open circle: start)</td></tr>
<tr><td><svg width="30" height="12"><line x1="0" y1="6" x2="30" y2="6" stroke="{UNCOVERED_COLOUR}"
stroke-width="5" stroke-dasharray="6 4"/></svg></td>
<td>outside the layer's data coverage ({trip.covered_fraction:.0%} of the route inside)</td></tr>
<tr><td><svg width="30" height="20"><circle cx="15" cy="10" r="8" fill="#212121"/></svg></td>
<td>hotspot, numbered riskiest first</td></tr>
<tr><td><svg width="30" height="20"><rect x="9" y="4" width="12" height="12" transform="rotate(45 15 10)"
fill="#ffffff" stroke="#000000" stroke-width="2"/></svg></td><td>border crossing, expected wait</td></tr>
</table>
{f'<h2 style="font-size:16px">Border crossing</h2><table>{crossings}</table>' if crossings else ""}
{merged}
<p class="note">Cell colour: the cell's risk per truck-hour at the hour the truck passes it, as a level.
No base map: this page loads nothing from the network.</p>
</div>
</div>
</body>
</html>
"""
