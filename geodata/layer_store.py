"""A directory of versioned layers and the pointer to the active one.

Layout (``ROUTERISK_LAYER_DIR``)::

    layers/<version>/layer.json, *.npy, provenance.json   immutable, one folder per version
    ACTIVE                                                the active version, one line

Every layer is checked when it is loaded (paths inside the store, sizes, hashes, metadata,
values: :mod:`geodata.layer_files`) and read into memory. Every write is atomic: a layer is
written into a temporary folder and renamed into place; ``ACTIVE`` is replaced with
``os.replace``. Readers therefore see a whole layer or none, and a crash mid-build leaves
only a ``.tmp-*`` folder behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3.api.basic_int as h3i
import numpy as np

from geodata import coverage
from geodata.layer_files import LayerRejectedError, check_version_name, inside
from geodata.layers import RiskLayer, load_layer, save_layer

ACTIVE_FILE = "ACTIVE"
LAYERS = "layers"
EXPORT_COLUMNS = (
    "h3_cell",
    "intensity_per_hour",
    "incidents",
    "violent_incidents",
    "last_incident_at",
    "lower",
    "upper",
)


class LayerNotFoundError(LookupError):
    """No layer with that version in the store."""


@dataclass(frozen=True)
class LayerInfo:
    """What ``routerisk layers list`` shows about one stored layer."""

    version: str
    active: bool
    synthetic: bool
    cells: int
    incidents: int
    built_at: str
    inputs: list[dict[str, Any]]
    # where the layer's coverage comes from and its size ("not recorded" for older layers)
    coverage: str = "not recorded"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LayerStore:
    """Versioned layers in one directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _folder(self, version: str) -> Path:
        try:
            check_version_name(version)
        except LayerRejectedError:
            raise LayerNotFoundError(f"no layer {str(version)[:200]!r}") from None
        return self.root / LAYERS / version

    def write(
        self, layer: RiskLayer, provenance: dict[str, Any] | None = None, attach: Callable[[Path], None] | None = None
    ) -> Path:
        """Store a layer atomically; storing an existing version again changes nothing.

        ``attach(folder)`` writes extra files into the layer's folder before it appears
        (the incidents an incremental build starts from)."""
        target = self._folder(layer.version)
        if (target / "layer.json").exists():
            return target
        (self.root / LAYERS).mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root / LAYERS))
        try:
            save_layer(layer, scratch)
            if attach is not None:
                attach(scratch)
            record = {"built_at": datetime.now(UTC).isoformat(timespec="seconds"), **(provenance or {})}
            (scratch / "provenance.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
            _fsync_folder(scratch)
            os.rename(scratch, target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return target

    def versions(self) -> list[str]:
        folder = self.root / LAYERS
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / "layer.json").exists())

    def active_version(self) -> str | None:
        """The version named in ``ACTIVE``, or None when nothing was activated."""
        try:
            text = (self.root / ACTIVE_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def folder(self, version: str) -> Path:
        """The folder of a stored layer (``LayerNotFoundError`` when there is none)."""
        folder = self._folder(version)
        if not (folder / "layer.json").exists():
            raise LayerNotFoundError(f"no layer {version!r} in {self.root}")
        return folder

    def load(self, version: str) -> RiskLayer:
        """The layer, checked and read into memory (:mod:`geodata.layer_files`): a layer that must
        not serve raises :class:`LayerRejectedError` (a ``ValueError``) with its reason."""
        folder = self._folder(version)
        if not os.path.lexists(folder / "layer.json"):
            raise LayerNotFoundError(f"no layer {version!r} in {self.root}")
        layer = load_layer(inside(folder, self.root / LAYERS))
        if layer.version != version:
            raise LayerRejectedError("metadata", f"layer folder {version} holds version {layer.version}")
        return layer

    def activate(self, version: str) -> RiskLayer:
        """Load the layer (so a broken one is never activated), then point ``ACTIVE`` at it."""
        layer = self.load(version)
        scratch = self.root / f".{ACTIVE_FILE}.tmp-{os.getpid()}"
        with open(scratch, "w", encoding="utf-8") as handle:
            handle.write(version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, self.root / ACTIVE_FILE)
        return layer

    def info(self, version: str) -> LayerInfo:
        folder = self._folder(version)
        header = json.loads((folder / "layer.json").read_text(encoding="utf-8"))
        provenance_path = folder / "provenance.json"
        provenance = json.loads(provenance_path.read_text(encoding="utf-8")) if provenance_path.exists() else {}
        meta = header.get("metadata", {})
        cells = int(np.load(folder / "cells.npy", mmap_mode="r").shape[0])
        return LayerInfo(
            version=version,
            active=version == self.active_version(),
            synthetic=bool(meta.get("synthetic", False)),
            cells=cells,
            incidents=int(meta.get("incidents", 0)),
            built_at=str(provenance.get("built_at", "")),
            inputs=list(meta.get("inputs", [])),
            coverage=coverage.describe(meta),
        )

    def list(self) -> list[LayerInfo]:
        return [self.info(v) for v in self.versions()]


HOURLY_COLUMNS = ("h3_cell", "hour_of_week", "intensity_per_hour")


def export_hourly_csv(layer: RiskLayer, out: Path | str) -> int:
    """Long format: one row per cell and local hour of week (0 = Monday 00:00 local); returns the row count."""
    out = Path(out)
    scratch = out.with_name(f".{out.name}.tmp")
    count = 0
    with open(scratch, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HOURLY_COLUMNS)
        for lo in range(0, len(layer.cells), 4096):
            block = np.asarray(layer.intensity[lo : lo + 4096], dtype=np.float64)
            for cell, values in zip(layer.cells[lo : lo + 4096].tolist(), block.tolist(), strict=True):
                name = h3i.int_to_str(cell)
                writer.writerows([name, hour, f"{value:.6e}"] for hour, value in enumerate(values))
                count += len(values)
    os.replace(scratch, out)
    return count


def export_csv(layer: RiskLayer, out: Path | str) -> int:
    """Write one row per cell (weekly mean intensity and its bounds); returns the row count."""
    lower = layer.lower if layer.lower is not None else np.full(len(layer.cells), np.nan)
    upper = layer.upper if layer.upper is not None else np.full(len(layer.cells), np.nan)
    violent = layer.violent_count if layer.violent_count is not None else np.zeros(len(layer.cells), dtype=int)
    rows = zip(
        layer.cells.tolist(),
        layer.weekly_mean.tolist(),
        layer.incident_count.tolist(),
        violent.tolist(),
        layer.last_incident_s.tolist(),
        lower.tolist(),
        upper.tolist(),
        strict=True,
    )
    out = Path(out)
    scratch = out.with_name(f".{out.name}.tmp")
    with open(scratch, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        count = 0
        for cell, mean, incidents, violent_n, last_s, low, high in rows:
            last = datetime.fromtimestamp(last_s, UTC).isoformat().replace("+00:00", "Z") if last_s else ""
            writer.writerow(
                [h3i.int_to_str(cell), f"{mean:.6e}", incidents, violent_n, last, f"{low:.6e}", f"{high:.6e}"]
            )
            count += 1
    os.replace(scratch, out)
    return count


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
