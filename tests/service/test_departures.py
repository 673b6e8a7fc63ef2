"""SuggestDepartures through a real channel, and ``routerisk departures`` as a subprocess."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc
import pytest

import seeds
from routerisk.v1 import route_risk_service_pb2 as pb
from tests.helpers.api import DEPARTURE, demo_request, violations_of
from tests.helpers.cli import run_cli


def suggest_request(window_h: float = 24, step_h: float = 1, **fields) -> pb.SuggestDeparturesRequest:
    request = pb.SuggestDeparturesRequest(trip=demo_request("mexico-city_laredo"), **fields)
    request.window.FromTimedelta(timedelta(hours=window_h))
    request.step.FromTimedelta(timedelta(hours=step_h))
    return request


def test_every_departure_of_the_window_is_scored_and_ranked(stub) -> None:
    response = stub.SuggestDepartures(suggest_request(24, 2, risk_weight=0.7), timeout=60)
    items = response.departures
    start = int(DEPARTURE.timestamp())
    assert sorted(i.result.departure_time.seconds for i in items) == [start + k * 7200 for k in range(13)]
    assert [i.rank for i in items] == list(range(1, 14))
    assert [i.cost for i in items] == sorted(i.cost for i in items)
    # the blend CompareRoutes documents, over the departures
    hours = [i.result.duration.ToTimedelta().total_seconds() / 3600 for i in items]
    for item, h in zip(items, hours, strict=True):
        assert item.cost == pytest.approx(0.7 * item.result.score / 100 + 0.3 * h / max(hours))
    # night and day differ in risk, and the wait at Laredo on arrival changes the duration
    assert len({round(i.result.score, 3) for i in items}) > 3
    waits = {round(i.result.crossings[0].expected_wait_minutes) for i in items}
    assert len(waits) > 1 and len({round(h, 4) for h in hours}) > 1
    assert response.risk_weight == pytest.approx(0.7)
    assert response.reason.startswith("departure ") and "via Laredo" in response.reason


def test_each_departure_is_the_answer_score_route_gives(stub) -> None:
    response = stub.SuggestDepartures(suggest_request(4, 1), timeout=60)
    for item in response.departures:
        alone = demo_request("mexico-city_laredo")
        alone.departure_time.CopyFrom(item.result.departure_time)
        direct = stub.ScoreRoute(alone, timeout=30)
        assert direct.score == pytest.approx(item.result.score)
        assert direct.duration == item.result.duration


def test_bad_windows_and_trips_are_named(stub) -> None:
    bad = suggest_request(24 * 8, 0.1, risk_weight=2.0)
    with pytest.raises(grpc.RpcError) as caught:
        stub.SuggestDepartures(bad, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in violations_of(caught.value)} == {"window", "step", "risk_weight"}
    too_many = suggest_request(24 * 7, 0.5)  # 337 departures
    with pytest.raises(grpc.RpcError) as caught:
        stub.SuggestDepartures(too_many, timeout=30)
    assert [v.field for v in violations_of(caught.value)] == ["step"]
    broken = suggest_request()
    broken.trip.route.line.points[3].latitude = 123.0
    with pytest.raises(grpc.RpcError) as caught:
        stub.SuggestDepartures(broken, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations_of(caught.value)] == ["trip.route.line.points[3].latitude"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.SuggestDepartures(pb.SuggestDeparturesRequest(), timeout=30)
    assert [v.field for v in violations_of(caught.value)] == ["trip.route"]


def test_cli_ranks_departures_in_local_time(server_process) -> None:
    address, _, _ = server_process
    route = str(seeds.DEMO_ROUTES["mexico-city_laredo"])
    args = ("departures", route, "--departure", "2025-03-12T18:00:00-06:00", "--window", "6h", "--step", "2h")
    result = run_cli(*args, "--server", address)
    assert result.returncode == 0, result.stderr
    assert "America/Mexico_City" in result.stdout and "recommended: departure" in result.stdout
    as_json = run_cli(*args, "--server", address, "--json")
    departures = json.loads(as_json.stdout)["departures"]
    assert len(departures) == 4 and departures[0]["rank"] == 1
    wrong = run_cli("departures", route, "--window", "a day", "--server", address)
    assert wrong.returncode == 2 and "--window" in wrong.stderr
    refused = run_cli("departures", route, "--window", "30d", "--server", address)
    assert refused.returncode == 2 and "window" in refused.stderr
