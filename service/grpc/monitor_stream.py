"""MonitorTrip over gRPC: validate each streamed position, feed the trip's state, answer each.

Backpressure: the handler pulls one request at a time from grpc's request iterator and yields
exactly one response per position; grpc (sync and asyncio servers alike) sends a response before
it asks for the next one, so a client that stops reading stalls its own stream (HTTP/2 flow control) and
nothing is buffered here beyond the message in hand.

Bad input: the first bad message ends the stream with ``INVALID_ARGUMENT`` and a
``google.rpc.BadRequest`` naming ``positions[i].<field>`` (``i`` counts the messages of this
stream from 0). The positions before it were processed and acknowledged, so the client fixes
or drops the bad one and reconnects with the same trip id.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator

from geodata.errors import InvalidRequestError, Violation
from routerisk.v1 import route_risk_service_pb2 as pb
from service.grpc import monitor_convert
from service.grpc.auth import TENANT
from service.usecases.trip_monitor import Environment, TripSession, TripStore


class _Trip:
    """One stream's trip: answers its positions one at a time, in order (``index`` counts them)."""

    def __init__(self, environment: Callable[[], Environment], store: TripStore, max_route_points: int) -> None:
        self._environment = environment
        self._store = store
        self._max_route_points = max_route_points
        self._session: TripSession | None = None
        self._trip_id = ""

    def answer(self, index: int, request: pb.MonitorTripRequest) -> pb.MonitorTripResponse:
        """The response to the stream's ``index``-th position; raises :class:`InputError` when it is bad."""
        position = monitor_convert.parse_position(request, index, int(time.time()))
        if self._session is None:
            self._trip_id = request.trip_id
            # trips are kept per tenant: another tenant's trip of the same id is another trip
            self._session = TripSession(self._store, f"{TENANT.get()}/{self._trip_id}" if self._trip_id else None)
        elif request.trip_id and request.trip_id != self._trip_id:
            raise InvalidRequestError(
                Violation(f"positions[{index}].trip_id", "trip_id must stay the same within a stream")
            )
        env = self._environment()
        route = monitor_convert.planned_route(request, index, self._max_route_points)
        thresholds = monitor_convert.thresholds(request, index)
        acknowledgement = self._session.feed(position, env, route, thresholds)
        return monitor_convert.response(self._trip_id, acknowledgement, env.layer)


def monitor(
    requests: Iterable[pb.MonitorTripRequest],
    environment: Callable[[], Environment],
    store: TripStore,
    max_route_points: int,
) -> Iterator[pb.MonitorTripResponse]:
    """One response per request, in order; raises :class:`InputError` at the first bad one."""
    trip = _Trip(environment, store, max_route_points)
    for index, request in enumerate(requests):
        yield trip.answer(index, request)


async def monitor_async(
    requests: AsyncIterable[pb.MonitorTripRequest],
    environment: Callable[[], Environment],
    store: TripStore,
    max_route_points: int,
    run: Callable[[Callable[[], pb.MonitorTripResponse]], Awaitable[pb.MonitorTripResponse]],
) -> AsyncIterator[pb.MonitorTripResponse]:
    """:func:`monitor` on the asyncio server: waiting for the next position holds no thread; each
    position is answered by ``run`` (a thread of a bounded pool: the trip state may be in Redis)."""
    trip = _Trip(environment, store, max_route_points)
    index = 0
    async for request in requests:
        yield await run(functools.partial(trip.answer, index, request))
        index += 1
