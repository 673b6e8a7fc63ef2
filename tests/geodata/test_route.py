"""Route decoding and validation: every input form, every rejection."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polyline
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata.errors import InvalidRouteError, Violation
from geodata.route import (
    DEFAULT_MAX_POINTS,
    MAX_LISTED,
    RoutePath,
    decode_polyline,
    from_file,
    from_geojson,
    from_gpx,
    from_points,
    from_polyline,
    geojson_max_chars,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "slt-mty.geojson"

# Mexico City → Querétaro-ish, a few km apart: plain valid points.
LATS = [19.4326, 19.5012, 19.6250, 19.7801]
LNGS = [-99.1332, -99.1701, -99.2104, -99.2553]


def violations(exc: pytest.ExceptionInfo[InvalidRouteError]) -> list[Violation]:
    return list(exc.value.violations)


def only(exc: pytest.ExceptionInfo[InvalidRouteError]) -> Violation:
    (v,) = exc.value.violations
    return v


def linestring(coords) -> str:
    return json.dumps({"type": "LineString", "coordinates": coords})


# --------------------------------------------------------------------------- points


def test_points_decode_to_float64_arrays() -> None:
    path = from_points(LATS, LNGS)
    assert isinstance(path, RoutePath)
    assert path.lat.dtype == np.float64 and path.lng.dtype == np.float64
    np.testing.assert_array_equal(path.lat, LATS)
    np.testing.assert_array_equal(path.lng, LNGS)
    assert len(path) == 4


def test_path_arrays_are_read_only_copies() -> None:
    lat = np.array(LATS)
    path = from_points(lat, LNGS)
    lat[0] = 0.0
    assert path.lat[0] == LATS[0]
    with pytest.raises(ValueError):
        path.lat[0] = 1.0


def test_latitude_out_of_range_names_index_and_value() -> None:
    lats = [*LATS]
    lats[2] = 95.5
    with pytest.raises(InvalidRouteError) as exc:
        from_points(lats, [*LNGS[:2], 100.0, LNGS[3]])
    v = only(exc)
    assert v.field == "route.line.points[2].latitude"
    assert "95.5" in v.description and "[-90, 90]" in v.description
    assert "swapped" not in v.description  # |lng| = 100 > 90: not a plausible swap


def test_longitude_out_of_range() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points(LATS, [LNGS[0], -180.25, *LNGS[2:]])
    v = only(exc)
    assert v.field == "route.line.points[1].longitude"
    assert "-180.25" in v.description and "[-180, 180]" in v.description


def test_swapped_hint() -> None:
    # Someone sent (lng, lat): latitude -99.13 is out of range, longitude 19.43 would fit.
    with pytest.raises(InvalidRouteError) as exc:
        from_points(LNGS, LATS)
    vs = violations(exc)
    assert [v.field for v in vs] == [f"route.line.points[{i}].latitude" for i in range(4)]
    assert all("(latitude and longitude look swapped)" in v.description for v in vs)
    assert "-99.1332" in vs[0].description


@pytest.mark.parametrize(("bad", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_non_finite_values(bad: float, shown: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points([LATS[0], bad, LATS[2]], [LNGS[0], LNGS[1], bad])
    vs = violations(exc)
    assert [v.field for v in vs] == ["route.line.points[1].latitude", "route.line.points[2].longitude"]
    assert all(f"{shown} is not a finite number" in v.description for v in vs)


def test_all_coordinate_violations_are_collected_and_capped() -> None:
    n = 100
    lats = np.full(n, 10.0) + np.arange(n) * 1e-3
    lngs = np.full(n, 20.0)
    bad = np.arange(5, 95, 2)  # 45 bad latitudes
    lats[bad] = 91.0
    with pytest.raises(InvalidRouteError) as exc:
        from_points(lats, lngs)
    vs = violations(exc)
    assert len(vs) == MAX_LISTED + 1
    assert [v.field for v in vs[:MAX_LISTED]] == [f"route.line.points[{i}].latitude" for i in bad[:MAX_LISTED]]
    assert vs[-1].field == "route.line.points"
    assert f"{45 - MAX_LISTED} more" in vs[-1].description


def test_boundary_values_are_valid() -> None:
    path = from_points([90.0, 0.0, -90.0], [180.0, -180.0, 0.0])
    assert len(path) == 3


@pytest.mark.parametrize(
    ("lats", "lngs", "got"),
    [
        ([], [], "no points"),
        ([19.4], [-99.1], "1 point"),
        ([19.4, 19.4, 19.4], [-99.1, -99.1, -99.1], "3 point"),
        ([90.0, 90.0], [0.0, 120.0], "2 point"),  # the same pole
        ([10.0, 10.0], [180.0, -180.0], "2 point"),  # the same meridian
    ],
)
def test_needs_two_distinct_points(lats, lngs, got: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points(lats, lngs)
    v = only(exc)
    assert v.field == "route.line.points"
    assert "needs at least two distinct points" in v.description
    assert got in v.description


def test_repeated_points_with_two_distinct_are_fine() -> None:
    path = from_points([1.0, 1.0, 1.0, 1.5], [2.0, 2.0, 2.0, 2.0])
    assert len(path) == 4


def test_too_many_points_names_count_and_limit() -> None:
    n = 1001
    with pytest.raises(InvalidRouteError) as exc:
        from_points(np.linspace(10, 11, n), np.linspace(20, 21, n), max_points=1000)
    v = only(exc)
    assert v.field == "route.line.points"
    assert "1001" in v.description and "1000" in v.description


def test_default_max_points_accepts_100k() -> None:
    n = DEFAULT_MAX_POINTS
    path = from_points(np.linspace(19, 25, n), np.linspace(-99, -100, n))
    assert len(path) == n
    with pytest.raises(InvalidRouteError):
        from_points(np.linspace(19, 25, n + 1), np.linspace(-99, -100, n + 1))


def test_length_mismatch_and_non_numeric() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points([1.0, 2.0], [1.0])
    assert "2 latitudes but 1 longitudes" in only(exc).description
    with pytest.raises(InvalidRouteError) as exc:
        from_points([1.0, "north"], [1.0, 2.0])
    assert "must be numbers" in only(exc).description


def test_antipodal_consecutive_points_rejected() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points([0.0, 10.0, -10.0], [0.0, 20.0, -160.0])
    v = only(exc)
    assert v.field == "route.line.points[2]"
    assert "antipodal" in v.description


def test_custom_field_prefix() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_points([0.0, 100.0], [0.0, 0.0], field="stops")
    assert only(exc).field == "stops[1].latitude"


# --------------------------------------------------------------------------- polyline


def test_polyline_google_reference_example() -> None:
    # The example from Google's polyline algorithm documentation.
    path = from_polyline("_p~iF~ps|U_ulLnnqC_mqNvxq`@")
    np.testing.assert_allclose(path.lat, [38.5, 40.7, 43.252])
    np.testing.assert_allclose(path.lng, [-120.2, -120.95, -126.453])


@pytest.mark.parametrize("precision", [5, 6])
def test_polyline_matches_polyline_package(precision: int) -> None:
    coords = [(19.432608, -99.133209), (25.686614, -100.316113), (20.659699, -103.349609), (19.43, -99.13)]
    text = polyline.encode(coords, precision)
    path = from_polyline(text, precision=precision)
    expected = np.array(polyline.decode(text, precision))
    np.testing.assert_array_equal(path.lat, expected[:, 0])
    np.testing.assert_array_equal(path.lng, expected[:, 1])
    np.testing.assert_allclose(path.lat, [c[0] for c in coords], atol=0.6 * 10**-precision)


def test_polyline_precision_mismatch_is_detectable() -> None:
    text = polyline.encode([(19.4326, -99.1332), (19.5, -99.2)], 6)
    path = from_polyline(text, precision=6)
    assert path.lat[0] == pytest.approx(19.4326)
    with pytest.raises(InvalidRouteError):  # read as precision 5 it is ten times too large
        from_polyline(text, precision=5)


def test_polyline_dense_real_route_matches_package() -> None:
    coords = json.loads(FIXTURE.read_text())["geometry"]["coordinates"]
    latlng = [(lat, lng) for lng, lat in coords]
    text = polyline.encode(latlng, 5)
    path = from_polyline(text)
    np.testing.assert_allclose(path.lat, [p[0] for p in latlng], atol=1e-9)
    np.testing.assert_allclose(path.lng, [p[1] for p in latlng], atol=1e-9)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("_p~iF~ps|U_ulLnnqC_mqNvxq", "truncated"),  # cut mid-value
        ("_p~iF", "truncated"),  # a latitude without its longitude
        ("_p~iF~ps|U!", "'!' at offset 10"),
        ("_p~iF~ps|Ué", "'é' at offset 10"),
        ("hello world", "' ' at offset 5"),
        ("~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~?", "too long"),
    ],
)
def test_undecodable_polyline(text: str, words: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_polyline(text)
    v = only(exc)
    assert v.field == "route.encoded_polyline"
    assert words in v.description


def test_polyline_out_of_range_names_point() -> None:
    text = polyline.encode([(10.0, 10.0), (10.5, 10.0), (110.0, 10.0)], 5)
    with pytest.raises(InvalidRouteError) as exc:
        from_polyline(text)
    v = only(exc)
    assert v.field == "route.encoded_polyline"
    assert v.description.startswith("points[2]: latitude 110.0 is out of range")


def test_polyline_empty_and_single_point() -> None:
    for text in ("", polyline.encode([(1.0, 2.0)])):
        with pytest.raises(InvalidRouteError) as exc:
            from_polyline(text)
        assert "needs at least two distinct points" in only(exc).description


def test_polyline_max_points_checked_before_decoding() -> None:
    text = polyline.encode([(1.0 + i * 1e-3, 2.0) for i in range(11)])
    with pytest.raises(InvalidRouteError) as exc:
        from_polyline(text, max_points=10)
    assert "11 points" in only(exc).description


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        path = from_polyline(text)
    except InvalidRouteError as exc:
        assert exc.violations[0].field == "route.encoded_polyline"
    else:
        assert np.all(np.abs(path.lat) <= 90) and np.all(np.abs(path.lng) <= 180)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=63, max_codepoint=126), max_size=80))
def test_random_polyline_alphabet_matches_reference_or_is_rejected(text: str) -> None:
    try:
        ref = polyline.decode(text, 5)
    except IndexError:  # the reference decoder runs off the end of truncated input
        with pytest.raises(InvalidRouteError):
            from_polyline(text)
        return
    try:
        path = from_polyline(text)
    except InvalidRouteError:
        return  # odd value count, out of range or not two distinct points
    np.testing.assert_allclose(path.lat, [p[0] for p in ref])
    np.testing.assert_allclose(path.lng, [p[1] for p in ref])


coordinate = st.tuples(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(coordinate, min_size=1, max_size=50), st.sampled_from([5, 6]))
def test_polyline_round_trip(coords: list[tuple[float, float]], precision: int) -> None:
    text = polyline.encode(coords, precision)
    lat, lng = decode_polyline(text, precision=precision)
    tol = 10**-precision * (1 + 1e-9)  # the encoder rounds to 10^-precision, deltas are exact
    np.testing.assert_allclose(lat, [c[0] for c in coords], rtol=0, atol=tol)
    np.testing.assert_allclose(lng, [c[1] for c in coords], rtol=0, atol=tol)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-80, 80), st.floats(-170, 170)), min_size=2, max_size=30, unique=True).filter(
        lambda c: len({(round(a, 4), round(b, 4)) for a, b in c}) == len(c)
    )
)
def test_polyline_round_trip_through_validation(coords: list[tuple[float, float]]) -> None:
    # Distinct points always decode and validate, unless two consecutive ones are antipodal.
    text = polyline.encode(coords, 6)
    try:
        path = from_polyline(text, precision=6)
    except InvalidRouteError as exc:
        assert "antipodal" in exc.violations[0].description
        return
    np.testing.assert_allclose(path.lat, [c[0] for c in coords], rtol=0, atol=1.000001e-6)
    np.testing.assert_allclose(path.lng, [c[1] for c in coords], rtol=0, atol=1.000001e-6)


# --------------------------------------------------------------------------- GeoJSON


def test_geojson_linestring() -> None:
    path = from_geojson(linestring([[lng, lat] for lat, lng in zip(LATS, LNGS, strict=True)]))
    np.testing.assert_array_equal(path.lat, LATS)
    np.testing.assert_array_equal(path.lng, LNGS)


def test_geojson_feature_real_route() -> None:
    doc = json.loads(FIXTURE.read_text())
    path = from_geojson(FIXTURE.read_text())
    assert len(path) == doc["properties"]["n_points"] == 1376
    assert path.lng[0] == doc["geometry"]["coordinates"][0][0]
    assert path.lat[0] == doc["geometry"]["coordinates"][0][1]


def test_geojson_feature_collection_with_one_feature_and_altitudes() -> None:
    coords = [[-99.1, 19.4, 2240.0], [-99.2, 19.5, 2250.5]]
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": coords}}],
    }
    path = from_geojson(json.dumps(fc))
    np.testing.assert_array_equal(path.lat, [19.4, 19.5])
    np.testing.assert_array_equal(path.lng, [-99.1, -99.2])


def test_geojson_mixed_position_lengths() -> None:
    path = from_geojson(linestring([[-99.1, 19.4], [-99.2, 19.5, 10.0], [-99.3, 19.6]]))
    np.testing.assert_array_equal(path.lat, [19.4, 19.5, 19.6])


@pytest.mark.parametrize(
    ("doc", "found"),
    [
        ({"type": "Point", "coordinates": [-99.1, 19.4]}, "found Point"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "found Polygon"),
        ({"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]]]}, "found MultiLineString"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}}, "found Point at geometry"),
        ({"type": "Feature", "geometry": None}, "found null at geometry"),
        ({"coordinates": [[0, 0], [1, 1]]}, 'without a "type"'),
        ([[0, 0], [1, 1]], "found an array"),
        ({"type": "FeatureCollection", "features": []}, "found 0 features"),
    ],
)
def test_geojson_wrong_geometry(doc, found: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(json.dumps(doc))
    v = only(exc)
    assert v.field == "route.geojson"
    assert found in v.description


@pytest.mark.parametrize("text", ["", "{", "not json", '{"type": "LineString", "coordinates": [[0, 0], [1, 1]]'])
def test_geojson_bad_json(text: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(text)
    assert only(exc).description.startswith("is not valid JSON")


@pytest.mark.parametrize(
    ("coords", "words"),
    [
        (None, "coordinates must be an array"),
        ("0,0,1,1", "coordinates must be an array"),
        ([[0, 0], [1]], "coordinates[1] must be a [longitude, latitude] array"),
        ([[0, 0], 5], "coordinates[1] must be a [longitude, latitude] array"),
        ([[0, 0], [1, "2"]], 'coordinates[1][1] (latitude) must be a number, found "2"'),
        ([[0, 0], [None, 2]], "coordinates[1][0] (longitude) must be a number, found null"),
        ([[0, 0], [1, True]], "coordinates[1][1] (latitude) must be a number, found true"),
    ],
)
def test_geojson_bad_coordinates(coords, words: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(linestring(coords))
    assert words in only(exc).description


def test_geojson_missing_coordinates() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson('{"type": "Feature", "geometry": {"type": "LineString"}}')
    assert only(exc).description == 'LineString at geometry has no "coordinates"'


def test_geojson_out_of_range_names_coordinates_index_and_value() -> None:
    coords = [[lng, lat] for lat, lng in zip(LATS, LNGS, strict=True)]
    coords[2] = [-99.2, 123.4]
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(linestring(coords))
    v = only(exc)
    assert v.field == "route.geojson"
    assert v.description == "coordinates[2]: latitude 123.4 is out of range [-90, 90]"


def test_geojson_lat_lng_order_mistake_gets_swapped_hint() -> None:
    coords = [[lat, lng] for lat, lng in zip(LATS, LNGS, strict=True)]  # wrong order
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(linestring(coords))
    assert all("look swapped" in v.description for v in exc.value.violations)
    assert exc.value.violations[0].description.startswith("coordinates[0]: latitude -99.1332")


def test_geojson_nan_literal_and_feature_path() -> None:
    text = '{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, NaN]]}}'
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(text)
    assert only(exc).description == "geometry.coordinates[1]: latitude nan is not a finite number"


def test_geojson_identical_points() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(linestring([[1, 2], [1, 2], [1.0, 2.0]]))
    assert "needs at least two distinct points" in only(exc).description


def test_geojson_max_points() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(linestring([[0, i * 1e-3] for i in range(6)]), max_points=5)
    assert "6 points" in only(exc).description and "5" in only(exc).description


# --------------------------------------------------------------------------- GPX

GPX_TRACK = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="0" lon="0"><name>ignored</name></wpt>
  <trk><name>day 1</name>
    <trkseg>
      <trkpt lat="19.4326" lon="-99.1332"><ele>2240</ele></trkpt>
      <trkpt lat="19.5012" lon="-99.1701"/>
    </trkseg>
    <trkseg>
      <trkpt lat="19.6250" lon="-99.2104"/>
    </trkseg>
  </trk>
  <trk><trkseg><trkpt lat="19.7801" lon="-99.2553"/></trkseg></trk>
</gpx>
"""

