"""geodata.ingest on real files: point incidents in four formats, SESNSP municipal counts on
INEGI polygons (and road lines), and all-or-nothing validation with file:row:column reports."""

from __future__ import annotations

import csv
import hashlib
import re
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geodata.errors import InputError
from geodata.incidents import (
    INCIDENT_TYPES,
    UNKNOWN_HOUR,
    IncidentSet,
    InvalidIncidentFileError,
)
from geodata.ingest import (
    SourceFile,
    incidents_from_rows,
    is_sesnsp_municipal,
    read_incidents,
    read_point_incidents,
    read_sesnsp_municipal,
)
from geodata.timezones import zone_at

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "ingest"
ROUTE = ROOT / "tests" / "fixtures" / "slt-mty.geojson"  # a real road (OSM): Saltillo → Monterrey
SLICE = FIXTURES / "inegi_municipios_slice.geojson"
SHARED = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data is not present")

# 2025-10-20: SESNSP has published January-September 2025
NOW_2025_10 = int(datetime(2025, 10, 20, tzinfo=UTC).timestamp())
MAPPING = {
    "id": "folio",
    "occurred_at": "fecha",
    "latitude": "lat",
    "longitude": "lon",
    "type": "tipo",
    "violent": "con_violencia",
    "source": "fuente",
}


def utc(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


# The fixture incidents, computed by hand: (id, UTC instant, local hour of week at the place at that
# instant, whatever offset the file wrote). Hour of week = 24 * weekday (Monday 0) + hour.
# Zones: Monterrey/Saltillo/Victoria America/Monterrey (-06:00 all year since 2022), Chihuahua
# America/Chihuahua (-06:00 since 2022), Nuevo Laredo/Reynosa America/Matamoros (US DST: -06/-05).
EXPECTED_POINTS = [
    ("mty-001", utc(2024, 3, 6, 4, 15), 1 * 24 + 22),  # Tue 2024-03-05 22:15 -06:00
    ("slt-002", utc(2024, 3, 10, 3, 40), 5 * 24 + 21),  # 03:40 Z = Sat 2024-03-09 21:40 in Saltillo
    ("cua-003", utc(2024, 1, 1, 6, 59, 59), 0),  # 23:59:59 -07:00 = Mon 2024-01-01 00:59:59 in Chihuahua
    ("nld-004", utc(2024, 1, 1, 6, 0), 0),  # Mon 2024-01-01 00:00 -06:00 (CST in Nuevo Laredo)
    ("rey-005", utc(2024, 7, 19, 19, 5, 30), 4 * 24 + 14),  # 13:05:30 -06:00 = Fri 14:05:30 CDT in Reynosa
    ("vic-006", utc(2024, 11, 3, 6, 30), 6 * 24 + 0),  # 01:30 -05:00 = Sun 00:30 in Victoria
    ("sal-007", utc(2024, 2, 29, 18, 0), 3 * 24 + 12),  # Thu 2024-02-29 12:00 -06:00
]
EXPECTED_VIOLENT = [True, False, False, True, True, False, True]
EXPECTED_TYPES = ["hijacking", "cargo_theft", "theft_from_parked", "attempt", "hijacking", "other", "cargo_theft"]


def assert_same_incidents(a: IncidentSet, b: IncidentSet) -> None:
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_array_equal(a.utc_s, b.utc_s)
    np.testing.assert_array_equal(a.local_how, b.local_how)
    np.testing.assert_array_equal(a.violent, b.violent)
    assert a.types.tolist() == b.types.tolist()
    np.testing.assert_allclose(a.lat, b.lat, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.lng, b.lng, rtol=0, atol=1e-9)
    assert a.sources == b.sources


# --------------------------------------------------------------------------- point incidents


@pytest.mark.parametrize("name", ["points.csv", "points.geojson", "points.gpkg", "points.parquet"])
def test_each_point_format_gives_the_hand_computed_incidents(name):
    got = read_point_incidents(FIXTURES / name)
    assert got.ids.tolist() == [e[0] for e in EXPECTED_POINTS]
    assert got.utc_s.tolist() == [e[1] for e in EXPECTED_POINTS]
    assert got.local_how.tolist() == [e[2] for e in EXPECTED_POINTS]
    assert got.local_how.dtype == np.int16 and got.utc_s.dtype == np.int64
    assert got.violent.tolist() == EXPECTED_VIOLENT
    assert got.types.tolist() == EXPECTED_TYPES
    assert got.sources == ("fixture-a", "fixture-b")
    assert got.weight is None
    np.testing.assert_array_equal(got.value_usd, [45000, np.nan, 1200.5, np.nan, 98000, 0, np.nan])
    assert got.lat[0] == pytest.approx(25.6866) and got.lng[0] == pytest.approx(-100.3161)


def test_all_four_point_formats_give_the_same_incident_set():
    sets = [read_point_incidents(FIXTURES / f"points.{ext}") for ext in ("csv", "geojson", "gpkg", "parquet")]
    for other in sets[1:]:
        assert_same_incidents(sets[0], other)


def test_column_map_reads_a_file_with_other_column_names():
    mapped = read_point_incidents(FIXTURES / "points_mapped.csv", column_map=MAPPING)
    assert_same_incidents(mapped, read_point_incidents(FIXTURES / "points.csv"))
    assert mapped.value_usd is None  # no value_usd column in that file


def test_column_map_to_an_absent_column_or_unknown_key_is_reported():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points_mapped.csv", column_map={**MAPPING, "latitude": "latitud"})
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("points_mapped.csv", "missing required column 'latitude' (mapped to 'latitud')")
    ]
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points.csv", column_map={"when": "fecha"})
    assert caught.value.violations[0].field == "column_map"
    assert "'when'" in caught.value.violations[0].description


