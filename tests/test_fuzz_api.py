"""Property-based fuzzing of every RPC through a real gRPC channel.

Valid-looking and hostile messages (random and non-finite coordinates, polylines of random
characters, wrong GeoJSON, extreme timestamps and speeds, unknown enum numbers, random page
tokens and cells): the answer is OK with a sane response, or a caller error. Never
``UNKNOWN`` or ``INTERNAL``; every ``INVALID_ARGUMENT`` carries a ``google.rpc.BadRequest``
whose field paths exist in the request that was sent (indices in range). After the run the
server still reports SERVING.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator

import grpc
import h3
import polyline as polyline_codec
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from service.config import Settings
from service.grpc.server import load_data, start_server
from tests.helpers.api import violations_of
from tests.reliability.figures import record

EXAMPLES = int(os.environ.get("ROUTERISK_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
TALLY: Counter[str] = Counter()

# ------------------------------------------------------------------ strategies

any_float = st.floats(allow_nan=True, allow_infinity=True)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)
lat = st.one_of(st.floats(14.0, 33.0), st.floats(-90.0, 90.0), any_float)
lng = st.one_of(st.floats(-118.0, -86.0), st.floats(-180.0, 180.0), any_float)
good_lat, good_lng = st.floats(14.0, 33.0), st.floats(-118.0, -86.0)
points = st.lists(st.tuples(lat, lng), max_size=40)
good_points = st.lists(st.tuples(good_lat, good_lng), min_size=2, max_size=40)
seconds = st.one_of(
    st.integers(946_684_800, 1_900_000_000),  # 2000 .. 2030
    st.integers(-62_135_596_800, 253_402_300_799),  # the Timestamp range
    st.integers(-(2**63), 2**63 - 1),  # anything int64
)
nanos = st.one_of(st.just(0), st.integers(0, 999_999_999), st.integers(-(2**31), 2**31 - 1))
enum_number = st.one_of(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1))
polyline_text = st.one_of(
    text,
    st.text(alphabet=st.characters(min_codepoint=63, max_codepoint=126), max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    good_points.map(lambda pts: polyline_codec.encode(pts, 5)),
)
json_value = st.recursive(
    st.none() | st.booleans() | any_float | st.integers() | text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=20,
)
position = st.one_of(
    st.tuples(lng, lat).map(list),
    st.lists(json_value, max_size=4),
    json_value,
)
geojson_text = st.one_of(
    text,
    json_value.map(lambda v: json.dumps(v)),
    st.lists(position, max_size=30).map(lambda c: json.dumps({"type": "LineString", "coordinates": c})),
    st.builds(
        lambda kind, coords: json.dumps({"type": "Feature", "geometry": {"type": kind, "coordinates": coords}}),
        st.sampled_from(["LineString", "Point", "Polygon", "MultiLineString", "linestring"]),
        st.lists(position, max_size=10),
    ),
    st.builds(
        lambda feats: json.dumps({"type": "FeatureCollection", "features": feats}),
        st.lists(json_value, max_size=3),
    ),
)


@st.composite
def routes(draw) -> pb.Route:
    route = pb.Route()
    kind = draw(st.sampled_from(["line", "good_line", "polyline", "polyline6", "geojson", "none"]))
    if kind in ("line", "good_line"):
        for a, b in draw(points if kind == "line" else good_points):
            route.line.points.add(latitude=a, longitude=b)
        if kind == "line" and draw(st.booleans()):
            route.line.SetInParent()  # an explicitly empty line
    elif kind == "polyline":
        route.encoded_polyline = draw(polyline_text)
    elif kind == "polyline6":
        route.encoded_polyline6 = draw(polyline_text)
    elif kind == "geojson":
        route.geojson = draw(geojson_text)
    return route


@st.composite
def timestamps(draw, message) -> None:
    message.seconds = draw(seconds)
    message.nanos = draw(nanos)


@st.composite
def score_requests(draw) -> pb.ScoreRouteRequest:
    request = pb.ScoreRouteRequest(route=draw(routes()))
    if draw(st.booleans()):
        draw(timestamps(request.departure_time))
    request.average_speed_kmh = draw(st.one_of(st.just(0.0), st.floats(1.0, 150.0), st.floats(0.0, 1e-6), any_float))
    request.crossing_lane = draw(enum_number)
    for _ in range(draw(st.integers(0, 3))):
        stop = request.stops.add()
        if draw(st.booleans()):
            stop.location.latitude, stop.location.longitude = draw(lat), draw(lng)
        stop.dwell.seconds = draw(st.one_of(st.integers(0, 86_400), st.integers(-(2**63), 2**63 - 1)))
        stop.dwell.nanos = draw(nanos)
    request.reference = draw(text)
    return request


# ------------------------------------------------------------------ checks

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])?)")


def field_exists(message: Message, path: str) -> bool:
    """Whether ``path`` (``route.line.points[3].latitude``) names a field of ``message``,
    with every index inside the repeated field it indexes."""
    current = message
    parts = path.split(".")
    for n, part in enumerate(parts):
        match = _PART.fullmatch(part)
        if match is None:
            return False
        name, index = match.groups()
        descriptor = current.DESCRIPTOR
        last = n == len(parts) - 1
        if name in descriptor.oneofs_by_name and name not in descriptor.fields_by_name:
            return last and not index
        field = descriptor.fields_by_name.get(name)
        if field is None:
            return False
        value = getattr(current, name)
        repeated = field.is_repeated
        if index:
            i = int(index[1:-1])
            if not repeated or i >= len(value):
                return False
            value = value[i]
        elif repeated and not last:
            return False
        if last:
            return True
        if field.message_type is None:
            return False
        current = value
    return False


def check_violations(violations, request: Message, what: str) -> None:
    assert violations, f"{what}: INVALID_ARGUMENT without field violations"
    for violation in violations:
        assert violation.field and violation.description, (what, violation)
        assert field_exists(request, violation.field), f"{what}: {violation.field!r} is not a field of the request"


def call(rpc: Callable, request: Message, allowed: set[grpc.StatusCode], name: str) -> Message | None:
    """The response, or None after checking the error is an allowed, well-formed one."""
    try:
        response = rpc(request, timeout=60)
    except grpc.RpcError as exc:
        code = exc.code()
        TALLY[f"{name}:{code.name}"] += 1
        assert code not in NEVER, f"{name} answered {code.name}: {exc.details()}"
        assert code in allowed, f"{name} answered {code.name}: {exc.details()}"
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            check_violations(violations_of(exc), request, name)
        return None
    TALLY[f"{name}:OK"] += 1
    return response


def check_score(response: pb.ScoreRouteResponse, request: pb.ScoreRouteRequest) -> None:
    assert 0.0 <= response.score <= 100.0
    assert math.isfinite(response.expected_incidents) and response.expected_incidents >= 0
    assert 0.0 <= response.incident_probability <= 1.0
    assert math.isfinite(response.distance_km) and response.distance_km >= 0
    assert response.layer_version and response.cell_count >= 1
    assert response.reference == request.reference
    for segment in response.segments:
        assert 0.0 <= segment.start_km <= segment.end_km <= response.distance_km + 1e-6


def check_status(status, request: Message, what: str) -> None:
    assert status.code == code_pb2.INVALID_ARGUMENT, f"{what}: per-item code {status.code}: {status.message}"
    found = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend(bad.field_violations)
    check_violations(found, request, what)


# ------------------------------------------------------------------ the RPCs

INVALID = {grpc.StatusCode.INVALID_ARGUMENT}


@FUZZ
@given(request=score_requests())
def test_score_route(stub, request):
    response = call(stub.ScoreRoute, request, INVALID, "ScoreRoute")
    if response is not None:
        check_score(response, request)


@FUZZ
@given(items=st.lists(score_requests(), max_size=5))
def test_batch_score_routes(stub, items):
    request = pb.BatchScoreRoutesRequest(requests=items)
    response = call(stub.BatchScoreRoutes, request, INVALID, "BatchScoreRoutes")
    assert response is not None, "a batch within the limit is always answered"
    assert len(response.results) == len(items)
    for i, (item, result) in enumerate(zip(items, response.results, strict=True)):
        if result.WhichOneof("result") == "response":
            check_score(result.response, item)
        else:
            check_status(result.error, item, f"BatchScoreRoutes[{i}]")


@FUZZ
@given(items=st.lists(score_requests(), max_size=11), weight=st.one_of(st.none(), st.floats(0, 1), any_float))
def test_compare_routes(stub, items, weight):
    request = pb.CompareRoutesRequest(alternatives=items)
    if weight is not None:
        request.risk_weight = weight
    response = call(stub.CompareRoutes, request, INVALID, "CompareRoutes")
    if response is not None:
        assert sorted(r.index for r in response.ranked) == list(range(len(items)))
        assert 0 <= response.recommended_index < len(items)


cells = st.one_of(
    text,
    st.builds(lambda a, b, r: h3.latlng_to_cell(a, b, r), good_lat, good_lng, st.integers(0, 15)),
    st.integers(0, 2**64 - 1).map(lambda n: f"{n:x}"),
)


@FUZZ
@given(
    kind=st.sampled_from(["location", "cell", "none"]),
    a=lat,
    b=lng,
    cell=cells,
    at=st.one_of(st.none(), seconds),
)
def test_get_cell_risk(stub, kind, a, b, cell, at):
    request = pb.GetCellRiskRequest()
    if kind == "location":
        request.location.latitude, request.location.longitude = a, b
    elif kind == "cell":
        request.cell = cell
    if at is not None:
        request.time.seconds = at
    response = call(stub.GetCellRisk, request, INVALID, "GetCellRisk")
    if response is not None:
        assert len(response.hour_of_week_risk) == 168 and response.risk >= 0
        assert -1 <= response.hour_of_week < 168


@FUZZ
@given(
    port=st.one_of(st.just(""), st.sampled_from(["230404", "250602", "240201"]), text), at=st.one_of(st.none(), seconds)
)
def test_list_border_crossings(stub, port, at):
    request = pb.ListBorderCrossingsRequest(port_number=port)
    if at is not None:
        request.time.seconds = at
    allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    response = call(stub.ListBorderCrossings, request, allowed, "ListBorderCrossings")
    if response is not None:
        assert response.crossings and all(len(c.lane_waits) == 2 for c in response.crossings)


coordinate = st.one_of(st.floats(-180, 180), any_float)


@FUZZ
@given(
    box=st.tuples(coordinate, coordinate, coordinate, coordinate),
    top=st.one_of(st.integers(0, 200), st.integers(-(2**31), 2**31 - 1)),
    page_size=st.one_of(st.integers(0, 100), st.integers(-(2**31), 2**31 - 1)),
    token=st.one_of(st.just(""), text, st.binary(max_size=80).map(lambda b: b.hex())),
    at=st.one_of(st.none(), seconds),
    follow=st.booleans(),
)
def test_list_hotspots(stub, box, top, page_size, token, at, follow):
    west, south, east, north = box
    request = pb.ListHotspotsRequest(
        bounds=pb.BoundingBox(west=west, south=south, east=east, north=north), top=top, page_size=page_size
    )
    request.page_token = token
    if at is not None:
        request.time.seconds = at
    response = call(stub.ListHotspots, request, INVALID, "ListHotspots")
    if response is not None and follow and response.next_page_token:
        request.page_token = response.next_page_token[::-1]  # a tampered token
        call(stub.ListHotspots, request, INVALID, "ListHotspots")


durations = st.one_of(
    st.none(),
    st.integers(0, 8 * 86400),
    st.integers(-(2**63), 2**63 - 1),
)


def valid_trip(pairs: list[tuple[float, float]]) -> pb.ScoreRouteRequest:
    request = pb.ScoreRouteRequest()
    request.route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in pairs)
    return request


@FUZZ
@given(
    trip=st.one_of(score_requests(), good_points.map(valid_trip)),
    window=st.one_of(durations, st.integers(3600, 6 * 3600)),
    step=st.one_of(durations, st.integers(900, 7200)),
    weight=st.one_of(st.none(), st.floats(0, 1), any_float),
)
def test_suggest_departures(stub, trip, window, step, weight):
    request = pb.SuggestDeparturesRequest(trip=trip)
    for field, value in (("window", window), ("step", step)):
        if value is not None:
            getattr(request, field).seconds = max(min(value, 315_576_000_000), -315_576_000_000)
    if weight is not None:
        request.risk_weight = weight
    response = call(stub.SuggestDepartures, request, INVALID, "SuggestDepartures")
    if response is not None:
        assert [d.rank for d in response.departures] == list(range(1, len(response.departures) + 1))
        for item in response.departures:
            check_score(item.result, trip)


mexico_box = st.tuples(st.floats(-118, -87), st.floats(14, 31), st.floats(0.1, 3), st.floats(0.1, 2)).map(
    lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3])
)


@FUZZ
@given(
    box=st.one_of(st.tuples(coordinate, coordinate, coordinate, coordinate), mexico_box),
    level=st.one_of(st.integers(0, 6), st.integers(-(2**31), 2**31 - 1)),
    perimeter=st.one_of(st.just(0.0), st.floats(0, 1e7), any_float),
    vertices=st.one_of(st.integers(0, 10_000), st.integers(-(2**31), 2**31 - 1)),
    at=st.one_of(st.none(), seconds),
)
def test_export_avoid_areas(stub, box, level, perimeter, vertices, at):
    west, south, east, north = box
    request = pb.ExportAvoidAreasRequest(
        bounds=pb.BoundingBox(west=west, south=south, east=east, north=north),
        min_level=level,
        valhalla_max_perimeter_meters=perimeter,
        graphhopper_max_vertices=vertices,
    )
    if at is not None:
        request.time.seconds = at
    response = call(stub.ExportAvoidAreas, request, INVALID, "ExportAvoidAreas")
    if response is not None:
        assert response.valhalla_budget.used <= response.valhalla_budget.limit
        assert response.graphhopper_budget.used <= response.graphhopper_budget.limit
        assert len(json.loads(response.geojson)["features"]) == len(response.areas)


@st.composite
def trip_positions(draw) -> list[pb.MonitorTripRequest]:
    """A stream: one trip id (sometimes another in the middle), positions of any kind."""
    trip_id = draw(st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True), text))
    items = []
    for _ in range(draw(st.integers(0, 8))):
        message = pb.MonitorTripRequest(trip_id=trip_id if draw(st.integers(0, 9)) else draw(text))
        message.location.latitude, message.location.longitude = draw(lat), draw(lng)
        if draw(st.booleans()):
            draw(timestamps(message.time))
        speed = draw(st.one_of(st.none(), st.floats(0, 120), any_float))
        if speed is not None:
            message.speed_kmh = speed
        if draw(st.integers(0, 4)) == 0:
            message.planned_route.CopyFrom(draw(routes()))
        if draw(st.integers(0, 4)) == 0:
            off = draw(st.one_of(st.floats(0, 10_000), any_float))
            message.options.off_route_meters = off
            message.options.dwell_alert.seconds = draw(st.integers(-(10**6), 10**6))
            message.options.crossing_lane = draw(st.integers(0, 5))
        items.append(message)
    return items


@FUZZ
@given(items=trip_positions())
def test_monitor_trip(stub, items):
    """A stream is answered one response per accepted position, or ends with INVALID_ARGUMENT
    naming ``positions[i].field`` of a message that was sent."""
    answered = 0
    try:
        for response in stub.MonitorTrip(iter(items), timeout=60):
            assert response.acknowledged_time.seconds or response.duplicate or not items
            answered += 1
    except grpc.RpcError as exc:
        code = exc.code()
        TALLY[f"MonitorTrip:{code.name}"] += 1
        assert code not in NEVER, f"MonitorTrip answered {code.name}: {exc.details()}"
        assert code == grpc.StatusCode.INVALID_ARGUMENT, f"MonitorTrip answered {code.name}: {exc.details()}"
        violations = violations_of(exc)
        assert violations, "INVALID_ARGUMENT without field violations"
        for violation in violations:
            match = re.fullmatch(r"positions\[(\d+)\]\.(.+)", violation.field)
            assert match, violation.field
            index, rest = int(match.group(1)), match.group(2)
            assert index < len(items) and field_exists(items[index], rest), violation.field
        return
    TALLY["MonitorTrip:OK"] += 1
    assert answered == len(items)


@pytest.fixture(scope="module")
def admin_stub() -> Iterator[admin_grpc.RouteRiskAdminServiceStub]:
    """A server of its own: fuzzed observations must not change the session server's waits."""
    settings_ = Settings(address="127.0.0.1:0")
    running = start_server(settings_)
    load_data(running, settings_)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield admin_grpc.RouteRiskAdminServiceStub(channel)
    running.stop(0)