GPX_ROUTE = """<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <rte><rtept lat="19.4326" lon="-99.1332"/><rtept lat="19.5012" lon="-99.1701"/></rte>
  <rte><rtept lat="19.6250" lon="-99.2104"/></rte>
</gpx>
"""


def test_gpx_track_segments_concatenated_in_order() -> None:
    path = from_gpx(GPX_TRACK)
    np.testing.assert_array_equal(path.lat, LATS)
    np.testing.assert_array_equal(path.lng, LNGS)


def test_gpx_route_points() -> None:
    path = from_gpx(GPX_ROUTE)
    np.testing.assert_array_equal(path.lat, LATS[:3])
    np.testing.assert_array_equal(path.lng, LNGS[:3])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("not xml at all", "is not valid GPX"),
        ('<gpx><trk><trkseg><trkpt lat="abc" lon="1"/></trkseg></trk></gpx>', "is not valid GPX"),
        ('<gpx><trk><trkseg><trkpt lon="1"/></trkseg></trk></gpx>', "is not valid GPX"),
        ('<gpx><wpt lat="1" lon="2"/></gpx>', "no track or route points (found 1 waypoints"),
    ],
)
def test_gpx_rejections(text: str, words: str) -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_gpx(text)
    v = only(exc)
    assert v.field == "route"
    assert words in v.description