def test_naive_local_times_with_a_timezone():
    got = read_point_incidents(FIXTURES / "points_naive.csv", timezone="America/Matamoros")
    # America/Matamoros keeps US daylight saving: CST -06:00 in winter, CDT -05:00 in summer
    assert got.utc_s.tolist() == [
        utc(2024, 7, 5, 2, 30),  # Thu 2024-07-04 21:30 CDT
        utc(2024, 1, 15, 14, 0),  # Mon 2024-01-15 08:00 CST
        utc(2024, 11, 3, 6, 30),  # Sun 2024-11-03 01:30 happens twice: the first (CDT) is taken
        utc(2024, 3, 10, 8, 0),  # Sun 2024-03-10 02:30 never happened (02:00 → 03:00): shifted to 03:00 CDT
        utc(2024, 3, 10, 14, 0),  # an explicit offset wins over the time zone
    ]
    # the local hour at the instant: the skipped 02:30 became 03:00 CDT, 08:00 -06:00 is 09:00 CDT
    assert got.local_how.tolist() == [3 * 24 + 21, 0 * 24 + 8, 6 * 24 + 1, 6 * 24 + 3, 6 * 24 + 9]


def test_naive_local_times_without_a_timezone_are_rejected_row_by_row():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points_naive.csv")
    fields = [v.field for v in caught.value.violations]
    assert fields == [f"points_naive.csv:{line}:occurred_at" for line in (2, 3, 4, 5)]  # line 6 has an offset
    assert "'2024-07-04 21:30:00'" in caught.value.violations[0].description


def test_unknown_timezone_is_rejected():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points_naive.csv", timezone="America/Atlantis")
    assert caught.value.violations[0].field == "timezone"


# line → (column, substring of the description) for every problem in points_bad.csv
EXPECTED_BAD = [
    ("3:latitude", "latitude '95.5' is out of range"),
    ("4:longitude", "longitude '-190' is out of range"),
    ("5:latitude", "latitude 'abc' is not a finite number"),
    ("6:latitude", "latitude 'NaN' is not a finite number"),
    ("7:longitude", "longitude is missing ('')"),
    ("8:occurred_at", "'yesterday at noon' is not an ISO 8601"),
    ("9:occurred_at", "'2024-03-05 22:15:00' has no UTC offset"),
    ("10:occurred_at", "'2099-01-01T00:00:00Z' is in the future"),
    ("11:occurred_at", "'2024-03-05T22:15:00+15:00' has a UTC offset out of range"),
    ("12:id", "duplicate id 'ok-1' (first on row 2)"),
    ("13:type", "type 'robbery' is not one of"),
    ("14:violent", "violent 'maybe' is not one of"),
    ("15:value_usd", "value_usd '-5' is not a non-negative number"),
    ("16:id", "id is missing ('')"),
    ("17:source", "source is missing ('')"),
    ("18:occurred_at", "'2024-13-45T22:15:00-06:00' is not an ISO 8601"),
    ("18:latitude", "latitude '-91' is out of range"),
    ("18:longitude", "longitude '181' is out of range"),
    ("18:type", "type 'stolen' is not one of"),
    ("18:violent", "violent 'perhaps' is not one of"),
    ("18:value_usd", "value_usd 'lots' is not a non-negative number"),
]


