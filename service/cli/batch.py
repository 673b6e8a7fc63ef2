"""``routerisk score-batch``: score a CSV or JSONL file of loads through BatchScoreRoutes.

The file is read as a stream and sent in batches. The output has one row per input row, in
input order: a row that cannot be read here, or that the server rejects (its own
``google.rpc.Status`` in the batch), keeps its id and carries the reason in ``error``, is
reported on stderr as ``file:row: field: message``, and never costs the good rows. Exit 0 when
every row scored, 2 when some were bad (or the file itself is unusable), 3 when the server is
unreachable (the rows of the batches already answered stay written).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any
from zoneinfo import ZoneInfo

import grpc
import typer
from google.rpc import error_details_pb2, status_pb2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from geodata import route as routes
from geodata.bounded import MAX_DEPTH, field_limit, load_json
from geodata.errors import InputError, InvalidRouteError, Violation
from geodata.route import RoutePath
from routerisk.v1 import route_risk_service_pb2 as pb
from routerisk.v1 import route_risk_service_pb2_grpc as pb_grpc
from service.cli.common import (
    DEFAULT_SERVER,
    EXIT_BAD_INPUT,
    CliError,
    Departure,
    Lane,
    LaneOption,
    Server,
    SpeedKmh,
    channel_to,
    reports_errors,
    request_options,
    rpc_error,
    set_line,
    spreadsheet_safe,
)
from service.cli.times import origin_zone, read_time

UTC_ZONE = ZoneInfo("UTC")

OUTPUT_COLUMNS = (
    "id",
    "score",
    "level",
    "coverage",
    "distance_km",
    "duration_h",
    "crossing",
    "wait_minutes",
    "wait_source",
    "error",
)
# the most bad rows listed on stderr; the rest are counted (all of them are in the output)
MAX_LISTED_ERRORS = 200
DEFAULT_BATCH_SIZE = 200
# the server's default ROUTERISK_MAX_BATCH_SIZE
MAX_BATCH_SIZE = 1000
# the longest CSV cell or JSONL line read: room for the longest GeoJSON route the server takes by
# default; a longer one is a bad row, and is never held in memory whole
MAX_CELL_CHARS = routes.geojson_max_chars(routes.DEFAULT_MAX_POINTS)
MAX_LINE_CHARS = MAX_CELL_CHARS + (64 << 10)
# the most brackets and commas a JSONL row may hold (its route's included)
MAX_ROW_VALUES = routes.GEOJSON_EXTRA_VALUES + routes.GEOJSON_VALUES_PER_POINT * routes.DEFAULT_MAX_POINTS
# the text columns of the output, neutralised against formula injection in CSV
TEXT_COLUMNS = ("id", "level", "crossing", "wait_source", "error")


class FileFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def format_of(path: str | None, given: FileFormat | None) -> FileFormat:
    """The format asked for, else the one the file name says (``.jsonl``/``.ndjson``), else CSV."""
    if given is not None:
        return given
    suffix = Path(path).suffix.lower() if path and path != "-" else ""
    return FileFormat.jsonl if suffix in (".jsonl", ".ndjson", ".json") else FileFormat.csv


@dataclass(frozen=True)
class Columns:
    """Where a row keeps its route, id and departure, and how to read the route."""

    route: str = "polyline"
    id: str = "id"
    departure: str | None = None
    precision: int = 5
    # --departure: for rows without one of their own (each read at its own load's origin)
    default_departure: str | None = None


@dataclass
class Row:
    """One input row: its line number, its id, and a request or the reason there is none;
    ``zone`` names the zone a departure without an offset was read in."""

    number: int
    id: str
    request: pb.ScoreRouteRequest | None = None
    error: str = ""
    zone: str = ""


def read_rows(
    stream: IO[str], fmt: FileFormat, columns: Columns, template: pb.ScoreRouteRequest, name: str
) -> Iterator[Row]:
    """Rows of a CSV (with a header) or JSONL stream, one at a time, each turned into a request.

    A file without the route (or the asked departure) column is unusable as a whole:
    :class:`CliError`. A bad row is a :class:`Row` with ``error`` set.
    """
    if fmt is FileFormat.csv:
        yield from _csv_rows(stream, columns, template, name)
    else:
        yield from _jsonl_rows(stream, columns, template)


def _csv_rows(stream: IO[str], columns: Columns, template: pb.ScoreRouteRequest, name: str) -> Iterator[Row]:
    with field_limit(MAX_CELL_CHARS):  # a longer cell is a bad row ("field larger than field limit")
        yield from _csv_rows_within(stream, columns, template, name)


def _csv_rows_within(stream: IO[str], columns: Columns, template: pb.ScoreRouteRequest, name: str) -> Iterator[Row]:
    reader = csv.reader(stream)
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise CliError(f"{name}:1: not a CSV header: {exc}", EXIT_BAD_INPUT) from None
    wanted = [columns.route] + ([columns.departure] if columns.departure else [])
    missing = [column for column in wanted if column not in header]
    if missing:
        raise CliError(
            f"{name}: no column {', '.join(repr(m) for m in missing)} (columns: {', '.join(header)})", EXIT_BAD_INPUT
        )
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(start, "", error=f"row: not CSV: {exc}")
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            values = dict(zip(header, cells, strict=False))
            yield Row(number, _id_of(values, columns, number), error=f"row: has {len(cells)} cells, not {len(header)}")
            continue
        yield _row(number, dict(zip(header, cells, strict=True)), columns, template)


def _lines(stream: IO[str]) -> Iterator[tuple[str, bool]]:
    """(line, whole) for each line; a line over :data:`MAX_LINE_CHARS` is skipped in pieces, never
    held whole, and comes as ``("", False)``."""
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield line, True
            continue
        while line and not line.endswith("\n"):
            line = stream.readline(MAX_LINE_CHARS + 1)
        yield "", False


def _jsonl_rows(stream: IO[str], columns: Columns, template: pb.ScoreRouteRequest) -> Iterator[Row]:
    for number, (line, whole) in enumerate(_lines(stream), start=1):
        if not whole:
            yield Row(number, "", error=f"row: longer than {MAX_LINE_CHARS} characters")
            continue
        if not line.strip():
            continue
        try:
            values = load_json(line, "row", max_chars=MAX_LINE_CHARS, max_items=MAX_ROW_VALUES, max_depth=MAX_DEPTH)
        except InputError as exc:
            yield Row(number, "", error=str(exc).replace("row: is not valid JSON", "row: not JSON", 1))
            continue
        if not isinstance(values, dict):
            yield Row(number, "", error=f"row: expected a JSON object, got {type(values).__name__}")
            continue
        yield _row(number, values, columns, template)


def _id_of(values: dict[str, Any], columns: Columns, number: int) -> str:
    """The row's id as text; the line number when the file has no id column."""
    if columns.id not in values:
        return str(number)
    value = values[columns.id]
    return "" if value is None else str(value)


