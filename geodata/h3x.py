"""The one door to h3's private Cython API (``h3._cy``).

The public ``h3.api.basic_int`` functions validate their arguments and convert types on every
call; on the hot path (a point per route vertex, a neighbour test per pair) that costs more than
the lookup itself, so these few functions are taken from ``h3._cy`` directly. ``h3._cy`` is not
a public API and may move in any h3 release: only this module touches it (a test in
``tests/test_layering.py`` guards that), so an upgrade breaks here and nowhere else. Each name
is the Cython function itself, not a wrapper around it, so using it costs nothing extra.

Inputs are not validated: pass finite degrees, valid cells and a resolution in 0..15.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from h3 import _cy

latlng_to_cell: Callable[[float, float, int], int] = _cy.latlng_to_cell
"""(lat, lng, resolution) → cell."""
cell_to_latlng: Callable[[int], tuple[float, float]] = _cy.cell_to_latlng
"""cell → (lat, lng) of its centre."""
are_neighbor_cells: Callable[[int, int], bool] = _cy.are_neighbor_cells
"""Whether two cells of the same resolution share an edge."""
grid_path_cells: Callable[[int, int], Sequence[int]] = _cy.grid_path_cells
"""The cells of the grid line from one cell to another, both ends included (fails across pentagons)."""
get_base_cell_number: Callable[[int], int] = _cy.get_base_cell_number
get_pentagons: Callable[[int], Sequence[int]] = _cy.get_pentagons
average_hexagon_edge_length: Callable[[int, str], float] = _cy.average_hexagon_edge_length
"""(resolution, unit such as ``"km"``) → mean hexagon edge length."""
cell_area: Callable[[int, str], float] = _cy.cell_area
"""(cell, unit such as ``"km^2"``) → exact area."""