def test_bad_file_reports_every_problem_with_file_row_column_and_value():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points_bad.csv", now_s=utc(2025, 6, 1))
    error = caught.value
    assert isinstance(error, InputError) and isinstance(error, ValueError)
    got = [(v.field, v.description) for v in error.violations]
    assert [field for field, _ in got] == [f"points_bad.csv:{where}" for where, _ in EXPECTED_BAD]
    for (_, description), (where, expected) in zip(got, EXPECTED_BAD, strict=True):
        assert expected in description, where


def test_future_tolerance_is_one_day():
    now = utc(2025, 6, 1, 1, 0)
    a, b = _row("a", "2025-06-01T23:00:00Z"), _row("b", "2025-06-02T01:00:00+00:00")  # exactly now + 1 day
    assert len(_read_rows([a, b], now_s=now)) == 2
    with pytest.raises(InvalidIncidentFileError) as caught:
        _read_rows([a, _row("c", "2025-06-02T01:00:01Z")], now_s=now)
    assert [v.field for v in caught.value.violations] == ["rows.csv:3:occurred_at"]


def test_missing_required_column_names_the_file_and_columns():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(FIXTURES / "points_missing_column.csv")
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("points_missing_column.csv", "missing required column 'longitude'"),
        ("points_missing_column.csv", "missing required column 'violent'"),
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("broken.gpkg", b"not a geopackage at all"),
        ("broken.geojson", b'{"type": "FeatureCollection", "features": ['),
        ("broken.parquet", b"PAR1 nope"),
        ("latin1.csv", "id,occurred_at\nñ,x\n".encode("latin-1")),
        ("empty.csv", b""),
        ("extra_field.csv", b"id,occurred_at,latitude,longitude,type,violent,source\na,b,c,d,e,f,g,h\n"),
        ("points.xlsx", b"whatever"),
    ],
)
def test_unreadable_files_raise_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(path)
    assert caught.value.violations[0].field == name


def test_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(tmp_path / "nowhere.csv")
    assert caught.value.violations[0].field == "nowhere.csv"


def test_vector_file_with_non_point_or_missing_geometry(tmp_path):
    frame = gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c"],
            "occurred_at": ["2024-03-05T22:15:00-06:00"] * 3,
            "type": ["hijacking"] * 3,
            "violent": [True, False, True],
            "source": ["t"] * 3,
        },
        geometry=[shapely.Point(-100.3, 25.6), shapely.LineString([(-100, 25), (-101, 26)]), None],
        crs="EPSG:4326",
    )
    path = tmp_path / "mixed.gpkg"
    frame.to_file(path)
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_point_incidents(path)
    assert [v.field for v in caught.value.violations] == ["mixed.gpkg:2:geometry", "mixed.gpkg:3:geometry"]
    assert "'LineString'" in caught.value.violations[0].description


def test_projected_geometry_is_reprojected_and_lat_lng_columns_win(tmp_path):
    points = gpd.read_file(FIXTURES / "points.geojson")
    projected = points.to_crs("EPSG:6372")  # Mexico ITRF2008 / LCC, metres
    projected.to_file(tmp_path / "projected.gpkg")
    got = read_point_incidents(tmp_path / "projected.gpkg")
    np.testing.assert_allclose(got.lat, points.geometry.y, atol=1e-7)
    np.testing.assert_allclose(got.lng, points.geometry.x, atol=1e-7)
    # explicit latitude/longitude columns are used instead of the geometry
    moved = points.assign(latitude=20.0, longitude=-99.0)
    moved.to_file(tmp_path / "columns.geojson")
    got = read_point_incidents(tmp_path / "columns.geojson")
    assert set(got.lat) == {20.0} and set(got.lng) == {-99.0}


def test_parquet_with_typed_timestamps(tmp_path):
    points = gpd.read_parquet(FIXTURES / "points.parquet")
    points["occurred_at"] = pd.to_datetime(points["occurred_at"], utc=True, format="ISO8601")
    points.to_parquet(tmp_path / "typed.parquet")
    got = read_point_incidents(tmp_path / "typed.parquet")
    assert got.utc_s.tolist() == [e[1] for e in EXPECTED_POINTS]
    # a UTC-typed column keeps only the instant: the hour of week is still the local one at the place
    assert got.local_how[0] == 1 * 24 + 22  # Wed 2024-03-06 04:15 UTC = Tue 22:15 in Monterrey


