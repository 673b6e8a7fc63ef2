"""MonitorTrip requests of a test track, and a stream dropped mid-trip (shared by the monitor and replica tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from routerisk.v1 import route_risk_service_pb2 as pb
from service.usecases.trip_monitor import Position
from tests.helpers.trip_track import Track


def request(trip_id: str, p: Position, route=None) -> pb.MonitorTripRequest:
    message = pb.MonitorTripRequest(trip_id=trip_id, speed_kmh=p.speed_kmh)
    message.time.FromNanoseconds(round(p.time_s * 1e9))
    message.location.latitude, message.location.longitude = p.lat, p.lng
    if route is not None:
        points = zip(route.lat.tolist(), route.lng.tolist(), strict=True)
        message.planned_route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in points)
    return message


def requests(trip_id: str, track: Track, start: int = 0, stop: int | None = None) -> Iterator[pb.MonitorTripRequest]:
    for i, p in enumerate(track.positions[start:stop]):
        yield request(trip_id, p, track.route if i == 0 else None)


def alerts_of(responses) -> list[pb.TripAlert]:
    return [a for r in responses for a in r.alerts]


def _drop_after(trip_id: str, track: Track, count: int, stub) -> list[pb.MonitorTripResponse]:
    """Send ``count`` positions, read their acknowledgements, then cancel the call (a dropped link)."""
    release = threading.Event()

    def feed() -> Iterator[pb.MonitorTripRequest]:
        yield from requests(trip_id, track, 0, count)
        release.wait(30)  # keep the stream open, as a tracker that just lost its link

    call = stub.MonitorTrip(feed(), timeout=60)
    received = []
    for response in call:
        received.append(response)
        if len(received) == count:
            call.cancel()
            break
    release.set()
    return received