def _row(number: int, values: dict[str, Any], columns: Columns, template: pb.ScoreRouteRequest) -> Row:
    row = Row(number, _id_of(values, columns, number))
    request = pb.ScoreRouteRequest()
    request.CopyFrom(template)
    request.reference = row.id
    problems = []
    route = values.get(columns.route)
    path = None
    try:
        path = _set_route(request, route, columns)
    except InputError as exc:
        problems.append(str(exc))
    problem = _set_departure(row, request, values, columns, path)
    if problem:
        problems.append(problem)
    if problems:
        row.error = "; ".join(problems)
    else:
        row.request = request
    return row


def _set_departure(
    row: Row, request: pb.ScoreRouteRequest, values: dict[str, Any], columns: Columns, path: RoutePath | None
) -> str:
    """The row's departure (its cell, else --departure) into the request; one without an offset is
    local time at the load's origin. Returns the problem, if any."""
    cell = values.get(columns.departure) if columns.departure else None
    text = "" if cell is None else str(cell).strip()
    field = columns.departure if text else "--departure"
    text = text or (columns.default_departure or "")
    if not text:
        return ""
    if len(text) > 40:
        return f"{field}: {text[:40]!r}... is not an ISO 8601 time"
    zone = origin_zone(path)
    try:
        read = read_time(text, field or "--departure", zone, "the load's origin")
    except CliError as exc:
        return str(exc)
    request.departure_time.FromDatetime(read.utc)
    row.zone = zone.key if read.note and zone else ""
    return ""