def test_incidents_from_rows_keeps_its_meaning():
    rows = [_row("r1", "2024-03-05T22:15:00-06:00"), _row("r2", "2024-01-01T00:00:00-06:00")]
    got = incidents_from_rows(rows, where="req", first_line=5)
    assert got.ids.tolist() == ["r1", "r2"]
    assert got.local_how.tolist() == [46, 0]
    assert got.utc_s.tolist() == [utc(2024, 3, 6, 4, 15), utc(2024, 1, 1, 6)]
    assert len(incidents_from_rows([])) == 0
    with pytest.raises(InvalidIncidentFileError) as caught:
        incidents_from_rows([rows[0], {**rows[1], "latitude": "north"}], where="req", first_line=5)
    assert [v.field for v in caught.value.violations] == ["req:6:latitude"]


# --------------------------------------------------------------------------- several files


def test_read_incidents_concatenates_and_describes_sources():
    got, sources = read_incidents(
        [FIXTURES / "points.csv", FIXTURES / "points_naive.csv", FIXTURES / "sesnsp_municipal.csv"],
        timezone="America/Matamoros",
        municipalities=SLICE,
        now_s=NOW_2025_10,
    )
    assert [s.kind for s in sources] == ["points", "points", "sesnsp"]
    assert [s.rows for s in sources] == [7, 5, 12]
    for source in sources:
        assert isinstance(source, SourceFile)
        assert source.sha256 == hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
    assert got.ids[:7].tolist() == [e[0] for e in EXPECTED_POINTS]
    assert len(set(got.ids.tolist())) == len(got)
    assert got.weight is not None and np.all(got.weight[:12] == 1)
    assert got.local_how[:12].min() >= 0 and np.all(got.local_how[12:] == UNKNOWN_HOUR)
    assert got.sources == ("fixture-a", "fixture-b", "naive", "sesnsp_municipal.csv")


def test_duplicate_ids_across_files_are_rejected():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_incidents([FIXTURES / "points.csv", FIXTURES / "points.gpkg"])
    violations = caught.value.violations
    assert [v.field for v in violations] == [f"points.gpkg:{i}:id" for i in range(1, 8)]
    assert violations[0].description == "id 'mty-001' is also in points.csv:2"


def test_one_bad_file_rejects_the_whole_batch_and_every_file_is_reported():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_incidents(
            [FIXTURES / "points.csv", FIXTURES / "points_bad.csv", FIXTURES / "points_missing_column.csv"],
            now_s=utc(2025, 6, 1),
        )
    files = {v.field.split(":")[0] for v in caught.value.violations}
    assert files == {"points_bad.csv", "points_missing_column.csv"}
    assert len(caught.value.violations) == len(EXPECTED_BAD) + 2


def test_sesnsp_file_without_polygons_is_an_error():
    assert is_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv")
    assert not is_sesnsp_municipal(FIXTURES / "points.csv")
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_incidents([FIXTURES / "sesnsp_municipal.csv"])
    assert caught.value.violations[0].field == "sesnsp_municipal.csv"


# --------------------------------------------------------------------------- SESNSP municipal counts

# the made-up counts of sesnsp_municipal.csv: (municipality, yyyy-mm, v|nv) → count
EXPECTED_COUNTS = {
    ("19048", "2024-01", "v"): 2,
    ("19048", "2024-03", "v"): 1,
    ("19048", "2024-06", "v"): 3,
    ("19048", "2024-09", "v"): 1,
    ("19048", "2024-12", "v"): 2,
    ("19048", "2025-01", "v"): 3,
    ("19048", "2025-02", "v"): 1,
    ("19048", "2025-04", "v"): 2,
    ("19048", "2025-07", "v"): 4,
    ("19048", "2025-09", "v"): 1,
    ("19048", "2025-01", "nv"): 1,
    ("19048", "2025-05", "nv"): 2,
    ("19019", "2025-03", "v"): 1,
    ("05029", "2025-06", "v"): 1,  # written unpadded as 5029
    ("28041", "2025-01", "v"): 2,
    ("28041", "2025-05", "v"): 1,
    ("28041", "2025-02", "nv"): 1,
}


def group_weights(got: IncidentSet) -> dict[tuple[str, str, str], float]:
    totals: dict[tuple[str, str, str], float] = defaultdict(float)
    for ident, weight in zip(got.ids.tolist(), got.weights.tolist(), strict=True):
        _, key, month, modality, _ = ident.split(":")
        totals[key, month, modality] += weight
    return dict(totals)


def polygons(path: Path) -> dict[str, shapely.Geometry]:
    frame = gpd.read_file(path)
    if "cve_geo" not in frame:
        frame["cve_geo"] = frame["cve_ent"] + frame["cve_mun"]
    return dict(zip(frame["cve_geo"], frame.geometry, strict=True))


