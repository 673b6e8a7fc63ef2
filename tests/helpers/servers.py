"""In-process servers on the seed data with settings of a test's choosing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.config import Settings
from service.grpc.server import RunningServer, load_data, start_server


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ROUTERISK_* setting, plus ``extra``; the HTTP port off unless
    ``extra`` sets it (its default, 8080, is one port for every server process on the machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTERISK_")}
    env["ROUTERISK_HTTP_ADDRESS"] = ""
    env.update(extra)
    return env


def serving(**overrides) -> RunningServer:
    """A started server on a free loopback port, data loaded; the caller stops it."""
    settings = Settings(address="127.0.0.1:0", **overrides)
    running = start_server(settings)
    load_data(running, settings)
    return running


@contextmanager
def with_stubs(
    **overrides,
) -> Iterator[tuple[RunningServer, pb_grpc.RouteRiskServiceStub, admin_grpc.RouteRiskAdminServiceStub]]:
    """:func:`serving`, with a channel's scoring and admin stubs; stopped on leaving."""
    running = serving(**overrides)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield running, pb_grpc.RouteRiskServiceStub(channel), admin_grpc.RouteRiskAdminServiceStub(channel)
    finally:
        running.stop(0)
