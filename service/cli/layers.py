"""``routerisk layers``: build, list, activate, export and backtest incident layers.

The last line of ``build``'s stdout is the new version id, so scripts can do
``VERSION=$(routerisk layers build ... | tail -n 1)``. Errors: one line on stderr,
exit 2 for bad input (a bad file is rejected whole, every bad row listed), 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from geodata.errors import InputError
from geodata.layer_store import LayerNotFoundError, LayerStore, export_csv, export_hourly_csv
from geodata.layers import BuildParams, build_layer
from service.cli.common import EXIT_BAD_INPUT, CliError, reports_errors

MAX_LISTED_PROBLEMS = 200

layers_app = typer.Typer(help="Build and manage incident risk layers.", no_args_is_help=True)

LayerDir = Annotated[Path, typer.Option("--layer-dir", envvar="ROUTERISK_LAYER_DIR", help="the layer store directory")]
ColumnMap = Annotated[
    str | None, typer.Option("--column-map", help="canonical=file column pairs, e.g. occurred_at=fecha,latitude=lat")
]
Timezone = Annotated[str | None, typer.Option("--timezone", help="IANA zone of naive local times in the input")]
Municipalities = Annotated[
    Path | None, typer.Option("--municipalities", help="INEGI municipal polygons, for SESNSP municipal CSVs")
]
Roads = Annotated[Path | None, typer.Option("--roads", help="road lines: spread SESNSP counts onto road cells")]
CoverageFile = Annotated[
    Path | None,
    typer.Option(
        "--coverage",
        help="polygon(s) of the area the data covers (GeoJSON, GeoPackage...); default: the municipalities "
        "of SESNSP data, else ~10-25 km around the incidents",
    ),
]


def _report_input_error(exc: InputError) -> typer.Exit:
    problems = exc.violations
    print(f"error: rejected, {len(problems)} problem(s); nothing was written", file=sys.stderr)
    for violation in problems[:MAX_LISTED_PROBLEMS]:
        print(f"  {violation.field}: {violation.description}", file=sys.stderr)
    if len(problems) > MAX_LISTED_PROBLEMS:
        print(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more", file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


def _parse_column_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise CliError(f"--column-map {text!r}: expected canonical=column pairs separated by commas", EXIT_BAD_INPUT)
    return {key.strip(): value.strip() for key, value in pairs}


def _read(inputs: list[Path], column_map: str | None, timezone: str | None, municipalities, roads, resolution: int):
    from geodata.ingest import read_incidents

    try:
        return read_incidents(
            inputs,
            column_map=_parse_column_map(column_map),
            timezone=timezone,
            municipalities=municipalities,
            roads=roads,
            resolution=resolution,
        )
    except InputError as exc:
        raise _report_input_error(exc) from None


def _road_cells(roads: Path | None, resolution: int):
    if roads is None:
        return None
    from geodata.ingest import road_cells

    try:
        return road_cells(roads, resolution)
    except InputError as exc:
        raise _report_input_error(exc) from None


@layers_app.command("build")
@reports_errors
def build(
    inputs: Annotated[list[Path], typer.Argument(help="incident files: CSV, GeoJSON, GeoPackage, GeoParquet, SESNSP")],
    out: Annotated[Path, typer.Option("--out", envvar="ROUTERISK_LAYER_DIR", help="the layer store to write into")],
    column_map: ColumnMap = None,
    timezone: Timezone = None,
    municipalities: Municipalities = None,
    roads: Roads = None,
    resolution: Annotated[int, typer.Option(min=0, max=15, help="H3 resolution")] = 8,
    half_life_days: Annotated[
        float, typer.Option(min=1.0, help="half-life of the hour profiles (and of every rate with --fixed)")
    ] = 365.0,
    horizon_days: Annotated[float, typer.Option(min=1.0, help="forecast horizon the model is fitted for")] = 90.0,
    fixed: Annotated[bool, typer.Option("--fixed", help="the fixed recipe instead of the fitted model")] = False,
    name: Annotated[str, typer.Option(help="version prefix")] = "layer",
    synthetic: Annotated[bool, typer.Option(help="mark the layer as synthetic data")] = False,
    activate: Annotated[bool, typer.Option(help="activate the new layer")] = False,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="add the inputs to a stored layer's incidents (--base, or the active one)"),
    ] = False,
    base: Annotated[str | None, typer.Option("--base", help="the layer --incremental starts from")] = None,
    coverage_file: CoverageFile = None,
) -> None:
    """Build a layer from incident files (fitting the model on them); prints the new version id last."""
    from geodata.adaptive import build_fitted_layer
    from geodata.incremental import save_incidents
    from geodata.layers import _cells_of

    incidents, sources = _read(inputs, column_map, timezone, municipalities, roads, resolution)
    params = BuildParams(resolution=resolution, half_life_days=half_life_days)
    inputs_meta = [source.provenance() for source in sources]
    cells = _road_cells(roads, resolution)
    own = _cells_of(incidents, resolution)
    store = LayerStore(out)
    provenance: dict = {}
    if incremental:
        incidents, own, inputs_meta, provenance = _add_to_base(store, base, resolution, incidents, own, inputs_meta)
    meta: dict[str, Any] = {"name": name, "synthetic": synthetic, "inputs": inputs_meta}
    if fixed:
        layer = build_layer(incidents, params, road_cells=cells, own_cells=own, **meta)
    else:
        layer, report = build_fitted_layer(
            incidents, params, road_cells=cells, horizon_days=horizon_days, own_cells=own, **meta
        )
        print(report.describe(), file=sys.stderr)
        params = report.params
    layer = _with_coverage(layer, coverage_file, municipalities, incidents)
    provenance = {"inputs": inputs_meta, "params": asdict(params), "synthetic": synthetic, **provenance}
    store.write(layer, provenance, attach=lambda folder: save_incidents(incidents, own, folder))
    if activate:
        store.activate(layer.version)
        _broadcast(layer.version)
    print(f"{len(incidents)} incidents → {len(layer.cells)} cells{' (activated)' if activate else ''}", file=sys.stderr)
    print(layer.version)


def _with_coverage(layer, coverage_file: Path | None, municipalities: Path | None, incidents):
    """The layer with the area its data covers: the ``--coverage`` polygons, else the municipalities
    of aggregated (SESNSP) data, else the documented default for point data (docs/model.md)."""
    from geodata import coverage
    from geodata.layers import with_coverage
    from geodata.sesnsp import read_areas

    resolution = coverage.resolution_of(layer.resolution)
    area = coverage_file or municipalities
    if area is None:
        cells = coverage.of_points(incidents.lat, incidents.lng, resolution)
        source = "point data: the incidents' resolution-5 cells and the ring around them"
    else:
        try:
            cells = coverage.of_shapes(read_areas(area, "coverage polygons"), resolution)
        except InputError as exc:
            raise _report_input_error(exc) from None
        if len(cells) == 0:
            raise CliError(f"{area.name}: holds no polygon, so it covers nothing", EXIT_BAD_INPUT)
        source = f"{'polygons' if coverage_file else 'municipalities'} of {area.name}"
    covered = with_coverage(layer, cells, source)
    print(f"coverage: {source} ({len(cells)} cells)", file=sys.stderr)
    return covered


def _add_to_base(store: LayerStore, base: str | None, resolution: int, incidents, own, inputs_meta):
    """The base layer's stored incidents plus the new ones, for ``--incremental``."""
    from geodata.incremental import load_incidents, merge

    version = base or store.active_version()
    if not version:
        raise CliError("--incremental needs --base VERSION or an active layer in --out", EXIT_BAD_INPUT)
    try:
        folder = store.folder(version)
        base_layer = store.load(version)
        stored, stored_cells = load_incidents(folder)
    except LayerNotFoundError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except FileNotFoundError:
        raise CliError(
            f"layer {version} holds no incidents (built before incremental builds): build it again in full",
            EXIT_BAD_INPUT,
        ) from None
    if base_layer.resolution != resolution:
        raise CliError(f"layer {version} has H3 resolution {base_layer.resolution}, not {resolution}", EXIT_BAD_INPUT)
    try:
        merged, cells = merge(stored, stored_cells, incidents, own, version)
    except InputError as exc:
        raise _report_input_error(exc) from None
    print(f"incremental: {len(stored)} incidents of {version} + {len(incidents)} new", file=sys.stderr)
    return merged, cells, [*base_layer.metadata.get("inputs", []), *inputs_meta], {"incremental_from": version}


