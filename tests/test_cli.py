"""The ``routerisk`` CLI as a subprocess against a real server subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess

import pytest

import seeds
from tests.conftest import free_port, routerisk_command
from tests.helpers.cli import run_cli


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
    # most of Tijuana → Otay Mesa runs on to San Diego, outside the seed layer's data: no score shown
    shown = "n/a  (NOT COVERED" if name == "tijuana_otay-mesa" else "/ 100"
    assert "score" in result.stdout and shown in result.stdout
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


def _tgkill(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to one thread of another process (Linux tgkill)."""
    import ctypes

    number = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)
    if number is None:
        pytest.skip("tgkill syscall number unknown on this machine")
    if ctypes.CDLL(None, use_errno=True).syscall(number, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


def test_sigterm_delivered_to_any_thread_drains_and_exits_0():
    """The kernel hands a process-directed SIGTERM to any thread that does not block it, often
    a gRPC thread. The main thread used to wait on an Event without a timeout and never saw the
    signal: the server hung until SIGKILL (seen once as PID 1 in a container test)."""
    from tests.conftest import wait_serving

    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_METRICS_ADDRESS": ""}
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_serving(address)
        others = sorted(int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid)
        _tgkill(process.pid, others[-1], signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


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


def test_new_key_and_an_authenticated_cli():
    from tests.conftest import wait_serving

    made = run_cli("new-key", "--tenant", "acme", "--permissions", "score")
    assert made.returncode == 0
    key, entry = made.stdout.strip(), json.loads(made.stderr)
    assert key.startswith("rr_") and key not in made.stderr and entry["tenant"] == "acme"
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_API_KEYS": json.dumps([entry])}
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_serving(address)
        route = str(seeds.DEMO_ROUTES["tijuana_otay-mesa"])
        denied = run_cli("score", route, "--server", address)
        assert denied.returncode == 2 and "ROUTERISK_API_KEY" in denied.stderr
        allowed = run_cli("score", route, "--server", address, env={**os.environ, "ROUTERISK_API_KEY": key})
        assert allowed.returncode == 0, allowed.stderr
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_sigterm_under_load_answers_every_accepted_call(tmp_path):
    """SIGTERM while clients keep calling: every call before the signal and every call in
    flight finishes OK; calls arriving during shutdown are refused unprocessed (UNAVAILABLE,
    or CANCELLED when gRPC had queued them but no handler had taken them); exit code 0."""
    import threading
    import time

    import grpc

    from routerisk.v1 import route_risk_service_pb2 as pb
    from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
    from tests.conftest import wait_serving

    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_CACHE_MAX_ENTRIES": "0", "ROUTERISK_GRACE_SECONDS": "20"}
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*routerisk_command(), "serve", "--address", address], stderr=log, env=env)
    request = pb.ScoreRouteRequest()
    request.route.line.points.extend(pb.LatLng(latitude=19.4 + i * 0.004, longitude=-99.1) for i in range(2000))
    results: list[tuple[float, grpc.StatusCode]] = []
    stop = threading.Event()
    clients = 6
    # every client has had an answer: the load is on (a fixed sleep was not enough on a busy
    # machine, where the first answers can take longer than it)
    answered = threading.Barrier(clients + 1)

    def client() -> None:
        first = True
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.RouteRiskServiceStub(channel)
            while not stop.is_set():
                try:
                    stub.ScoreRoute(request, timeout=30)
                    results.append((time.monotonic(), grpc.StatusCode.OK))
                except grpc.RpcError as exc:
                    results.append((time.monotonic(), exc.code()))
                    time.sleep(0.01)
                if first:
                    first = False
                    with contextlib.suppress(threading.BrokenBarrierError):
                        answered.wait(timeout=120)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    try:
        wait_serving(address)
        # the server that answered is this process, not another one on a port reused meanwhile
        assert process.poll() is None, f"exited with {process.returncode} before the load: {_tail(log_path)}"
        for thread in threads:
            thread.start()
        answered.wait(timeout=120)
        time.sleep(0.5)  # a few more calls in flight; nothing below depends on how many
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        assert code == 0, f"routerisk serve exited with {code} after SIGTERM: {_tail(log_path)}"
    finally:
        stop.set()  # always: a client left looping would keep pytest from exiting
        answered.abort()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=60)
        if process.poll() is None:
            process.kill()
    refused = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    from tools.reliability.figures import record

    record(
        "sigterm",
        "ci",
        ok_before_signal=sum(1 for t, code in results if code == grpc.StatusCode.OK and t < signalled),
        ok_after_signal=sum(1 for t, code in results if code == grpc.StatusCode.OK and t >= signalled),
        refused_unprocessed=sum(1 for _, code in results if code in refused),
        failed_before_signal=sum(1 for t, code in results if code != grpc.StatusCode.OK and t < signalled),
        other_codes=sum(1 for _, code in results if code not in {grpc.StatusCode.OK, *refused}),
    )
    assert {code for _, code in results} <= {grpc.StatusCode.OK, *refused}
    assert all(code == grpc.StatusCode.OK for t, code in results if t < signalled)
    assert sum(1 for t, code in results if code == grpc.StatusCode.OK and t < signalled) > 0