def cells_of(got: IncidentSet) -> np.ndarray:
    return np.array([ident.rsplit(":", 1)[1] for ident in got.ids.tolist()], dtype=object)


def test_sesnsp_weight_per_municipality_month_equals_the_count():
    got = read_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, now_s=NOW_2025_10)
    totals = group_weights(got)
    assert totals.keys() == EXPECTED_COUNTS.keys()
    for key, count in EXPECTED_COUNTS.items():
        assert totals[key] == pytest.approx(count, rel=1e-12), key
    assert got.sources == ("sesnsp_municipal.csv",)
    assert np.all(got.local_how == UNKNOWN_HOUR)
    assert np.all(got.weights > 0)
    violent = np.array([i.split(":")[3] == "v" for i in got.ids.tolist()])
    np.testing.assert_array_equal(got.violent, violent)
    assert set(got.types[violent]) == {"hijacking"} and set(got.types[~violent]) == {"cargo_theft"}
    assert len(set(got.ids.tolist())) == len(got)


def test_sesnsp_time_is_the_middle_of_the_month_utc():
    got = read_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, now_s=NOW_2025_10)
    months = np.array([i.split(":")[2] for i in got.ids.tolist()])
    december = got.utc_s[months == "2024-12"]
    assert set(december.tolist()) == {(utc(2024, 12, 1) + utc(2025, 1, 1)) // 2}  # Dec 16 12:00
    june = got.utc_s[months == "2025-06"]
    assert set(june.tolist()) == {utc(2025, 6, 16)}


def test_sesnsp_entries_lie_in_their_municipality_spread_by_area():
    got = read_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, now_s=NOW_2025_10)
    shapes = polygons(SLICE)
    keys = np.array([i.split(":")[1] for i in got.ids.tolist()])
    cells = cells_of(got)
    for key, polygon in shapes.items():
        mine = keys == key
        assert shapely.contains_xy(polygon, got.lng[mine], got.lat[mine]).all(), key
        # entries sit on the cell centres
        centre = h3.cell_to_latlng(cells[mine][0])
        assert (got.lat[mine][0], got.lng[mine][0]) == pytest.approx(centre)
        # every cell of the municipality, weights in proportion to cell area
        month = got.ids[mine][0].split(":")[2]
        first = mine & np.array([f":{month}:" in i for i in got.ids.tolist()]) & got.violent
        assert set(cells[first]) == set(h3.geo_to_cells(polygon, 8))
        area = np.array([h3.cell_area(c, "km^2") for c in cells[first]])
        np.testing.assert_allclose(got.weights[first] / area, (got.weights[first] / area)[0], rtol=1e-12)


def test_sesnsp_on_roads_puts_entries_on_road_cells_only():
    by_area = read_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, now_s=NOW_2025_10)
    on_road = read_sesnsp_municipal(
        FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, roads=ROUTE, now_s=NOW_2025_10
    )
    road = gpd.read_file(ROUTE).geometry.iloc[0]
    keys = np.array([i.split(":")[1] for i in on_road.ids.tolist()])
    cells = cells_of(on_road)
    for key in ("19048", "19019"):  # Santa Catarina and San Pedro Garza García: the route crosses them
        mine = keys == key
        hexagons = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in set(cells[mine])]
        assert all(hexagon.intersects(road) for hexagon in hexagons), key
        assert mine.sum() < (np.array([i.split(":")[1] for i in by_area.ids.tolist()]) == key).sum()
    # the route does not reach Sacramento (Coahuila) or Victoria (Tamaulipas): spread by area as before
    for key in ("05029", "28041"):
        area_cells = {c for i, c in zip(by_area.ids.tolist(), cells_of(by_area), strict=True) if f":{key}:" in i}
        assert set(cells[keys == key]) == area_cells
    assert group_weights(on_road) == pytest.approx(group_weights(by_area))


