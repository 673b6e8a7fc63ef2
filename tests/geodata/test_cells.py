"""Route → H3 cell chain: gap-free everywhere, distances that add up."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import h3
import numpy as np
import pytest
from h3 import _cy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geodata.cells import CellChain, nearest_chain_index, route_to_cells
from geodata.errors import InvalidRouteError
from geodata.geometry import haversine_km
from geodata.route import RoutePath, from_file, from_points

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "slt-mty.geojson"


def route_km(path: RoutePath) -> float:
    return float(haversine_km(path.lat[:-1], path.lng[:-1], path.lat[1:], path.lng[1:]).sum())


def assert_valid_chain(chain: CellChain, path: RoutePath) -> None:
    """Every invariant a chain promises."""
    cells = chain.cells.tolist()
    assert chain.cells.dtype == np.uint64
    assert len(cells) == chain.start_km.size == chain.length_km.size >= 1
    assert all(h3.get_resolution(h3.int_to_str(c)) == chain.resolution for c in set(cells))
    gaps = [(i, a, b) for i, (a, b) in enumerate(pairwise(cells)) if not _cy.are_neighbor_cells(a, b)]
    assert not gaps, f"{len(gaps)} gaps, first {gaps[:3]}"
    assert chain.start_km[0] == 0.0
    assert np.all(np.diff(chain.start_km) >= 0), "start_km must be monotone"
    assert np.all(chain.length_km >= 0)
    total = route_km(path)
    # abs 1 µm: below that, the haversine and chord formulas for one arc differ in float
    assert chain.length_km.sum() == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert chain.total_km == pytest.approx(total, rel=1e-9, abs=1e-9)
    # The first and last vertices lie in the first and last cells.
    assert cells[0] == _cy.latlng_to_cell(path.lat[0], path.lng[0], chain.resolution)
    assert cells[-1] == _cy.latlng_to_cell(path.lat[-1], path.lng[-1], chain.resolution)


def assert_visits_vertex_cells(chain: CellChain, path: RoutePath) -> None:
    """Every vertex's cell appears in the chain, in travel order."""
    cells = chain.cells.tolist()
    k = 0
    for lat, lng in zip(path.lat.tolist(), path.lng.tolist(), strict=True):
        c = _cy.latlng_to_cell(lat, lng, chain.resolution)
        while cells[k] != c:
            k += 1  # raises IndexError if the vertex cell is missing or out of order
    assert k == len(cells) - 1


def test_sparse_vertices_300_km_apart_follow_the_great_circle() -> None:
    # Mexico City → Querétaro → San Luis Potosí, ~150 km per segment.
    path = from_points([19.4326, 20.5888, 22.1565], [-99.1332, -100.3899, -100.9855])
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    assert_visits_vertex_cells(chain, path)
    # Every cell centre lies close to the route: within ~one cell of the polyline.
    edge = h3.average_hexagon_edge_length(8, "km")
    for i in range(0, len(chain), 25):
        lat, lng = h3.cell_to_latlng(h3.int_to_str(int(chain.cells[i])))
        off = nearest_chain_index(chain, path, lat, lng).offset_km
        assert off < 2 * edge
    # A straight path crosses roughly length / (1.5 · edge) … length / (√3 · edge) cells.
    assert route_km(path) / (2.5 * edge) < len(chain) < route_km(path) / (1.2 * edge)


def test_two_points_300_km_apart() -> None:
    path = from_points([19.0, 21.7], [-99.0, -99.0])
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    assert route_km(path) == pytest.approx(300.2, abs=0.1)
    # All cells on the meridian segment: centres within ~one cell of lng -99.
    lat_lng = np.array([h3.cell_to_latlng(h3.int_to_str(c)) for c in chain.cells.tolist()])
    assert np.all(np.abs(lat_lng[:, 1] + 99.0) < 0.01)
    assert np.all(np.diff(lat_lng[:, 0]) > -0.01)  # heading north throughout


def test_real_dense_route() -> None:
    path = from_file(FIXTURE)
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    assert_visits_vertex_cells(chain, path)
    assert chain.total_km == pytest.approx(98.18, abs=0.01)
    assert 100 < len(chain) < 250