def _tail(path, lines: int = 15) -> str:
    """The end of a server's log, for a failure message."""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def test_metrics_endpoint_of_a_served_process():
    import urllib.request

    from tests.conftest import wait_serving

    address, metrics_port = f"127.0.0.1:{free_port()}", free_port()
    env = {**os.environ, "ROUTERISK_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"}
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address], stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_serving(address)
        assert run_cli("score", str(seeds.DEMO_ROUTES["tijuana_otay-mesa"]), "--server", address).returncode == 0
        assert run_cli("score", "--polyline", "??", "--server", address).returncode == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert 'routerisk_rpcs_total{code="OK",method="ScoreRoute"} 1.0' in text
    assert 'routerisk_rpcs_total{code="INVALID_ARGUMENT",method="ScoreRoute"} 1.0' in text
    assert 'routerisk_layer_info{synthetic="true"' in text


def test_opentelemetry_tracing_from_the_standard_variables():
    from tests.conftest import wait_serving

    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "routerisk-test"}
    env["ROUTERISK_METRICS_ADDRESS"] = ""
    process = subprocess.Popen(
        [*routerisk_command(), "serve", "--address", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_serving(address)
        assert run_cli("score", str(seeds.DEMO_ROUTES["tijuana_otay-mesa"]), "--server", address).returncode == 0
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=60)
    spans = out.decode()
    assert "/routerisk.v1.RouteRiskService/ScoreRoute" in spans
    assert "routerisk-test" in spans
    assert "coordinates" not in spans and "-116." not in spans  # no request contents in spans


def test_runs_as_pid_1_and_drains_on_sigterm():
    """In a container the server is PID 1: the kernel delivers SIGTERM to PID 1 only if it
    handles it, so this checks the handler is installed (a new PID namespace, via unshare)."""
    import shutil

    from tests.conftest import wait_serving

    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--pid", "--fork", "true"], capture_output=True, check=False)
    if unshare is None or probe.returncode != 0:
        pytest.skip("cannot create a PID namespace here (unshare)")
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROUTERISK_METRICS_ADDRESS": ""}
    # --kill-child: when unshare dies, the namespace's PID 1 (the server) gets SIGTERM
    process = subprocess.Popen(
        [unshare, "--pid", "--fork", "--kill-child=SIGTERM", "--", *routerisk_command(), "serve", "--address", address],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        wait_serving(address)
        process.kill()  # unshare goes; the server, as PID 1, gets SIGTERM
        log = process.stderr.read().decode()  # EOF once the server has exited
    finally:
        if process.poll() is None:
            process.kill()
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [e["pid"] for e in entries if e["message"] == "serving"] == [1]
    assert [e["message"] for e in entries][-2:] == ["draining", "stopped"]
