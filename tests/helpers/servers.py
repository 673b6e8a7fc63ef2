"""In-process servers on the seed data with settings of a test's choosing."""

from __future__ import annotations

from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server


def serving(**overrides) -> RunningServer:
    """A started server on a free loopback port, data loaded; the caller stops it."""
    settings = Settings(address="127.0.0.1:0", **overrides)
    running = start_server(settings)
    load_data(running, settings)
    return running