def test_route_over_a_pentagon() -> None:
    pentagon = h3.get_pentagons(8)[3]
    lat, lng = h3.cell_to_latlng(pentagon)
    path = from_points([lat - 0.05, lat, lat + 0.05], [lng - 0.05, lng, lng + 0.05])
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    assert h3.str_to_int(pentagon) in chain.cells.tolist()


@pytest.mark.parametrize("which", range(12))
def test_routes_past_every_pentagon(which: int) -> None:
    pentagon = h3.get_pentagons(8)[which]
    lat, lng = h3.cell_to_latlng(pentagon)
    # A straight line passing just beside the pentagon centre, and one far out.
    for offset, span in ((0.004, 0.06), (0.0, 3.0)):
        path = from_points([lat - span, lat + span], [lng - span + offset, lng + span + offset])
        assert_valid_chain(route_to_cells(path), path)


def test_antimeridian_crossing() -> None:
    path = from_points([-17.0, -17.0], [179.5, -179.5])  # Fiji, ~106 km east
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    assert chain.total_km == pytest.approx(106.3, abs=0.1)  # not the 35,000 km the long way
    lngs = np.array([h3.cell_to_latlng(h3.int_to_str(c))[1] for c in chain.cells.tolist()])
    assert np.all(np.abs(lngs) > 179.4)  # never wanders towards lng 0
    assert len(chain) < 200


def test_near_pole() -> None:
    path = from_points([89.9, 89.9, 89.9], [-170.0, 0.0, 170.0])
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    # Great circles near the pole cut across it: the chain reaches north of lat 89.9.
    lats = [h3.cell_to_latlng(h3.int_to_str(c))[0] for c in chain.cells.tolist()]
    assert max(lats) > 89.95


def test_across_the_pole() -> None:
    path = from_points([89.5, 89.5], [0.0, 180.0])  # straight over the North Pole
    chain = route_to_cells(path)
    assert_valid_chain(chain, path)
    north_pole_cell = _cy.latlng_to_cell(90.0, 0.0, 8)
    assert north_pole_cell in chain.cells.tolist()


def test_zig_zag_and_repeated_points() -> None:
    lat = [19.40, 19.40, 19.41, 19.40, 19.41, 19.41, 19.41, 19.40, 19.40]
    lng = [-99.10, -99.10, -99.10, -99.10, -99.11, -99.11, -99.10, -99.10, -99.10]
    path = from_points(lat, lng)
    chain = route_to_cells(path, 9)
    assert_valid_chain(chain, path)
    assert_visits_vertex_cells(chain, path)
    # The route comes back: cells re-appear (not globally deduplicated).
    assert len(set(chain.cells.tolist())) < len(chain)
    assert np.all(chain.cells[1:] != chain.cells[:-1])


def test_route_inside_one_cell() -> None:
    cell = h3.latlng_to_cell(19.4326, -99.1332, 6)
    lat, lng = h3.cell_to_latlng(cell)
    path = from_points([lat, lat + 0.001], [lng, lng + 0.001])
    chain = route_to_cells(path, 6)
    assert chain.cells.tolist() == [h3.str_to_int(cell)]
    assert chain.length_km[0] == pytest.approx(route_km(path), rel=1e-12)


def test_distance_allocation_between_vertices() -> None:
    # Two vertices in neighbouring cells: the transition sits halfway between them.
    a = h3.latlng_to_cell(19.4326, -99.1332, 8)
    b = h3.grid_ring(a, 1)[0]
    (lat_a, lng_a), (lat_b, lng_b) = h3.cell_to_latlng(a), h3.cell_to_latlng(b)
    path = from_points([lat_a, lat_b], [lng_a, lng_b])
    chain = route_to_cells(path)
    assert chain.cells.tolist() == [h3.str_to_int(a), h3.str_to_int(b)]
    half = route_km(path) / 2
    np.testing.assert_allclose(chain.start_km, [0.0, half], rtol=1e-12)
    np.testing.assert_allclose(chain.length_km, [half, half], rtol=1e-12)


