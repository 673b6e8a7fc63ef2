"""What the server is serving: one layer and one border data version, swapped whole.

Every request reads :attr:`ServingState.snapshot` once and uses only that object,
so an answer never mixes two layer versions, and a failed load leaves the old
snapshot serving.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import seeds
from geodata.border import BorderData, load_border_data
from geodata.incidents import read_canonical_csv
from geodata.layers import BuildParams, RiskLayer, build_layer, load_layer
from service.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    layer: RiskLayer
    border: BorderData


class ServingState:
    """Holds the active snapshot; readers never lock, writers swap a reference."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._write_lock = threading.Lock()

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def activate(self, layer: RiskLayer | None = None, border: BorderData | None = None) -> Snapshot:
        """Swap in a new layer and/or border data; the other part stays as it is."""
        with self._write_lock:
            current = self._snapshot
            new_layer = layer or (current.layer if current else None)
            new_border = border or (current.border if current else None)
            if new_layer is None or new_border is None:
                raise ValueError("the first activation needs both a layer and border data")
            self._snapshot = Snapshot(new_layer, new_border)
            log.info("activated", extra={"layer_version": new_layer.version, "border_version": new_border.version})
            return self._snapshot


def build_seed_layer(resolution: int = 8) -> RiskLayer:
    """The embedded default: the synthetic seed incidents, built into a layer."""
    incidents = read_canonical_csv(seeds.INCIDENTS_CSV)
    return build_layer(incidents, BuildParams(resolution=resolution), name="seed", synthetic=True)


def load_initial_snapshot(settings: Settings) -> Snapshot:
    """The configured layer (or the seed layer) and the seed border data."""
    layer = load_layer(settings.layer_path) if settings.layer_path else build_seed_layer(settings.h3_resolution)
    border = load_border_data(seeds.PORTS_CSV, seeds.BOUNDARY_GEOJSON, seeds.WAIT_PROFILES_JSON)
    return Snapshot(layer, border)
