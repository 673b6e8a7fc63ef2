"""The ``routerisk`` CLI as a subprocess against a real server subprocess."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

import seeds
from tests.conftest import free_port, routerisk_command


def run_cli(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*routerisk_command(), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("name", "port"),
    [
        ("mexico-city_laredo", "Laredo"),
        ("manzanillo_guadalajara", None),
        ("tijuana_otay-mesa", "Otay Mesa"),
        ("ciudad-juarez_el-paso", "El Paso"),
    ],
)
def test_score_demo_routes_prints_a_report(server_process, name, port):
    address, _, _ = server_process
    result = run_cli("score", str(seeds.DEMO_ROUTES[name]), "--server", address)
    assert result.returncode == 0, result.stderr
    assert "score" in result.stdout and "/ 100" in result.stdout
    assert "SYNTHETIC" in result.stdout
    if port:
        assert "Border crossings" in result.stdout and port in result.stdout
    else:
        assert "Border crossings" not in result.stdout


def test_json_output_is_exactly_the_response(server_process):
    address, _, _ = server_process
    route = str(seeds.DEMO_ROUTES["tijuana_otay-mesa"])
    result = run_cli("score", route, "--server", address, "--json", "--departure", "2025-03-12T08:00:00-08:00")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert 0 <= body["score"] <= 100
    assert body["level"].startswith("RISK_LEVEL_")
    assert body["crossings"][0]["portName"] == "Otay Mesa"
    assert body["departureTime"] == "2025-03-12T16:00:00Z"
    assert body["layerSynthetic"] is True


def test_route_from_stdin_and_polyline_agree(server_process):
    address, _, _ = server_process
    text = seeds.DEMO_ROUTES["manzanillo_guadalajara"].read_text()
    common = ("--server", address, "--json", "--departure", "2025-03-12T08:00:00Z")
    by_stdin = json.loads(run_cli("score", "-", *common, stdin=text).stdout)
    by_polyline = run_cli("score", "--polyline", "_p~iF~ps|U_ulLnnqC_mqNvxq`@", *common)
    assert by_polyline.returncode == 0, by_polyline.stderr
    assert by_stdin["distanceKm"] > 200


def test_invalid_route_file_exits_2_with_one_line(tmp_path, server_process):
    address, _, _ = server_process
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Point", "coordinates": [0, 0]}')
    result = run_cli("score", str(bad), "--server", address)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1


def test_missing_file_exits_2(tmp_path, server_process):
    address, _, _ = server_process
    result = run_cli("score", str(tmp_path / "nope.geojson"), "--server", address)
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_server_side_rejection_names_the_field(server_process):
    address, _, _ = server_process
    result = run_cli("score", "--polyline", "_p~iF~ps|U_ulLnnqC_mqNvxq`@", "--speed-kmh", "400", "--server", address)
    assert result.returncode == 2
    assert "average_speed_kmh" in result.stderr


def test_unreachable_server_exits_3():
    address = f"127.0.0.1:{free_port()}"
    result = run_cli("score", str(seeds.DEMO_ROUTES["tijuana_otay-mesa"]), "--server", address, "--timeout", "3")
    assert result.returncode == 3
    assert "unreachable" in result.stderr
    assert result.stdout == ""


def test_sigterm_drains_and_exits_0():
    """A separate server: SIGTERM → NOT_SERVING, drain, exit code 0."""
    from tests.conftest import wait_serving

    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=subprocess.PIPE)
    try:
        wait_serving(address)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = process.stderr.read().decode()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(entry["message"] == "draining" for entry in lines)


def test_workers_share_one_port_and_drain_together():
    """--workers 2: two processes serve one port; SIGTERM drains both and exits 0."""
    from tests.conftest import wait_serving

    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address, "--workers", "2"], stderr=subprocess.PIPE
    )
    try:
        wait_serving(address)
        for _ in range(6):  # new connections, spread over the workers by the kernel
            result = run_cli("score", str(seeds.DEMO_ROUTES["tijuana_otay-mesa"]), "--server", address, "--json")
            assert result.returncode == 0, result.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    entries = [json.loads(line) for line in process.stderr.read().decode().splitlines() if line.startswith("{")]
    serving = {entry["pid"] for entry in entries if entry["message"] == "serving"}
    assert len(serving) == 2 and process.pid not in serving
    stopped = {entry["pid"] for entry in entries if entry["message"] == "stopped"}
    assert stopped == serving