def _set_route(request: pb.ScoreRouteRequest, value: Any, columns: Columns) -> RoutePath:
    """Validate the route here (a bad one never reaches the server) and put it in the request.

    A text value is an encoded polyline (sent as such, so the score is the one ``routerisk score
    --polyline`` gives), or GeoJSON when it starts with ``{``; JSONL may also hold a GeoJSON object.
    """
    field = columns.route
    if isinstance(value, dict):
        path = routes.from_geojson(json.dumps(value), field=field)
        set_line(request, path)
        return path
    if not isinstance(value, str):
        got = "nothing" if value is None else type(value).__name__
        raise InvalidRouteError(Violation(field, f"expected an encoded polyline or GeoJSON, got {got}"))
    text = value.strip()
    if not text:
        raise InvalidRouteError(Violation(field, "is empty"))
    if text.startswith("{"):
        path = routes.from_geojson(text, field=field)
        set_line(request, path)
        return path
    path = routes.from_polyline(text, precision=columns.precision, field=field)
    if columns.precision == 6:
        request.route.encoded_polyline6 = text
    else:
        request.route.encoded_polyline = text
    return path


def status_text(status: status_pb2.Status, columns: Columns) -> str:
    """A per-item error of the batch as ``field: message``, the field named as in the file."""
    parts: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            parts.extend(f"{_column_of(v.field, columns)}: {v.description}" for v in bad.field_violations)
    return "; ".join(parts) or status.message or f"rejected (code {status.code})"


def _column_of(field: str, columns: Columns) -> str:
    if field == "route" or field.startswith("route."):
        return columns.route
    if field == "departure_time":
        return columns.departure or "--departure"
    return field


class _Writer:
    """CSV or JSONL output, one row at a time; numbers rounded for reading in CSV, exact in JSONL."""

    def __init__(self, stream: IO[str], fmt: FileFormat) -> None:
        self._stream = stream
        self._fmt = fmt
        if fmt is FileFormat.csv:
            # rows end in \n; a cell holding a carriage return is quoted all the same (Python's
            # writer quotes only the characters of its line terminator: CRLF, then trimmed)
            self._line = io.StringIO()
            self._csv = csv.writer(self._line, lineterminator="\r\n")
            self._write_csv(OUTPUT_COLUMNS)

    def write(self, row: Row, response: pb.ScoreRouteResponse | None) -> None:
        """One output row; in CSV, text cells that a spreadsheet would run as a formula (an id such
        as ``=HYPERLINK(...)``) are neutralised with a leading ``'`` (JSONL keeps them exact)."""
        record: dict[str, Any] = dict.fromkeys(OUTPUT_COLUMNS)
        record["id"] = row.id
        record["error"] = row.error or None
        if response is not None:
            crossing = response.crossings[0] if response.crossings else None
            # a route mostly outside the data has no score to show: blank, never 0
            record.update(
                score=None if response.level == pb.RISK_LEVEL_NOT_COVERED else response.score,
                level=pb.RiskLevel.Name(response.level).removeprefix("RISK_LEVEL_").lower(),
                coverage=response.covered_fraction,
                distance_km=response.distance_km,
                duration_h=response.duration.ToTimedelta().total_seconds() / 3600,
                crossing=crossing.port_name if crossing else None,
                wait_minutes=crossing.expected_wait_minutes if crossing else None,
                wait_source=pb.WaitSource.Name(crossing.wait_source).removeprefix("WAIT_SOURCE_").lower()
                if crossing
                else None,
            )
        if self._fmt is FileFormat.jsonl:
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        digits = {"score": 2, "coverage": 2, "distance_km": 1, "duration_h": 2, "wait_minutes": 0}
        self._write_csv(
            ""
            if record[c] is None
            else f"{record[c]:.{digits[c]}f}"
            if c in digits
            else spreadsheet_safe(str(record[c]))
            if c in TEXT_COLUMNS
            else record[c]
            for c in OUTPUT_COLUMNS
        )

    def _write_csv(self, cells: Iterable[Any]) -> None:
        self._csv.writerow(cells)
        self._stream.write(self._line.getvalue().removesuffix("\r\n") + "\n")
        self._line.seek(0)
        self._line.truncate()

    def flush(self) -> None:
        self._stream.flush()


