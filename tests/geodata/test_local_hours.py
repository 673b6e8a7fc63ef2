"""Hour of week = the local hour at the incident's place at its instant, whatever the spelling."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import tzfpy

from geodata.adaptive import fit
from geodata.ingest import read_incidents
from geodata.layers import build_layer, load_layer
from geodata.timezones import hour_of_week, local_hour_of_week_at
from tests.conftest import FIXTURES, routerisk_command

HOURS = FIXTURES / "ingest"
SPELLINGS = {
    "utc": (HOURS / "hours_utc.csv", None),
    "offset": (HOURS / "hours_offset.csv", None),
    "naive": (HOURS / "hours_naive.csv", "America/Mexico_City"),
}


def read(spelling: str):
    path, zone = SPELLINGS[spelling]
    return read_incidents([path], timezone=zone, now_s=int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()))[0]


def expected_hours(incidents) -> np.ndarray:
    """Computed independently: the place's own IANA zone (tzfpy at the point) and zoneinfo."""
    out = []
    for lat, lng, t in zip(incidents.lat.tolist(), incidents.lng.tolist(), incidents.utc_s.tolist(), strict=True):
        local = datetime.fromtimestamp(t, UTC).astimezone(ZoneInfo(tzfpy.get_tz(lng, lat)))
        out.append(local.weekday() * 24 + local.hour)
    return np.array(out)


def test_the_three_spellings_give_the_same_instants_and_local_hours() -> None:
    sets = {name: read(name) for name in SPELLINGS}
    base = sets["utc"]
    assert len(base) == 36
    for name, incidents in sets.items():
        assert incidents.ids.tolist() == base.ids.tolist(), name
        assert incidents.utc_s.tolist() == base.utc_s.tolist(), name
        assert incidents.local_how.tolist() == base.local_how.tolist(), name
    assert base.local_how.tolist() == expected_hours(base).tolist()
    # the wall clock as written in UTC is not the local hour (the old defect): most rows differ
    as_written = hour_of_week(base.utc_s)
    assert np.mean(as_written != base.local_how) > 0.9


def test_border_zones_follow_their_own_daylight_saving_rules() -> None:
    incidents = read("utc")
    # Matamoros keeps US DST: on 2024-07-04 04:00Z it is 23:00 on Wednesday (UTC-5), Mexico City 22:00 (UTC-6)
    mat = incidents.ids.tolist().index("mat-15")
    cdmx = incidents.ids.tolist().index("cdmx-03")
    assert incidents.local_how[mat] == 2 * 24 + 23
    assert incidents.local_how[cdmx] == 2 * 24 + 22
    # Tijuana in January: UTC-8; 2024-01-15T03:30Z is Sunday 19:30
    tij = incidents.ids.tolist().index("tij-06")
    assert incidents.local_how[tij] == 6 * 24 + 19


def test_the_three_spellings_build_the_same_layer() -> None:
    layers = [build_layer(read(name), name="hours") for name in SPELLINGS]
    for layer in layers[1:]:
        assert np.array_equal(layer.cells, layers[0].cells)
        assert np.array_equal(layer.intensity, layers[0].intensity)


def test_local_hour_of_week_at_an_empty_set() -> None:
    assert len(local_hour_of_week_at(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))) == 0


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_cli_builds_the_same_layer_from_each_spelling(tmp_path, spelling: str) -> None:
    path, zone = SPELLINGS[spelling]
    store = tmp_path / "store"
    args = ["layers", "build", str(path), "--out", str(store), "--name", "hours"]
    if zone:
        args += ["--timezone", zone]
    result = subprocess.run([*routerisk_command(), *args], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    version = result.stdout.strip().splitlines()[-1]
    layer = load_layer(next(p for p in store.rglob("layer.json") if version in str(p)).parent)
    utc = read("utc")
    reference = build_layer(utc, fit(utc).params, name="hours")
    assert np.array_equal(np.asarray(layer.cells), reference.cells)
    assert np.allclose(np.asarray(layer.intensity), reference.intensity, rtol=1e-6, atol=0)


# near the Yucatán / Quintana Roo line the res-5 parents of a point's res-7 and res-8 cells lie in
# different zones (H3 parents are not exact containers): America/Cancun (UTC−5, no DST) for the
# res-7 cell, America/Merida (UTC−6) for the res-8 cell
BORDER_POINT = (20.4989, -87.8233)


def test_an_incident_takes_the_zone_of_its_cell_at_the_layers_resolution(tmp_path) -> None:
    import h3.api.basic_int as h3i

    from geodata.ingest import read_point_incidents
    from geodata.timezones import local_hour_of_week

    path = tmp_path / "border.csv"
    path.write_text(
        "id,occurred_at,latitude,longitude,type,violent,source\n"
        f"b1,2024-01-10T12:30:00Z,{BORDER_POINT[0]},{BORDER_POINT[1]},hijacking,false,test\n",
        encoding="utf-8",
    )
    now = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    utc = np.array([int(datetime(2024, 1, 10, 12, 30, tzinfo=UTC).timestamp())])
    hours = {}
    for resolution in (7, 8):
        cell = np.array([h3i.latlng_to_cell(*BORDER_POINT, resolution)], dtype=np.uint64)
        scored = local_hour_of_week(cell, utc)  # what a truck in that cell at that instant is scored at
        read = read_incidents([path], resolution=resolution, now_s=now)[0].local_how
        assert read.tolist() == scored.tolist(), resolution
        assert read_point_incidents(path, resolution=resolution, now_s=now).local_how.tolist() == scored.tolist()
        hours[resolution] = int(read[0])
    # Wednesday 12:30Z is 07:30 in Cancún and 06:30 in Mérida: the resolution decides the hour
    assert hours == {7: 2 * 24 + 7, 8: 2 * 24 + 6}