def test_sesnsp_bad_file_reports_every_problem():
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_sesnsp_municipal(FIXTURES / "sesnsp_municipal_bad.csv", municipalities=SLICE, now_s=NOW_2025_10)
    got = [(v.field, v.description) for v in caught.value.violations]
    assert got == [
        (
            "sesnsp_municipal_bad.csv:3:Cve. Municipio",
            "unknown municipality key '19999' (not in inegi_municipios_slice.geojson)",
        ),
        ("sesnsp_municipal_bad.csv:4:Febrero", "Febrero count '-2' is not a non-negative whole number"),
        ("sesnsp_municipal_bad.csv:4:Mayo", "Mayo count 'x' is not a non-negative whole number"),
        ("sesnsp_municipal_bad.csv:5:Modalidad", "Modalidad 'Violenta' is not 'Con violencia' or 'Sin violencia'"),
        ("sesnsp_municipal_bad.csv:6:Año", "Año '20x5' is not a year"),
        (
            "sesnsp_municipal_bad.csv:7:Cve. Municipio",
            "municipality '19048' has this year and modality twice (first on row 2)",
        ),
        ("sesnsp_municipal_bad.csv:8:Diciembre", "Diciembre count '7' is for a month that has not begun"),
        ("sesnsp_municipal_bad.csv:9:Cve. Municipio", "municipality key 'ABC' is not a 1-5 digit number"),
        ("sesnsp_municipal_bad.csv:10:Septiembre", "Septiembre count '2.5' is not a non-negative whole number"),
    ]


def test_sesnsp_polygons_keyed_by_cve_ent_and_cve_mun(tmp_path):
    frame = gpd.read_file(SLICE)
    frame["cve_ent"] = frame["cve_ent"].astype(int)  # unpadded numbers: padded on reading
    frame["cve_mun"] = frame["cve_mun"].astype(int)
    frame.drop(columns=["cve_geo"]).to_file(tmp_path / "by_parts.gpkg")
    a = read_sesnsp_municipal(FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, now_s=NOW_2025_10)
    b = read_sesnsp_municipal(
        FIXTURES / "sesnsp_municipal.csv", municipalities=tmp_path / "by_parts.gpkg", now_s=NOW_2025_10
    )
    assert a.ids.tolist() == b.ids.tolist()
    np.testing.assert_allclose(a.weights, b.weights)


def test_sesnsp_other_resolution_and_duplicate_across_files(tmp_path):
    coarse = read_sesnsp_municipal(
        FIXTURES / "sesnsp_municipal.csv", municipalities=SLICE, resolution=6, now_s=NOW_2025_10
    )
    assert {h3.get_resolution(c) for c in cells_of(coarse)} == {6}
    assert group_weights(coarse) == pytest.approx({k: float(v) for k, v in EXPECTED_COUNTS.items()})
    copy = tmp_path / "copia.csv"
    copy.write_bytes((FIXTURES / "sesnsp_municipal.csv").read_bytes())
    with pytest.raises(InvalidIncidentFileError) as caught:
        read_incidents([FIXTURES / "sesnsp_municipal.csv", copy], municipalities=SLICE, now_s=NOW_2025_10)
    assert all(
        v.field.startswith("copia.csv:") and v.field.endswith(":Cve. Municipio") for v in caught.value.violations
    )
    assert "is also in sesnsp_municipal.csv:" in caught.value.violations[0].description


# --------------------------------------------------------------------------- with the shared samples

SESNSP_HEADER = (
    "Año,Clave_Ent,Entidad,Cve. Municipio,Municipio,Bien jurídico afectado,Tipo de delito,"
    "Subtipo de delito,Modalidad,Enero,Febrero,Marzo,Abril,Mayo,Junio,Julio,Agosto,Septiembre,"
    "Octubre,Noviembre,Diciembre"
)


