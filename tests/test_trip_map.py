"""service.render.trip_map without a server: merging small cells, GeoJSON shape, HTML escaping."""

from __future__ import annotations

import h3

from service.render.trip_map import MapCell, MapCrossing, TripMap, display_cells, to_geojson, to_html


def _cells() -> list[MapCell]:
    parent = h3.latlng_to_cell(19.6, -99.2, 6)
    children = sorted(h3.cell_to_children(parent, 8))
    return [MapCell(c, "critical" if i == 3 else "low", 1e-5 * (i + 1)) for i, c in enumerate(children)]


def test_cells_too_small_to_see_are_merged_showing_the_worst():
    cells = _cells()
    assert display_cells(cells, px_per_km=100.0) == cells  # big enough: drawn as they are
    merged = display_cells(cells, px_per_km=1.0)  # a res-8 edge would be half a pixel
    assert len(merged) < len(cells)
    assert {h3.get_resolution(c.cell) for c in merged} == {5}
    assert [c.level for c in merged].count("critical") == 1 and {c.level for c in merged} <= {"critical", "low"}


def test_geojson_and_html_from_plain_data():
    trip = TripMap(
        title="A <b> & C",
        lat=[19.6, 19.7],
        lng=[-99.2, -99.1],
        score=42.0,
        level="high",
        cells=_cells()[:3],
        crossings=[MapCrossing("Laredo (World Trade Bridge)", 27.6, -99.5, 55.9, "live", closed=True)],
    )
    doc = to_geojson(trip)
    assert [f["properties"]["kind"] for f in doc["features"]] == ["route", "cell", "cell", "cell", "crossing"]
    page = to_html(trip)
    assert "A &lt;b&gt; &amp; C" in page and "<b>" not in page
    assert "Laredo (World Trade Bridge): CLOSED" in page