def test_resolution_is_configurable() -> None:
    path = from_file(FIXTURE)
    counts = {}
    for res in (7, 8, 9):
        chain = route_to_cells(path, res)
        assert chain.resolution == res
        assert_valid_chain(chain, path)
        counts[res] = len(chain)
    assert counts[7] < counts[8] < counts[9]
    assert counts[9] > 2 * counts[7]


@pytest.mark.parametrize("res", [0, 3, 12, 15])
def test_extreme_resolutions(res: int) -> None:
    path = from_points([19.4326, 19.4330, 25.6866], [-99.1332, -99.1335, -100.3161])
    path = path if res < 12 else from_points([19.4326, 19.4330], [-99.1332, -99.1345])
    chain = route_to_cells(path, res)
    assert_valid_chain(chain, path)


@pytest.mark.parametrize("res", [-1, 16, 8.0, "8", True, None])
def test_bad_resolution(res) -> None:
    path = from_points([19.0, 19.1], [-99.0, -99.0])
    with pytest.raises(ValueError, match="resolution"):
        route_to_cells(path, res)


def test_chain_arrays_are_read_only() -> None:
    chain = route_to_cells(from_points([19.0, 19.1], [-99.0, -99.0]))
    with pytest.raises(ValueError):
        chain.length_km[0] = 0.0


def test_nearest_chain_index() -> None:
    path = from_points([19.0, 21.7], [-99.0, -99.0])
    chain = route_to_cells(path)
    # A stop 2 km east of the route, a third of the way along.
    lat = 19.0 + 0.9
    pos = nearest_chain_index(chain, path, lat, -99.0 + 2.0 / (111.32 * np.cos(np.radians(lat))))
    assert pos.offset_km == pytest.approx(2.0, abs=0.01)
    assert pos.along_km == pytest.approx(route_km(from_points([19.0, lat], [-99.0, -99.0])), abs=0.01)
    i = pos.index
    assert chain.start_km[i] <= pos.along_km < chain.start_km[i] + chain.length_km[i]
    assert chain.cells[i] == _cy.latlng_to_cell(lat, -99.0, 8)
    # Beyond the ends: clamps to the first / last entry.
    assert nearest_chain_index(chain, path, 18.0, -99.0).index == 0
    end = nearest_chain_index(chain, path, 23.0, -99.0)
    assert end.index == len(chain) - 1 and end.along_km == pytest.approx(chain.total_km)
    with pytest.raises(ValueError):
        nearest_chain_index(chain, path, float("nan"), -99.0)


def test_nearest_chain_index_on_dense_route_vertices() -> None:
    path = from_file(FIXTURE)
    chain = route_to_cells(path)
    for i in (0, 100, 700, len(path) - 1):
        pos = nearest_chain_index(chain, path, float(path.lat[i]), float(path.lng[i]))
        assert pos.offset_km < 1e-6
        assert chain.cells[pos.index] == _cy.latlng_to_cell(float(path.lat[i]), float(path.lng[i]), 8)


lat_st = st.floats(-85, 85, allow_nan=False)
lng_st = st.floats(-180, 180, allow_nan=False)


@st.composite
def short_routes(draw):
    """2–8 vertices, each within ~20 km of the previous, anywhere on Earth."""
    lat0, lng0 = draw(lat_st), draw(lng_st)
    n = draw(st.integers(2, 8))
    steps = draw(st.lists(st.tuples(st.floats(-0.2, 0.2), st.floats(-0.2, 0.2)), min_size=n - 1, max_size=n - 1))
    lats, lngs = [lat0], [lng0]
    for dlat, dlng in steps:
        lats.append(float(np.clip(lats[-1] + dlat, -89.9, 89.9)))
        lngs.append((lngs[-1] + dlng + 180.0) % 360.0 - 180.0)
    return lats, lngs, draw(st.sampled_from([5, 7, 8, 9]))


@settings(max_examples=150, deadline=None)
@given(short_routes())
def test_property_random_short_routes(route) -> None:
    lats, lngs, res = route
    try:
        path = from_points(lats, lngs)
    except InvalidRouteError as exc:  # all points (numerically) the same
        assert "distinct" in exc.violations[0].description
        assume(False)
    chain = route_to_cells(path, res)
    assert_valid_chain(chain, path)
    assert_visits_vertex_cells(chain, path)