@st.composite
def observations(draw) -> admin_pb.BorderObservation:
    message = admin_pb.BorderObservation(
        port_number=draw(st.one_of(st.sampled_from(["230404", "250601", "535501"]), text)),
        lane=draw(st.one_of(st.sampled_from(["standard", "fast", ""]), text)),
        operational_status=draw(text),
        lanes_open=draw(st.integers(-(2**31), 2**31 - 1)),
        closed=draw(st.booleans()),
    )
    minutes = draw(st.one_of(st.none(), st.floats(0, 600), any_float))
    if minutes is not None:
        message.wait_minutes = minutes
    draw(timestamps(message.observed_at))
    return message


@FUZZ
@given(items=st.lists(observations(), max_size=6), source=text)
def test_load_border_observations(admin_stub, items, source):
    request = admin_pb.LoadBorderObservationsRequest(observations=items, source=source)
    response = call(admin_stub.LoadBorderObservations, request, INVALID, "LoadBorderObservations")
    if response is not None:
        assert 0 <= response.accepted + response.stale <= len(items)


def test_the_server_still_serves_after_the_fuzzing(channel, stub):
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    request = pb.ScoreRouteRequest()
    request.route.line.points.add(latitude=20.4, longitude=-100.2)
    request.route.line.points.add(latitude=20.9, longitude=-100.2)
    assert 0 <= stub.ScoreRoute(request, timeout=10).score <= 100
    calls = sum(TALLY.values())
    errors = sum(n for key, n in TALLY.items() if key.split(":")[1] in {c.name for c in NEVER})
    by_rpc: dict[str, dict[str, int]] = {}
    for key, n in sorted(TALLY.items()):
        rpc, code = key.split(":")
        by_rpc.setdefault(rpc, {})[code] = n
    record("fuzz-api", inputs_tried=calls, unknown_or_internal=errors, by_rpc=by_rpc, examples_per_rpc=EXAMPLES)
