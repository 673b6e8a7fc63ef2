"""``routerisk monitor --replay TRACK.gpx``: replay a recorded track through MonitorTrip.

Track points are streamed with their recorded times (``--speedup N`` waits the recorded
gaps divided by N; 0, the default, sends as fast as the server takes them). Each alert is
printed as it comes; a summary ends the output. When the stream drops (UNAVAILABLE), or a
position is refused because another stream of the trip kept writing first (ABORTED), the
replay reconnects with the same trip id and resends from the last acknowledged position, so
the server's resume path is what a real tracker would use.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Annotated

import gpxpy
import grpc
import typer
from google.protobuf import json_format

from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    EXIT_UNAVAILABLE,
    AsJson,
    CliError,
    Lane,
    LaneOption,
    Server,
    channel_to,
    parse_duration,
    read_route,
    reports_errors,
)
from service.cli.times import local_at

RECONNECTS = 3
_RESUMED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)  # codes after which the replay resends
ALERT_CLOCK = "%Y-%m-%d %H:%M:%S %Z"


def read_track(path: Path) -> list[tuple[float, float, float, float | None]]:
    """(epoch seconds, lat, lng, speed km/h or None) of every GPX track point, in order."""
    try:
        gpx = gpxpy.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    except Exception as exc:  # gpxpy raises GPXException and bare Exception
        raise CliError(f"{path}: is not valid GPX: {exc}", EXIT_BAD_INPUT) from None
    points = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
    if not points:
        raise CliError(f"{path}: has no track points (trkpt) to replay", EXIT_BAD_INPUT)
    out = []
    for i, p in enumerate(points):
        if p.time is None:
            raise CliError(f"{path}: trkpt[{i}] has no <time>; a replay needs recorded times", EXIT_BAD_INPUT)
        when = p.time if p.time.tzinfo else p.time.replace(tzinfo=UTC)
        speed = p.speed * 3.6 if p.speed is not None else None  # GPX speed is m/s
        out.append((when.timestamp(), p.latitude, p.longitude, speed))
    return out


@reports_errors
def monitor(
    replay: Annotated[Path, typer.Option("--replay", help="GPX track with recorded times to replay")],
    route: Annotated[str | None, typer.Option("--route", help="planned route (GeoJSON or GPX)")] = None,
    trip_id: Annotated[str | None, typer.Option("--trip-id", help="trip id (default: a new one)")] = None,
    speedup: Annotated[float, typer.Option(min=0.0, help="replay N times faster than recorded; 0: at once")] = 0.0,
    off_route_m: Annotated[float | None, typer.Option("--off-route-m", help="off-route threshold, metres")] = None,
    dwell: Annotated[str | None, typer.Option(help="stop length before an alert in a high-risk cell: 15m")] = None,
    approach_km: Annotated[float | None, typer.Option("--approach-km", help="crossing approach distance")] = None,
    lane: LaneOption = Lane.standard,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
) -> None:
    """Replay a recorded track through MonitorTrip; print alerts as they come, then a summary."""
    track = read_track(replay)
    first = pb.MonitorTripRequest()
    if route is not None:
        path = read_route(route)
        points = zip(path.lat.tolist(), path.lng.tolist(), strict=True)
        first.planned_route.line.points.extend(pb.LatLng(latitude=a, longitude=b) for a, b in points)
    options = first.options
    options.crossing_lane = pb.CROSSING_LANE_FAST if lane is Lane.fast else pb.CROSSING_LANE_STANDARD
    if off_route_m is not None:
        options.off_route_meters = off_route_m
    if approach_km is not None:
        options.approach_km = approach_km
    if dwell is not None:
        options.dwell_alert.FromTimedelta(parse_duration(dwell, "--dwell"))
    trip = trip_id or f"replay-{uuid.uuid4().hex[:12]}"
    kinds: Counter[str] = Counter()
    acknowledged = -1.0  # time of the last position the server acknowledged
    processed = duplicates = 0
    with channel_to(server) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        for attempt in range(RECONNECTS + 1):
            pending = [point for point in track if point[0] > acknowledged]
            if not pending:
                break
            answered = False
            try:
                for response in stub.MonitorTrip(_requests(trip, pending, first, speedup)):
                    answered = True
                    acknowledged = response.acknowledged_time.ToNanoseconds() / 1e9
                    processed = response.positions_processed
                    duplicates += response.duplicate
                    for alert in response.alerts:
                        kinds[pb.TripAlertKind.Name(alert.kind).removeprefix("TRIP_ALERT_KIND_").lower()] += 1
                        _print_alert(alert, as_json)
                break
            except grpc.RpcError as exc:
                # a stream that was flowing and dropped is resumed, and so is a position another stream's
                # writes kept beating (ABORTED: nothing recorded); a server never reached is reported
                resumable = answered or exc.code() == grpc.StatusCode.ABORTED
                if exc.code() not in _RESUMED or not resumable or attempt == RECONNECTS:
                    raise
                print(f"stream dropped ({exc.code().name}); resuming trip {trip}", file=sys.stderr)
                time.sleep(min(2.0**attempt, 5.0))
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no alerts"
    line = f"trip {trip}: {len(track)} positions replayed, {processed} processed; {sum(kinds.values())} alerts: "
    print(line + summary, file=sys.stderr if as_json else sys.stdout)
    if processed == 0:
        raise CliError("the server processed no position", EXIT_UNAVAILABLE)


def _requests(
    trip: str, track: list[tuple[float, float, float, float | None]], first: pb.MonitorTripRequest, speedup: float
) -> Iterator[pb.MonitorTripRequest]:
    """The track as requests, paced by ``speedup``; the route and options go on the first one.
    A generator: grpc pulls the next request only as flow control allows (no read-ahead)."""
    previous = None
    for i, (when, lat, lng, speed) in enumerate(track):
        if speedup > 0 and previous is not None:
            time.sleep(max(0.0, (when - previous) / speedup))
        previous = when
        request = pb.MonitorTripRequest()
        if i == 0:
            request.CopyFrom(first)
        request.trip_id = trip
        request.time.FromNanoseconds(round(when * 1e9))
        request.location.latitude, request.location.longitude = lat, lng
        if speed is not None:
            request.speed_kmh = speed
        yield request


def _print_alert(alert: pb.TripAlert, as_json: bool) -> None:
    if as_json:
        body = json_format.MessageToDict(alert)
        sys.stdout.write(json.dumps(body, separators=(",", ":")) + "\n")
    else:
        kind = pb.TripAlertKind.Name(alert.kind).removeprefix("TRIP_ALERT_KIND_").lower()
        severity = pb.RiskLevel.Name(alert.severity).removeprefix("RISK_LEVEL_")
        # local time where the truck was: a dispatcher compares it with the driver's clock
        when = local_at(alert.time, alert.location.latitude, alert.location.longitude, ALERT_CLOCK)
        sys.stdout.write(f"{when}  {kind:<26} {severity:<8} {alert.reason}\n")
    sys.stdout.flush()
