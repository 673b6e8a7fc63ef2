"""MonitorTrip over gRPC: validate each streamed position, feed the trip's state, answer each.

Backpressure: the handler pulls one request at a time from grpc's request iterator and yields
exactly one response per position; grpc's sync server sends a response before it asks for the
next one, so a client that stops reading stalls its own stream (HTTP/2 flow control) and
nothing is buffered here beyond the message in hand.

Bad input: the first bad message ends the stream with ``INVALID_ARGUMENT`` and a
``google.rpc.BadRequest`` naming ``positions[i].<field>`` (``i`` counts the messages of this
stream from 0). The positions before it were processed and acknowledged, so the client fixes
or drops the bad one and reconnects with the same trip id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from geodata.errors import InvalidRequestError, Violation
from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc import monitor_convert
from service.grpc.auth import TENANT
from service.usecases.trip_monitor import Environment, TripSession, TripStore


def monitor(
    requests: Iterable[pb.MonitorTripRequest],
    environment: Callable[[], Environment],
    store: TripStore,
    max_route_points: int,
) -> Iterator[pb.MonitorTripResponse]:
    """One response per request, in order; raises :class:`InputError` at the first bad one."""
    session: TripSession | None = None
    trip_id = ""
    for index, request in enumerate(requests):
        position = monitor_convert.parse_position(request, index, int(time.time()))
        if session is None:
            trip_id = request.trip_id
            # trips are kept per tenant: another tenant's trip of the same id is another trip
            session = TripSession(store, f"{TENANT.get()}/{trip_id}" if trip_id else None)
        elif request.trip_id and request.trip_id != trip_id:
            raise InvalidRequestError(
                Violation(f"positions[{index}].trip_id", "trip_id must stay the same within a stream")
            )
        env = environment()
        route = monitor_convert.planned_route(request, index, max_route_points)
        thresholds = monitor_convert.thresholds(request, index)
        acknowledgement = session.feed(position, env, route, thresholds)
        yield monitor_convert.response(trip_id, acknowledgement, env.layer)
