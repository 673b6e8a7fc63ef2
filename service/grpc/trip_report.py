"""ReportTripPositions: MonitorTrip without a stream, for clients that cannot hold one (HTTP/1.1,
browsers, curl). A batch of one trip's positions goes through the very code a MonitorTrip stream
runs (:func:`service.grpc.monitor_stream.monitor`, the same trip store, the same per-tenant trip
keys), so a trip may move between the two and their alerts are the same.

The batch is validated whole before any position is fed: one bad position refuses the batch with
``INVALID_ARGUMENT`` naming ``positions[i].<field>`` and nothing processed, so the client fixes it
and sends the batch again. A failure once positions were fed (a write aborted after losing to
other writers, the deadline) returns the responses of the positions processed and the failure
as ``error``: the client resends the positions after the last acknowledged one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from geodata.errors import InputError, InvalidRequestError, Violation
from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc import monitor_convert, monitor_stream
from service.grpc.errors import DOMAIN_ERRORS, status_for
from service.grpc.limits import check_deadline
from service.usecases.trip_monitor import Environment, TripStore


def report(
    request: pb.ReportTripPositionsRequest,
    environment: Callable[[], Environment],
    store: TripStore,
    max_route_points: int,
    max_positions: int,
) -> pb.ReportTripPositionsResponse:
    """One response per position, in order; raises :class:`InputError` for a bad batch."""
    positions = request.positions
    validate(positions, max_route_points, max_positions)
    answer = pb.ReportTripPositionsResponse()
    try:
        for response in monitor_stream.monitor(_checked(positions), environment, store, max_route_points):
            answer.responses.append(response)
    except DOMAIN_ERRORS as exc:
        if not answer.responses or isinstance(exc, InputError):
            raise
        answer.error.CopyFrom(status_for(exc))
    return answer


def validate(positions: Iterable[pb.MonitorTripRequest], max_route_points: int, max_positions: int) -> None:
    """Every field of every position, what the stream would check message by message, up front."""
    items = list(positions)
    if not items:
        raise InvalidRequestError(Violation("positions", "a batch needs at least one position"))
    if len(items) > max_positions:
        raise InvalidRequestError(
            Violation("positions", f"{len(items)} positions exceed the batch limit of {max_positions}")
        )
    now_s = int(time.time())
    trip_id = items[0].trip_id
    bad: list[Violation] = []
    for index, item in enumerate(items):
        if item.trip_id and item.trip_id != trip_id:
            bad.append(Violation(f"positions[{index}].trip_id", "trip_id must stay the same within a batch"))
        bad.extend(_violations(item, index, now_s, max_route_points))
    if bad:
        raise InvalidRequestError(bad)


def _violations(item: pb.MonitorTripRequest, index: int, now_s: int, max_route_points: int) -> list[Violation]:
    """What the stream's parsers refuse of one position (its route is parsed again when fed:
    the price of refusing a batch before any of it changed the trip)."""
    found: list[Violation] = []
    checks: tuple[Callable[[], object], ...] = (
        partial(monitor_convert.parse_position, item, index, now_s),
        partial(monitor_convert.planned_route, item, index, max_route_points),
        partial(monitor_convert.thresholds, item, index),
    )
    for check in checks:
        try:
            check()
        except InputError as exc:
            found.extend(exc.violations)
    return found


def _checked(positions: Iterable[pb.MonitorTripRequest]) -> Iterator[pb.MonitorTripRequest]:
    """The positions, the call's deadline checked before each (a long batch stops at it)."""
    for position in positions:
        check_deadline()
        yield position