def write_sesnsp(path: Path, rows: list[tuple[int, str, str, str, list[str]]]) -> None:
    """rows: (year, key as written, municipality, modality, 12 month cells)."""
    lines = [SESNSP_HEADER]
    for year, key, name, modality, months in rows:
        ent = key[:-3] if len(key) > 3 else "0"
        lines.append(
            f"{year},{ent},Estado,{key},{name},El patrimonio,Robo,Robo a transportista,{modality},{','.join(months)}"
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


@needs_shared
def test_sesnsp_with_the_full_inegi_polygons_of_three_states(tmp_path):
    merged = pd.concat([gpd.read_file(SHARED / "inegi" / f"geom_ent_mun_{s}.geojson") for s in ("05", "19", "28")])
    merged_path = tmp_path / "ent_mun_05_19_28.gpkg"
    gpd.GeoDataFrame(merged).to_file(merged_path)
    names = pd.read_csv(SHARED / "inegi" / "cve_nom_municipios.csv", dtype=str).set_index("cve_geo")
    picks = {"5030": "05030", "19039": "19039", "28032": "28032", "19033": "19033"}  # Saltillo unpadded; Linares
    rows = []
    for written, key in picks.items():
        counts = [str((int(key) + m) % 4) for m in range(9)] + ["NA", "NA", "NA"]
        rows.append((2025, written, names.loc[key, "nombre_municipio"], "Con violencia", counts))
    sesnsp = tmp_path / "municipal_2025.csv"
    write_sesnsp(sesnsp, rows)
    got, sources = read_incidents([sesnsp], municipalities=merged_path, now_s=NOW_2025_10)
    assert sources[0].kind == "sesnsp"
    totals = group_weights(got)
    for key in picks.values():
        for m in range(9):
            count = (int(key) + m) % 4
            assert totals.get((key, f"2025-{m + 1:02d}", "v"), 0.0) == pytest.approx(count)
    shapes = polygons(merged_path)
    keys = np.array([i.split(":")[1] for i in got.ids.tolist()])
    for key in picks.values():
        mine = keys == key
        assert mine.any()
        assert shapely.contains_xy(shapes[key], got.lng[mine], got.lat[mine]).all(), key
    # Galeana (NL, ~7,000 km²): thousands of cells, still one count per month
    write_sesnsp(sesnsp, [(2024, "19017", "Galeana", "Sin violencia", ["1"] * 12)])
    big = read_sesnsp_municipal(sesnsp, municipalities=SHARED / "inegi" / "geom_ent_mun_19.geojson", now_s=NOW_2025_10)
    assert len(big) > 12 * 7000  # ~8,150 resolution-8 cells
    assert sum(group_weights(big).values()) == pytest.approx(12)


@needs_shared
@pytest.mark.filterwarnings("ignore:Several features with id:RuntimeWarning")
def test_sesnsp_on_the_real_edomex_roads(tmp_path):
    roads_path = SHARED / "roads" / "edomex_carreteras.geojson"
    boxes = FIXTURES / "edomex_boxes.geojson"  # hand-drawn boxes, not INEGI boundaries
    sesnsp = tmp_path / "edomex.csv"
    twelve = ["2", "0", "1", "0", "0", "0", "0", "0", "0", "0", "0", "3"]
    write_sesnsp(
        sesnsp, [(2024, "15106", "Toluca", "Con violencia", twelve), (2024, "15999", "Caja", "Con violencia", twelve)]
    )
    got = read_sesnsp_municipal(sesnsp, municipalities=boxes, roads=roads_path, now_s=NOW_2025_10)
    roads = shapely.union_all(gpd.read_file(roads_path).geometry.to_numpy())
    shapes = polygons(boxes)
    keys = np.array([i.split(":")[1] for i in got.ids.tolist()])
    cells = cells_of(got)
    on_roads = set(cells[keys == "15106"])
    all_cells = set(h3.geo_to_cells(shapes["15106"], 8))
    assert on_roads < all_cells and len(on_roads) < len(all_cells) / 3
    for cell in on_roads:
        hexagon = shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])
        assert hexagon.intersects(roads), cell
    # the box without roads falls back to every cell
    assert set(cells[keys == "15999"]) == set(h3.geo_to_cells(shapes["15999"], 8))
    totals = group_weights(got)
    assert totals[("15106", "2024-12", "v")] == pytest.approx(3)
    assert totals[("15999", "2024-01", "v")] == pytest.approx(2)


# --------------------------------------------------------------------------- properties and scale

COLUMNS = ["id", "occurred_at", "latitude", "longitude", "type", "violent", "source"]


def _row(ident: str, when: str, **extra) -> dict[str, str]:
    row = {
        "id": ident,
        "occurred_at": when,
        "latitude": "25.6866",
        "longitude": "-100.3161",
        "type": "hijacking",
        "violent": "true",
        "source": "t",
    }
    row.update(extra)
    return row


def _read_rows(rows: list[dict[str, str]], **kwargs) -> IncidentSet:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return read_point_incidents(path, **kwargs)