@layers_app.command("list")
@reports_errors
def list_layers(
    layer_dir: LayerDir,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array on stdout")] = False,
) -> None:
    """List stored layers; the active one is marked."""
    infos = LayerStore(layer_dir).list()
    if as_json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("", "version", "cells", "incidents", "built", "data", "coverage"):
        table.add_column(column)
    for info in infos:
        data = "SYNTHETIC" if info.synthetic else "real"
        table.add_row(
            "*" if info.active else "",
            info.version,
            str(info.cells),
            str(info.incidents),
            info.built_at,
            data,
            info.coverage,
        )
    Console().print(table)


@layers_app.command("activate")
@reports_errors
def activate_layer(version: Annotated[str, typer.Argument()], layer_dir: LayerDir) -> None:
    """Make VERSION the active layer; running servers pick it up within seconds.

    With ROUTERISK_REDIS_URL set, every replica sharing that Redis switches too.
    """
    try:
        LayerStore(layer_dir).activate(version)
    except LayerNotFoundError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    except (ValueError, OSError) as exc:
        raise CliError(f"layer {version} cannot be loaded, nothing changed: {exc}") from None
    _broadcast(version)
    print(version)


def _broadcast(version: str) -> None:
    """Set the shared active-layer key when Redis is configured."""
    from service.config import Settings

    settings = Settings()
    if not settings.redis_url:
        return
    from service.store.redis_client import RedisCache, connect
    from service.store.replicas import SharedState

    client = connect(
        settings.redis_url,
        timeout_s=max(settings.redis_timeout_ms / 1000, 1.0),
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    if not SharedState(RedisCache(client, settings.redis_prefix)).set_active_layer(version):
        print("warning: Redis unreachable: replicas that share only Redis will not switch", file=sys.stderr)


@layers_app.command("export")
@reports_errors
def export(
    version: Annotated[str, typer.Argument()],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    layer_dir: LayerDir,
    hourly: Annotated[
        bool, typer.Option("--hourly", help="long format: h3_cell, hour_of_week (0 = Monday 00:00 local), intensity")
    ] = False,
) -> None:
    """Export a layer as CSV: one row per cell with its weekly mean intensity and bounds (or, with
    --hourly, one row per cell and local hour of week)."""
    try:
        layer = LayerStore(layer_dir).load(version)
    except LayerNotFoundError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    if hourly:
        rows = export_hourly_csv(layer, out)
        print(f"{rows} cell-hours written to {out}", file=sys.stderr)
        return
    rows = export_csv(layer, out)
    print(f"{rows} cells written to {out}", file=sys.stderr)


@layers_app.command("backtest")
@reports_errors
def backtest_command(
    inputs: Annotated[list[Path], typer.Argument(help="incident files (as for build)")],
    train_until: Annotated[str, typer.Option("--train-until", help="ISO date: first split trains before, tests from")],
    test_days: Annotated[int, typer.Option("--test-days", min=1, help="days predicted after each origin")],
    splits: Annotated[int, typer.Option("--splits", min=1, help="consecutive test windows (rolling origin)")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, every number")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="folder for pai.png (and backtest.json)")] = None,
    column_map: ColumnMap = None,
    timezone: Timezone = None,
    municipalities: Municipalities = None,
    roads: Roads = None,
    resolution: Annotated[int, typer.Option(min=0, max=15, help="H3 resolution")] = 8,
    half_life_days: Annotated[float, typer.Option(min=1.0, help="half-life of the hour profiles")] = 365.0,
) -> None:
    """How well would the model have predicted the next N days? PAI, hit rate and log-likelihood vs baselines."""
    from geodata.backtest import backtest, format_table, plot_pai

    until = _instant(train_until, timezone)
    incidents, _ = _read(inputs, column_map, timezone, municipalities, roads, resolution)
    params = BuildParams(resolution=resolution, half_life_days=half_life_days)
    cells = _road_cells(roads, resolution)
    try:
        report = backtest(
            incidents, train_until_s=until, test_days=test_days, splits=splits, params=params, road_cells=cells
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from None
    text = json.dumps(report.to_dict(), indent=2)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "backtest.json").write_text(text + "\n", encoding="utf-8")
        if report.mean:
            plot_pai(report, out_dir / "pai.png")
            print(f"wrote {out_dir / 'pai.png'} and {out_dir / 'backtest.json'}", file=sys.stderr)
    print(text if as_json else format_table(report))


def _instant(text: str, timezone: str | None) -> int:
    """Epoch seconds of an ISO date/time; a naive one is read in ``--timezone`` or refused."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--train-until {text!r} is not an ISO 8601 date", EXIT_BAD_INPUT) from None
    if when.tzinfo is None:
        if timezone is None:
            raise CliError(
                f"--train-until {text!r} has no UTC offset: add one (e.g. -06:00 or Z) or give --timezone",
                EXIT_BAD_INPUT,
            )
        try:
            when = when.replace(tzinfo=ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise CliError(f"--timezone {timezone!r} is not an IANA time zone", EXIT_BAD_INPUT) from None
    return int(when.astimezone(UTC).timestamp())
