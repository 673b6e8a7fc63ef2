"""What the server is serving: one layer and one border data version, swapped whole.

Every request reads :attr:`ServingState.snapshot` once and uses only that object,
so an answer never mixes two layer versions, and a failed load leaves the old
snapshot serving. :class:`LayerWatcher` hot-loads a newly activated layer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

import seeds
from geodata import coverage
from geodata.adaptive import build_fitted_layer
from geodata.border import BorderData, WaitObservation, load_border_data
from geodata.ingest import read_incidents
from geodata.layer_files import REASONS, LayerRejectedError
from geodata.layer_store import LayerNotFoundError, LayerStore
from geodata.layers import BuildParams, RiskLayer, with_coverage
from service.config import Settings
from service.store.replicas import SharedState
from service.store.seed_layer import cached_seed_layer

log = logging.getLogger(__name__)

LAYER_REJECTED = Counter(
    "routerisk_layer_rejected",
    "Layers refused on load (the layer being served, if any, stays), by reason",
    ["reason"],
)
for _reason in (*REASONS, "error"):
    LAYER_REJECTED.labels(_reason)


class LayerRefusedError(RuntimeError):
    """A stored layer that was refused (already counted and logged)."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"layer {version} refused: {reason}")
        self.version = version
        self.reason = reason


def load_checked(store: LayerStore, version: str, source: str) -> RiskLayer:
    """``store.load(version)``; a layer that fails any check is counted in
    ``routerisk_layer_rejected_total{reason}``, logged in one line (no coordinates: the
    checks never name a cell) and raised as :class:`LayerRefusedError`."""
    try:
        return store.load(version)
    except LayerRejectedError as exc:
        reason, error = exc.reason, str(exc)
    except LayerNotFoundError as exc:
        reason, error = "not_found", str(exc)
    except Exception as exc:  # any other failure to read is a refusal too
        reason, error = "error", f"{type(exc).__name__}: {exc}"
    LAYER_REJECTED.labels(reason).inc()
    log.error(
        "layer refused; keeping the current layer",
        extra={"layer_version": version[:200], "reason": reason, "source": source, "error": error[:300]},
    )
    raise LayerRefusedError(version, reason)


class NotReadyError(RuntimeError):
    """The server has no layer or border data loaded yet."""


@dataclass(frozen=True)
class Snapshot:
    layer: RiskLayer
    border: BorderData


class ServingState:
    """Holds the active snapshot; readers never lock, writers swap a reference."""

    def __init__(self, shared: SharedState | None = None) -> None:
        self._snapshot: Snapshot | None = None
        self._pending_border: BorderData | None = None
        self._write_lock = threading.Lock()
        self.shared = shared

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def current(self) -> Snapshot:
        """The active snapshot; :class:`NotReadyError` while nothing is loaded yet."""
        snapshot = self._snapshot
        if snapshot is None:
            raise NotReadyError("risk layers are still loading; retry shortly")
        return snapshot

    def hold_border(self, border: BorderData) -> None:
        """Border data for the first activation, when no valid layer is there yet (nothing serves)."""
        with self._write_lock:
            self._pending_border = border

    def activate(self, layer: RiskLayer | None = None, border: BorderData | None = None) -> Snapshot:
        """Swap in a new layer and/or border data; the other part stays as it is."""
        with self._write_lock:
            current = self._snapshot
            new_layer = layer or (current.layer if current else None)
            new_border = border or (current.border if current else self._pending_border)
            if new_layer is None or new_border is None:
                raise ValueError("the first activation needs both a layer and border data")
            self._snapshot = Snapshot(new_layer, new_border)
            log.info("activated", extra={"layer_version": new_layer.version, "border_version": new_border.version})
            return self._snapshot

    def merge_observations(
        self, observations: list[WaitObservation], now_s: int, *, publish: bool = True
    ) -> tuple[int, int, str]:
        """Merge live border waits into the served border data (all or nothing), and share
        them with the other replicas through Redis when configured.

        Returns (accepted, stale, border version); a bad batch raises and changes nothing.
        """
        with self._write_lock:
            current = self._snapshot
            if current is None:
                raise NotReadyError("border data is still loading; retry shortly")
            if not publish:  # shared data from other replicas: skip what this one cannot use
                observations = current.border.usable(observations, now_s)
            border, accepted, stale = current.border.merged(observations, now_s=now_s)
            if accepted:
                self._snapshot = Snapshot(current.layer, border)
        if publish and accepted and self.shared is not None:
            self.shared.publish_observations(accepted)  # only what was newer here
        log.info(
            "border observations", extra={"accepted": len(accepted), "stale": stale, "border_version": border.version}
        )
        return len(accepted), stale, border.version