def test_gpx_out_of_range_names_trkpt() -> None:
    text = '<gpx><trk><trkseg><trkpt lat="1" lon="2"/><trkpt lat="1" lon="200.5"/></trkseg></trk></gpx>'
    with pytest.raises(InvalidRouteError) as exc:
        from_gpx(text)
    assert only(exc).description == "trkpt[1]: longitude 200.5 is out of range [-180, 180]"


# --------------------------------------------------------------------------- files


def test_from_file_by_extension_and_content(tmp_path: Path) -> None:
    assert len(from_file(FIXTURE)) == 1376
    (tmp_path / "a.gpx").write_text(GPX_TRACK)
    np.testing.assert_array_equal(from_file(tmp_path / "a.gpx").lat, LATS)
    (tmp_path / "b.json").write_text(linestring([[0, 0], [1, 1]]))
    assert len(from_file(str(tmp_path / "b.json"))) == 2
    (tmp_path / "c.route").write_text(GPX_ROUTE)  # unknown extension: sniffed
    assert len(from_file(tmp_path / "c.route")) == 3
    (tmp_path / "d.polyline").write_text("_p~iF~ps|U_ulLnnqC_mqNvxq`@\n")
    np.testing.assert_allclose(from_file(tmp_path / "d.polyline").lat, [38.5, 40.7, 43.252])


