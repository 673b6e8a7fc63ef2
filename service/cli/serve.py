"""``routerisk serve`` (start the gRPC server) and ``routerisk new-key`` (make an API key).

Both import the server's modules only when they run, so other commands start without them.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.common import EXIT_BAD_INPUT


def serve(
    address: Annotated[str | None, typer.Option(help="host:port to listen on [env ROUTERISK_ADDRESS]")] = None,
    layer_dir: Annotated[
        Path | None,
        typer.Option("--layer-dir", help="layer store whose active layer is served [env ROUTERISK_LAYER_DIR]"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="server processes sharing the port [env ROUTERISK_WORKERS]")
    ] = None,
) -> None:
    """Start the gRPC server (seed layers and in-process cache unless configured)."""
    from service.config import Settings
    from service.grpc.server import serve_workers

    given = (("address", address), ("layer_dir", layer_dir), ("workers", workers))
    overrides: dict[str, Any] = {k: v for k, v in given if v is not None}
    _exit_drained(serve_workers(Settings(**overrides)))


def _exit_drained(code: int) -> None:
    """End the process once the server has drained, without interpreter finalization.

    Under load, finalizing the interpreter while gRPC core's and the pools' threads wind down has
    aborted the process after a clean drain (SIGABRT, once ``malloc(): unaligned tcache chunk
    detected``, on both the thread and the asyncio server), turning exit 0 into a crash that
    Kubernetes counts as a failure. Everything that matters is done by then (calls answered, ports
    closed, "stopped" logged); spans are sent and the streams flushed here, then the process ends.
    """
    from service.grpc.tracing import shutdown_tracing

    shutdown_tracing()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def new_key(
    tenant: Annotated[str, typer.Option(help="tenant the key belongs to")],
    permissions: Annotated[str, typer.Option(help="comma-separated: score, read, admin")] = "score,read",
) -> None:
    """Make an API key: the key on stdout (give it to the client), the entry for
    ROUTERISK_API_KEYS(_FILE) on stderr (only its hash is stored)."""
    import json
    import sys

    from service.grpc.auth import PERMISSIONS, hash_key
    from service.grpc.auth import new_key as make

    chosen = sorted({p.strip() for p in permissions.split(",") if p.strip()})
    if not chosen or not set(chosen) <= set(PERMISSIONS):
        print(f"error: permissions must be among {', '.join(PERMISSIONS)}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT)
    key = make()
    print(key)
    print(json.dumps({"sha256": hash_key(key), "tenant": tenant, "permissions": chosen}), file=sys.stderr)