@dataclass
class _Tally:
    rows: int = 0
    bad: int = 0
    partly_covered: int = 0  # scored rows not fully inside the layer's data coverage


class _Batcher:
    """Collects rows in input order and scores their requests one BatchScoreRoutes at a time."""

    def __init__(self, stub: pb_grpc.RouteRiskServiceStub, writer: _Writer, name: str, columns: Columns) -> None:
        self._stub, self._writer, self._name, self._columns = stub, writer, name, columns
        self.pending: list[Row] = []
        self.tally = _Tally()

    def send(self, timeout: float) -> int:
        """Score the pending rows, write them all; returns how many rows were written."""
        requests = [row.request for row in self.pending if row.request is not None]
        results: Iterator[pb.ScoreRouteResult] = iter(())
        if requests:
            reply = self._stub.BatchScoreRoutes(pb.BatchScoreRoutesRequest(requests=requests), timeout=timeout)
            if len(reply.results) != len(requests):
                raise CliError(f"the server answered {len(reply.results)} results for {len(requests)} requests")
            results = iter(reply.results)
        for row in self.pending:
            response: pb.ScoreRouteResponse | None = None
            if row.request is not None:
                result = next(results)
                if result.HasField("error"):
                    row.error = status_text(result.error, self._columns)
                else:
                    response = result.response
                    self.tally.partly_covered += bool(response.uncovered_stretches)
            if row.error:
                self._report(row)
            self._writer.write(row, response)
        self._writer.flush()
        written = len(self.pending)
        self.tally.rows += written
        self.pending = []
        return written

    def _report(self, row: Row) -> None:
        self.tally.bad += 1
        if self.tally.bad <= MAX_LISTED_ERRORS:
            print(f"{self._name}:{row.number}: {row.error}", file=sys.stderr)


def _count_data_lines(path: Path, fmt: FileFormat) -> int | None:
    """Rows to expect, for the progress bar (lines, less the CSV header); None when unknown."""
    lines, filled = 0, False
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):  # in pieces: one huge line is never held whole
                parts = chunk.split(b"\n")
                for part in parts[:-1]:
                    lines += filled or bool(part.strip())
                    filled = False
                filled = filled or bool(parts[-1].strip())
    except OSError:
        return None
    lines += filled
    return max(lines - (1 if fmt is FileFormat.csv else 0), 0)


def _progress(quiet: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    )