def test_from_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Point", "coordinates": [0, 0]}')
    with pytest.raises(InvalidRouteError) as exc:
        from_file(bad)
    assert only(exc).field == str(bad)
    binary = tmp_path / "x.gpx"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidRouteError):
        from_file(binary)


# --------------------------------------------------------------------------- bounded parsing


def test_polyline_length_is_checked_before_anything_is_decoded() -> None:
    # a point takes at most 16 characters: one character more than max_points * 16 is refused by
    # its length alone, whatever it holds (here: not even polyline characters)
    with pytest.raises(InvalidRouteError) as exc:
        from_polyline("!" * (16 * 10 + 1), max_points=10)
    assert only(exc).field == "route.encoded_polyline"
    assert "161 characters long" in only(exc).description and "10 points" in only(exc).description
    # the longest legal points fit: 10 points of 8-chunk values (±180° at precision 9)
    longest = polyline.encode([(0.0, 0.0)] + [((-1) ** i * 90.0, (-1) ** i * 180.0) for i in range(9)], 9)
    assert len(longest) == 2 + 9 * 16
    lat, _ = decode_polyline(longest, precision=9, max_points=10)
    assert lat.size == 10


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_deep_geojson_is_refused_as_a_caller_error(depth: int) -> None:
    for text in (
        "[" * depth + "]" * depth,
        '{"type": "LineString", "coordinates": ' + "[" * depth + "]" * depth + "}",
        '{"type": "Feature", "properties": ' + '{"a":' * depth + "1" + "}" * depth + "}",
    ):
        with pytest.raises(InvalidRouteError) as exc:
            from_geojson(text)
        assert only(exc).field == "route.geojson"
        assert f"nests {depth + text.startswith('{')} levels deep" in only(exc).description


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    doc = {
        "type": "Feature",
        "properties": {"name": "[[[[" * 100 + '"\\' + "{{{{" * 100},
        "geometry": {"type": "LineString", "coordinates": [[-99.1, 19.4], [-99.0, 19.5]]},
    }
    assert len(from_geojson(json.dumps(doc))) == 2


def test_geojson_size_and_value_count_are_checked_before_parsing() -> None:
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson(" " * (geojson_max_chars(10) + 1), max_points=10)
    assert "characters long" in only(exc).description
    # many tiny values in a small text: refused before json.loads makes an object of each
    with pytest.raises(InvalidRouteError) as exc:
        from_geojson('{"type": "LineString", "coordinates": [' + "[]," * 200_000 + "[]]}", max_points=10)
    assert "brackets and commas" in only(exc).description


def test_gpx_with_a_dtd_or_too_long_is_refused_before_parsing() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<gpx version="1.1" creator="x"><trk><name>&b;</name><trkseg>'
        '<trkpt lat="19.4" lon="-99.1"/><trkpt lat="19.5" lon="-99.0"/></trkseg></trk></gpx>'
    )
    with pytest.raises(InvalidRouteError, match="DOCTYPE or ENTITY"):
        from_gpx(bomb)
    with pytest.raises(InvalidRouteError, match="characters long"):
        from_gpx("<gpx>" + " " * 2_000_000, max_points=2)