def dense_reference(path: RoutePath, res: int) -> list[int]:
    """Cells of points every 1/50 edge length along each great-circle segment."""
    from geodata.geometry import to_latlng, to_xyz

    step_km = h3.average_hexagon_edge_length(res, "km") / 50
    xyz = to_xyz(path.lat, path.lng)
    out: list[int] = []
    for a, b in pairwise(xyz):
        omega = float(np.arccos(np.clip(a @ b, -1.0, 1.0)))
        t = np.linspace(0.0, 1.0, max(2, int(omega * 6371.0 / step_km)))[:, None]
        pts = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
        lat, lng = to_latlng(pts)
        out += [_cy.latlng_to_cell(x, y, res) for x, y in zip(lat.tolist(), lng.tolist(), strict=True)]
    return out


@pytest.mark.parametrize(
    ("lats", "lngs"),
    [([19.0, 21.7], [-99.0, -99.5]), ([-17.0, -17.0], [179.5, -179.5]), ([89.5, 89.7], [-60.0, 100.0])],
)
@pytest.mark.parametrize(("refine", "max_missed"), [(None, 0.08), (0.25, 0.005)])
def test_chain_matches_dense_sampling(lats, lngs, refine, max_missed) -> None:
    """Every chain cell really lies on the route, in order; only corner clips (a third
    cell cut near a shared vertex) may be missing, and ``refine_km`` shrinks those."""
    path = from_points(lats, lngs)
    edge = h3.average_hexagon_edge_length(8, "km")
    chain = route_to_cells(path, 8, refine_km=refine and refine * edge).cells.tolist()
    samples = dense_reference(path, 8)
    ref = [c for i, c in enumerate(samples) if i == 0 or c != samples[i - 1]]
    it = iter(ref)
    assert all(c in it for c in chain), "chain must be a subsequence of the dense reference"
    kept = set(chain)
    missed = sum(c not in kept for c in samples) / len(samples)
    assert missed <= max_missed


def test_refine_km_validation() -> None:
    path = from_points([19.0, 19.1], [-99.0, -99.0])
    for bad in (0.0, -1.0, float("nan"), 0.001):
        with pytest.raises(ValueError, match="refine_km"):
            route_to_cells(path, 8, refine_km=bad)


@pytest.mark.parametrize("rounds", [0, 1])
def test_grid_path_fallback_still_gap_free(monkeypatch: pytest.MonkeyPatch, rounds: int) -> None:
    """The last-resort filler (used only if bisection failed to converge) is gap-free."""
    import geodata.cells as cells_mod

    monkeypatch.setattr(cells_mod, "_MAX_ROUNDS", rounds)
    path = from_file(FIXTURE)
    chain = route_to_cells(path, 9)
    assert_valid_chain(chain, path)


@pytest.mark.parametrize("res", [1, 2, 5, 8, 9, 15])
def test_sibling_shortcut_agrees_with_h3(res: int) -> None:
    """The numpy sibling-adjacency rule gives exactly h3's answer, pentagons included."""
    from geodata.cells import _neighbours, _neighbours_h3

    rng = np.random.default_rng(res)
    parents = [int(p) for p in _cy.get_pentagons(res - 1)] if res > 1 else []
    for _ in range(20):  # random parents, hexagons mostly
        lat, lng = float(rng.uniform(-89, 89)), float(rng.uniform(-180, 180))
        parents.append(_cy.latlng_to_cell(lat, lng, res - 1))
    a, b = [], []
    for parent in parents:
        kids = [int(k) for k in _cy.cell_to_children(parent, res)]
        ring = [int(k) for k in _cy.grid_disk(kids[0], 2)]  # some non-siblings too
        for x in kids:
            for y in kids + ring:
                a.append(x)
                b.append(y)
    a_arr, b_arr = np.array(a, dtype=np.uint64), np.array(b, dtype=np.uint64)
    got = _neighbours(a_arr, b_arr, res)
    np.testing.assert_array_equal(got, _neighbours_h3(a_arr, b_arr))
    assert got.sum() > 0 and (~got).sum() > 0