@reports_errors
def score_batch(
    file: Annotated[str, typer.Argument(help="CSV (with a header) or JSONL of loads, or - for stdin")],
    route_column: Annotated[str, typer.Option(help="column holding the encoded polyline (or GeoJSON)")] = "polyline",
    id_column: Annotated[str, typer.Option(help="column echoed as the load id (the request reference)")] = "id",
    departure_column: Annotated[
        str | None, typer.Option(help="column with each load's ISO 8601 departure (empty cell: --departure)")
    ] = None,
    precision: Annotated[int, typer.Option(min=5, max=6, help="polyline precision: 5 (Google) or 6 (OSRM)")] = 5,
    input_format: Annotated[
        FileFormat | None, typer.Option("--input-format", help="default: from the file name, else csv")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="file to write (default stdout)")] = None,
    output_format: Annotated[
        FileFormat | None, typer.Option("--format", help="output format; default: from --out, else csv")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH_SIZE, help="routes per BatchScoreRoutes call (≤ the server's limit)")
    ] = DEFAULT_BATCH_SIZE,
    departure: Departure = None,
    speed_kmh: SpeedKmh = None,
    lane: LaneOption = Lane.standard,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    server: Server = DEFAULT_SERVER,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each batch")] = 120.0,
) -> None:
    """Score a file of loads: one output row per input row (score, level, crossing, wait), bad rows
    marked in the error column; exit 2 when any row was bad."""
    in_fmt = format_of(file, input_format)
    out_fmt = format_of(str(out) if out else None, output_format)
    if departure is not None:
        read_time(departure, "--departure", UTC_ZONE, "the load's origin")  # a typo fails before any row
    columns = Columns(
        route=route_column, id=id_column, departure=departure_column, precision=precision, default_departure=departure
    )
    template = request_options(speed_kmh, lane)
    name = "stdin" if file == "-" else file
    with ExitStack() as stack:
        if file == "-":
            stream, total = sys.stdin, None
        else:
            try:
                stream = stack.enter_context(open(file, encoding="utf-8-sig", newline=""))
            except OSError as exc:
                raise CliError(f"{file}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
            total = _count_data_lines(Path(file), in_fmt)
        rows = read_rows(stream, in_fmt, columns, template, name)
        try:
            first = next(rows, None)  # an unusable file (no route column) fails before any output
        except UnicodeDecodeError as exc:
            raise CliError(f"{name}: is not UTF-8 text: {exc}", EXIT_BAD_INPUT) from None
        rows = itertools.chain([first] if first is not None else [], rows)
        try:
            sink = stack.enter_context(open(out, "w", encoding="utf-8", newline="")) if out else sys.stdout
        except OSError as exc:
            raise CliError(f"{out}: {exc.strerror or exc}", EXIT_BAD_INPUT) from None
        writer = _Writer(sink, out_fmt)
        channel = stack.enter_context(channel_to(server))
        batcher = _Batcher(pb_grpc.RouteRiskServiceStub(channel), writer, name, columns)
        progress = stack.enter_context(_progress(quiet))
        task = progress.add_task("scoring", total=total)
        zones: set[str] = set()
        try:
            queued = 0
            for row in rows:
                zones.update([row.zone] if row.zone else [])
                batcher.pending.append(row)
                queued += row.request is not None
                if queued >= batch_size or len(batcher.pending) >= batch_size:
                    progress.advance(task, batcher.send(timeout))
                    queued = 0
            progress.advance(task, batcher.send(timeout))
        except grpc.RpcError as exc:
            failed = rpc_error(exc, server)
            raise CliError(f"{failed} ({batcher.tally.rows} row(s) written before this)", failed.code) from None
        except UnicodeDecodeError as exc:
            raise CliError(f"{name}: is not UTF-8 text: {exc}", EXIT_BAD_INPUT) from None
    if zones:
        where = ", ".join(sorted(zones))
        print(f"departures without a UTC offset taken as local time at each load's origin ({where})", file=sys.stderr)
    tally = batcher.tally
    if tally.bad > MAX_LISTED_ERRORS:
        print(f"... and {tally.bad - MAX_LISTED_ERRORS} more bad row(s)", file=sys.stderr)
    print(f"{tally.rows - tally.bad} of {tally.rows} row(s) scored; {tally.bad} bad", file=sys.stderr)
    if tally.partly_covered:
        print(
            f"warning: {tally.partly_covered} route(s) lie partly or mostly outside the layer's data coverage "
            "(the coverage column; level not_covered has no score)",
            file=sys.stderr,
        )
    if tally.bad:
        raise typer.Exit(EXIT_BAD_INPUT)