valid_rows = st.lists(
    st.tuples(
        st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2030, 12, 31)),
        st.integers(-14 * 4, 14 * 4).map(lambda q: q * 15),  # offset in minutes
        st.booleans(),  # written as Z when the offset is 0
        st.floats(-90, 90, allow_nan=False),
        st.floats(-180, 180, allow_nan=False),
        st.sampled_from(INCIDENT_TYPES),
        st.sampled_from(["true", "False", "1", "0", "YES", "no", "si", "Sí"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_rows)
def test_random_valid_rows_round_trip(rows):
    records, expected = [], []
    for i, (wall, minutes, zulu, lat, lng, kind, violent) in enumerate(rows):
        offset = timezone(timedelta(minutes=minutes))
        when = wall.replace(tzinfo=offset).isoformat()
        if minutes == 0 and zulu:
            when = when.replace("+00:00", "Z")
        records.append(_row(f"id-{i}", when, latitude=repr(lat), longitude=repr(lng), type=kind, violent=violent))
        instant = wall.replace(tzinfo=offset).timestamp()
        # the local hour at the place (zone of its resolution-5 parent, as scoring looks it up)
        parent = h3.cell_to_parent(h3.latlng_to_cell(lat, lng, 8), 5)
        local = datetime.fromtimestamp(int(np.floor(instant)), UTC).astimezone(
            ZoneInfo(zone_at(*h3.cell_to_latlng(parent)))
        )
        how = local.weekday() * 24 + local.hour
        expected.append(
            (int(np.floor(instant)), how, lat, lng, kind, violent.lower() in ("true", "1", "yes", "si", "sí"))
        )
    got = _read_rows(records, now_s=utc(2031, 1, 1))
    assert got.ids.tolist() == [r["id"] for r in records]
    assert got.utc_s.tolist() == [e[0] for e in expected]
    assert got.local_how.tolist() == [e[1] for e in expected]
    assert got.lat.tolist() == [e[2] for e in expected]
    assert got.lng.tolist() == [e[3] for e in expected]
    assert got.types.tolist() == [e[4] for e in expected]
    assert got.violent.tolist() == [e[5] for e in expected]


garbage = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=st.sampled_from(COLUMNS), line=st.integers(0, 2), value=garbage)
def test_garbage_in_a_cell_only_ever_raises_invalid_incident_file(column, line, value):
    rows = [_row(f"g{i}", f"2024-03-0{i + 1}T10:00:00-06:00") for i in range(3)]
    rows[line][column] = value
    try:
        got = _read_rows(rows, now_s=utc(2025, 1, 1))
    except InvalidIncidentFileError as exc:
        assert exc.violations
        for violation in exc.violations:
            assert re.fullmatch(r"rows\.csv(:\d+:.+)?", violation.field), violation.field
        return
    assert len(got) == 3  # the garbage happened to be valid (e.g. " 1" as violent, another source)


SESNSP_LINES = (FIXTURES / "sesnsp_municipal.csv").read_bytes().decode("cp1252").splitlines()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.integers(1, len(SESNSP_LINES) - 1), column=st.integers(0, 20), value=garbage)
def test_garbage_in_a_sesnsp_cell_only_ever_raises_invalid_incident_file(line, column, value):
    rows = list(csv.reader(SESNSP_LINES))
    rows[line][column] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "municipal.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        try:
            got = read_sesnsp_municipal(path, municipalities=SLICE, now_s=NOW_2025_10)
        except InvalidIncidentFileError as exc:
            assert all(v.field.startswith("municipal.csv") for v in exc.violations)
            return
    assert np.all(got.weights > 0)


def _write_big_csv(path: Path, n: int) -> None:
    rng = np.random.default_rng(7)
    seconds = rng.integers(0, 4 * 365 * 86400, n)
    stamps = (np.datetime64("2021-01-01T00:00:00") + seconds.astype("timedelta64[s]")).astype(str)
    offsets = np.array(["-06:00", "Z", "-07:00", "-05:00"])[rng.integers(0, 4, n)]
    frame = pd.DataFrame(
        {
            "id": np.char.add("big-", np.arange(n).astype(str)),
            "occurred_at": np.char.add(stamps, offsets),
            "latitude": np.round(rng.uniform(14.5, 32.5, n), 5),
            "longitude": np.round(rng.uniform(-117.0, -86.7, n), 5),
            "type": np.array(INCIDENT_TYPES)[rng.integers(0, len(INCIDENT_TYPES), n)],
            "violent": np.array(["true", "false", "1", "0", "yes", "no", "sí"])[rng.integers(0, 7, n)],
            "source": "scale",
        }
    )
    frame.to_csv(path, index=False)


def test_scale_200k_rows(tmp_path):
    path = tmp_path / "big.csv"
    _write_big_csv(path, 200_000)
    start = time.perf_counter()
    got, sources = read_incidents([path])
    elapsed = time.perf_counter() - start
    print(f"200,000 rows ingested in {elapsed:.2f} s")
    assert len(got) == 200_000 and sources[0].rows == 200_000
    assert got.ids[-1] == "big-199999"
    assert got.local_how.min() >= 0 and got.local_how.max() <= 167
    assert got.lat.min() >= 14.5 and got.lng.max() <= -86.7
