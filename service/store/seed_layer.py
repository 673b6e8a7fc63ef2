"""The embedded seed layer, fitted once per content instead of at every server start.

Fitting the seed layer takes ~1.2 s (reading 20,000 incidents, the adaptive fit, the build);
loading a stored layer takes a few milliseconds. So the built layer is kept in a
**content-addressed on-disk cache**: the folder's name is a SHA-256 of everything the layer's
values depend on — the seed incidents' name and bytes, the resolution, the source of every
``geodata`` module (the ingest, the fit and the build all live there) and of
``service/store/serving.py`` (the seed layer's name and metadata), and the versions of the
libraries that compute it (numpy, h3, tzfpy, Python). Any change to any of them is a new key,
so a stale layer is never served; an entry is never rewritten in place.

An entry is read with :func:`geodata.layers.load_layer`, which checks the SHA-256 of every
file against ``layer.json`` and every value (:mod:`geodata.layer_files`): a damaged entry is
logged and rebuilt, never served. A cache that cannot be written (read-only file system)
costs the fit, nothing else. The values are those of :func:`build` exactly (the same arrays,
version and metadata: ``tests/service/test_seed_layer_cache.py``).

Where: ``ROUTERISK_SEED_LAYER_CACHE`` (a folder; ``off`` disables the cache), else
``$XDG_CACHE_HOME/routerisk/seed-layers``, else ``~/.cache/routerisk/seed-layers``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import seeds
from geodata.layer_files import LayerRejectedError
from geodata.layers import RiskLayer, load_layer, save_layer

log = logging.getLogger(__name__)

CACHE_ENV = "ROUTERISK_SEED_LAYER_CACHE"
# bump when what a key covers changes meaning (not needed for code changes in geodata: they are hashed)
KEY_VERSION = "seed-layer-cache-v1"
GEODATA_DIR = Path(__file__).resolve().parents[2] / "geodata"
# where fit_seed_layer sets the seed layer's name and metadata
SERVING_PY = Path(__file__).resolve().with_name("serving.py")
LIBRARIES = ("numpy", "h3", "tzfpy")


def cache_dir() -> Path | None:
    """The cache folder from the environment, ``None`` when disabled."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in ("", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "routerisk" / "seed-layers"


def cache_key(
    resolution: int,
    incidents_csv: Path = seeds.INCIDENTS_CSV,
    code_dir: Path = GEODATA_DIR,
    builder: Path = SERVING_PY,
) -> str:
    """SHA-256 of everything the seed layer's values depend on (see the module docstring)."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        # length-prefixed, so two different inputs can never run together into the same bytes
        digest.update(f"{label}:{len(data)}:".encode())
        digest.update(data)

    add("key", KEY_VERSION.encode())
    add("resolution", str(int(resolution)).encode())
    add("incidents", Path(incidents_csv).name.encode())
    add("incidents", Path(incidents_csv).read_bytes())
    for source in sorted(Path(code_dir).glob("*.py")):
        add(f"code/{source.name}", source.read_bytes())
    add("builder", Path(builder).read_bytes())
    add("python", sys.version.encode())
    for library in LIBRARIES:
        add(f"library/{library}", _version_of(library).encode())
    return digest.hexdigest()


def cached_seed_layer(build: Callable[[], RiskLayer], resolution: int, folder: Path | None = None) -> RiskLayer:
    """The seed layer from the cache under ``folder`` (default :func:`cache_dir`), built with ``build``
    and stored when it is not there (or is damaged)."""
    folder = cache_dir() if folder is None else folder
    if folder is None:
        return build()
    entry = folder / cache_key(resolution)
    cached = _load(entry)
    if cached is not None:
        return cached
    layer = build()
    _store(layer, entry)
    return layer


def _load(entry: Path) -> RiskLayer | None:
    """The cached layer, or ``None`` when absent or refused by the layer checks (then logged)."""
    if not (entry / "layer.json").is_file():
        return None
    try:
        return load_layer(entry)
    except (LayerRejectedError, OSError, ValueError) as exc:
        log.warning("seed layer cache entry refused; rebuilding", extra={"entry": entry.name, "error": str(exc)[:300]})
        return None


def _store(layer: RiskLayer, entry: Path) -> None:
    """Write ``layer`` to ``entry`` atomically (a temporary folder renamed into place): a reader never
    sees half an entry, and of two servers starting at once the first complete entry stays (a good
    entry is never removed, only a damaged one). Failures are logged."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=entry.parent))
        try:
            save_layer(layer, temporary)
            if entry.exists():
                if _load(entry) is not None:  # written meanwhile by another start: keep it
                    return
                shutil.rmtree(entry, ignore_errors=True)
            os.replace(temporary, entry)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    except OSError as exc:
        log.warning("seed layer not cached", extra={"folder": str(entry.parent), "error": str(exc)[:300]})


def _version_of(library: str) -> str:
    try:
        return version(library)
    except PackageNotFoundError:
        return "unknown"
