"""``routerisk border`` (feed live waits into a server) and ``routerisk crossings`` (read them)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from geodata.border import WaitObservation
from geodata.errors import InputError
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli import coverage_text, load_report
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    AsJson,
    CliError,
    Server,
    Timeout,
    channel_to,
    print_json,
    reports_errors,
)
from service.cli.times import read_time, say
from service.grpc.admin_convert import observation_to_proto
from service.store.border_feed import FeedPoller, read_observations

border_app = typer.Typer(help="Feed live CBP border wait times into a server.", no_args_is_help=True)
crossings_app = typer.Typer(help="Ports of entry and their expected commercial waits.", no_args_is_help=True)


def send(observations: list[WaitObservation], source: str, server: str, timeout: float) -> str:
    """Load observations through the admin RPC; returns a summary: what the server took, then how
    many of the readings are current and how many only historical (:mod:`service.cli.load_report`)."""
    request = admin_pb.LoadBorderObservationsRequest(
        observations=[observation_to_proto(o) for o in observations], source=source
    )
    with channel_to(server) as channel:
        reply = admin_grpc.RouteRiskAdminServiceStub(channel).LoadBorderObservations(request, timeout=timeout)
        stub = pb_grpc.RouteRiskServiceStub(channel)

        def lister(port: str, at_s: int | None) -> pb.ListBorderCrossingsResponse:
            asked = pb.ListBorderCrossingsRequest(port_number=port)
            if at_s is not None:
                asked.time.FromSeconds(at_s)
            return stub.ListBorderCrossings(asked, timeout=timeout)

        lines = load_report.report(observations, lister)
    head = f"{reply.accepted} accepted, {reply.stale} not newer than held; border data {reply.border_data_version}"
    return "\n".join([head, *lines])


@border_app.command("load")
@reports_errors
def load(
    file: Annotated[Path, typer.Argument(help="CBP Border Wait Times JSON or XML")],
    server: Server = DEFAULT_SERVER,
    timeout: Timeout = 30.0,
) -> None:
    """Send the observations of a feed file to a running server (all or nothing)."""
    try:
        observations = read_observations(file.read_bytes())
    except InputError as exc:
        raise CliError(f"{file}: rejected, nothing was loaded: {exc}", EXIT_BAD_INPUT) from None
    except OSError as exc:
        raise CliError(f"{file}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    print(send(observations, file.name, server, timeout))


@border_app.command("poll")
@reports_errors
def poll(
    url: Annotated[str, typer.Option(envvar="ROUTERISK_BORDER_FEED_URL", help="feed URL (JSON or XML)")],
    interval: Annotated[float, typer.Option(min=1.0, envvar="ROUTERISK_BORDER_POLL_SECONDS", help="seconds")] = 300.0,
    once: Annotated[bool, typer.Option(help="poll once and exit (non-zero on failure)")] = False,
    server: Server = DEFAULT_SERVER,
    timeout: Timeout = 30.0,
) -> None:
    """Poll a feed and load it into a server, every --interval seconds (a standalone poller)."""

    def sink(observations: list[WaitObservation], source: str) -> None:
        print(send(observations, source, server, timeout), file=sys.stderr)

    poller = FeedPoller(url, interval, sink, timeout_s=timeout)
    if once:
        try:
            poller.poll_once()
        except InputError as exc:
            raise CliError(f"{url}: rejected, nothing was loaded: {exc}", EXIT_BAD_INPUT) from None
        except OSError as exc:
            raise CliError(f"{url}: {exc}") from None
        return
    poller.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        poller.stop()


@border_app.command("profiles")
@reports_errors
def profiles(
    files: Annotated[list[Path], typer.Argument(help="CBP historical wait-time exports (CSV or JSON)")],
    out: Annotated[Path, typer.Option("--out", help="profiles JSON to write (ROUTERISK_BORDER_PROFILES_PATH)")],
    port: Annotated[str | None, typer.Option(help="port number, for files without a port_number column")] = None,
    label: Annotated[str, typer.Option(help="label stored in the file")] = "CBP historical commercial waits",
) -> None:
    """Build hour-of-week wait profiles from CBP historical data, for the server to use."""
    from geodata.cbp_history import parse_historical, profiles_document

    merged = {}
    for file in files:
        try:
            merged.update(parse_historical(file.read_bytes(), port_number=port))
        except InputError as exc:
            raise CliError(f"{file}: rejected, nothing was written: {exc}", EXIT_BAD_INPUT) from None
        except OSError as exc:
            raise CliError(f"{file}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
    document = profiles_document(merged, label=label)
    scratch = out.with_name(f".{out.name}.tmp")
    scratch.write_text(json.dumps(document, indent=1), encoding="utf-8")
    scratch.replace(out)
    covered = sorted({key[0] for key in merged})
    print(f"profiles for {len(covered)} port(s) written to {out}: {', '.join(covered)}", file=sys.stderr)


@crossings_app.command("list")
@reports_errors
def list_crossings(
    at: Annotated[
        str | None,
        typer.Option(help="expected waits at this ISO 8601 time (default now); no offset: local at --port"),
    ] = None,
    port: Annotated[str | None, typer.Option(help="only this CBP port number")] = None,
    server: Server = DEFAULT_SERVER,
    as_json: AsJson = False,
    timeout: Timeout = 30.0,
) -> None:
    """Every commercial port of entry with its standard and FAST waits, status, source and age."""
    request = pb.ListBorderCrossingsRequest(port_number=port or "")
    with channel_to(server) as channel:
        stub = pb_grpc.RouteRiskServiceStub(channel)
        if at is not None:
            read = read_time(at, "--at", _port_zone(stub, port, timeout), _port_place(port))
            say([read.note])
            request.time.FromDatetime(read.utc)
        reply = stub.ListBorderCrossings(request, timeout=timeout)
    if as_json:
        print_json(reply)
        return
    table = Table(title=f"Commercial ports of entry ({reply.border_data_version})")
    for column in ("port", "crossing", "hours", "lane", "wait", "status", "open", "source", "reading"):
        table.add_column(column)
    for crossing in reply.crossings:
        for wait in crossing.lane_waits:
            live = wait.source == pb.WAIT_SOURCE_LIVE
            table.add_row(
                f"{crossing.port_name} ({crossing.port_number})",
                crossing.crossing_name,
                _hours_cell(crossing),
                pb.CrossingLane.Name(wait.lane).removeprefix("CROSSING_LANE_").lower(),
                coverage_text.wait_text(wait),
                wait.operational_status or "-",
                str(wait.lanes_open) if live else "-",
                pb.WaitSource.Name(wait.source).removeprefix("WAIT_SOURCE_").lower(),
                reading_text(wait),
            )
    Console().print(table)


def _port_zone(stub: pb_grpc.RouteRiskServiceStub, port: str | None, timeout: float) -> ZoneInfo | None:
    """The zone of the port asked for (the server's, the one its profiles are read in); None for
    all ports, which span three zones: a time without an offset is then refused, not guessed."""
    if not port:
        return None
    reply = stub.ListBorderCrossings(pb.ListBorderCrossingsRequest(port_number=port), timeout=timeout)
    return ZoneInfo(reply.crossings[0].time_zone) if reply.crossings and reply.crossings[0].time_zone else None


def _port_place(port: str | None) -> str:
    return f"port {port}" if port else "the ports span three zones: give --port"


def reading_text(wait: pb.LaneWait) -> str:
    """The age of the lane's latest reading at the time asked, and whether it is used: a reading
    too old (or taken after the time asked) still shows, so a stale feed is seen, not hidden."""
    if not wait.HasField("age"):
        return "none"
    seconds = wait.age.ToTimedelta().total_seconds()
    text = age_text(abs(seconds))
    if wait.source == pb.WAIT_SOURCE_LIVE:
        return f"{text} old"
    return f"{text} old, not used" if seconds >= 0 else f"{text} after --at, not used"


def age_text(seconds: float) -> str:
    """A length of time as a person reads an age: minutes, hours, then days."""
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _hours_cell(crossing: pb.BorderCrossing) -> str:
    """The commercial hours, and ``(unknown)`` when the server treats the port as open 24 h for
    want of any."""
    unknown = crossing.hours_source.startswith("unknown")
    return f"{crossing.commercial_hours}{' (unknown)' if unknown else ''}" or "-"