def build_seed_layer(resolution: int = 8) -> RiskLayer:
    """The embedded default, from the content-addressed seed layer cache when it is there
    (:mod:`service.store.seed_layer`: the same values, without refitting at every start)."""
    return cached_seed_layer(lambda: fit_seed_layer(resolution), resolution)


def fit_seed_layer(resolution: int = 8) -> RiskLayer:
    """The embedded default: the synthetic seed incidents, built by the same code as any layer
    (``routerisk layers build seeds/incidents_synthetic.csv --name seed --synthetic``: the fitted model)."""
    incidents, sources = read_incidents([seeds.INCIDENTS_CSV], resolution=resolution)
    inputs = [source.provenance() for source in sources]
    layer = build_fitted_layer(
        incidents, BuildParams(resolution=resolution), name="seed", synthetic=True, inputs=inputs
    )[0]
    # calibrated to every Mexican state's totals: the seed data covers Mexico
    area = coverage.read_cells_json(seeds.COVERAGE_CELLS_JSON, coverage.resolution_of(resolution))
    return with_coverage(layer, area, "Mexico (the seed's SESNSP state totals; seeds/mexico_coverage.geojson)")


def initial_layer(settings: Settings, shared: SharedState | None = None) -> RiskLayer:
    """The store's active layer (the shared choice first, with Redis) when there is one,
    else the seed layer. A refused active layer raises :class:`LayerRefusedError`: the
    server then serves nothing (health NOT_SERVING) until a valid layer is activated, rather
    than answer from the synthetic seed layer."""
    if settings.layer_dir is not None:
        store = LayerStore(settings.layer_dir)
        version = (shared.active_layer() if shared else None) or store.active_version()
        if version:
            return load_checked(store, version, "startup")
        log.warning(
            "no active layer in the layer store; serving the seed layer", extra={"layer_dir": str(settings.layer_dir)}
        )
    return build_seed_layer(settings.h3_resolution)


def load_initial_snapshot(settings: Settings, shared: SharedState | None = None) -> Snapshot:
    """The initial layer and the border data (seed ports and default profiles, overridden by
    historical profiles where configured)."""
    return Snapshot(initial_layer(settings, shared), initial_border(settings))


def initial_border(settings: Settings) -> BorderData:
    """The seed ports and default profiles, overridden by historical profiles where configured."""
    return load_border_data(
        seeds.PORTS_CSV,
        seeds.BOUNDARY_GEOJSON,
        seeds.WAIT_PROFILES_JSON,
        settings.border_profiles_path,
        port_hours_csv=seeds.PORT_HOURS_CSV,
    )


class LayerWatcher:
    """Polls the store's ``ACTIVE`` pointer and activates a new version without a restart.

    With Redis, the version every replica should serve is the shared ``layers:active`` key
    (the file is the fallback while Redis is unreachable). A version that fails to load or
    any check is refused (:func:`load_checked`: counted, logged once) and skipped until the
    pointer changes again; the layer being served stays. ``failed`` is a version already
    refused (at start-up); ``on_activate`` runs after every activation (health turns SERVING).
    """

    def __init__(
        self,
        state: ServingState,
        store: LayerStore,
        interval_s: float,
        shared: SharedState | None = None,
        *,
        failed: str | None = None,
        on_activate: Callable[[], None] | None = None,
    ) -> None:
        self._state = state
        self._store = store
        self._shared = shared
        self._interval = interval_s
        self._failed = failed
        self._on_activate = on_activate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layer-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """One poll: True when a new layer was activated."""
        shared_version = self._shared.active_layer() if self._shared else None
        version = shared_version or self._store.active_version()
        snapshot = self._state.snapshot
        if not version or version == self._failed or (snapshot and snapshot.layer.version == version):
            return False
        try:
            layer = load_checked(self._store, version, "redis" if shared_version else "file")
        except LayerRefusedError:  # a broken layer must never stop serving the current one
            self._failed = version
            return False
        self._failed = None
        self._state.activate(layer=layer)
        if self._on_activate is not None:
            self._on_activate()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:
                log.exception("layer watcher poll failed")
