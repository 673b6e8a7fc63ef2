"""The seed border data, a recorded CBP feed and routes through a port of entry."""

from __future__ import annotations

import http.server
from datetime import UTC, datetime
from pathlib import Path

import seeds
from geodata.border import load_border_data
from routerisk.v1 import route_risk_service_pb2 as pb

CBP = Path(__file__).resolve().parents[1] / "fixtures" / "cbp"
FEED = CBP / "bwtnew-2022-06-29.json"
NOON_CDT = datetime(2022, 6, 29, 17, 0, tzinfo=UTC)  # "At Noon CDT"
# as the server loads it: the seed ports with their commercial hours
BORDER = load_border_data(
    seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON, port_hours_csv=seeds.PORT_HOURS_CSV
)


def via(port_number: str) -> list[tuple[float, float]]:
    """Monterrey → the port's cargo bridge → San Antonio."""
    port = BORDER.port(port_number)
    return [
        (25.67, -100.31),
        (port.lat - 0.08, port.lng),
        (port.lat, port.lng),
        (port.lat + 0.06, port.lng),
        (29.42, -98.49),
    ]


def laredo_waits(stub, at: datetime) -> dict[int, pb.LaneWait]:
    request = pb.ListBorderCrossingsRequest(port_number="230404")
    request.time.FromDatetime(at)
    crossing = stub.ListBorderCrossings(request, timeout=10).crossings[0]
    return {w.lane: w for w in crossing.lane_waits}


class FeedHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` (set on a subclass) as a CBP JSON feed."""

    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args) -> None:
        return None
