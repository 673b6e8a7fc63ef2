"""Reading a stored layer safely: every check a layer passes before it may serve.

A layer folder is data written by someone else (a build Job, an operator, a copy from
another machine), so nothing in it is trusted:

- **paths**: the folder and every file resolve inside the store's ``layers/`` folder
  (a symlink out of the store is refused), every file is a regular file (a FIFO would
  hang the reader), opened without following a symlink.
- **sizes**: ``layer.json`` is at most :data:`MAX_HEADER_BYTES`; each ``.npy`` file is
  exactly its header plus ``shape × itemsize`` bytes (a truncated or padded file is
  refused), with a plain numeric dtype (no objects, no pickles).
- **hashes**: layers written by this version carry the SHA-256 of every file in
  ``layer.json`` (``"sha256": {"cells.npy": …}``), checked on every read. Older layers
  without them are verified by their version instead, which is a content hash of the
  resolution, arrays and metadata (:func:`content_version`); a layer whose version does
  not match its content is refused. Either hash stops corruption and partial copies, not
  a forger who can write to the store (they can rewrite ``layer.json`` too): the value
  checks below bound what such a layer can do.
- **metadata**: resolution an ``int`` in 0–15, version a non-empty folder name of at most
  200 characters (no ``/``, ``\\``, control characters or leading dot), metadata a JSON object whose ``period_end_s``,
  ``incidents`` and ``inputs`` have their types.
- **values**: at least one cell; cells ``uint64``, sorted, unique, valid H3 cells of the
  layer's resolution; intensities and bounds finite and non-negative; counts and times
  non-negative integers; recent shares within [0, 1]; coverage (when recorded) sorted,
  unique H3 cells no finer than the layer's.

The arrays are *read into memory*, never memory-mapped: a file truncated or rewritten
under a running server cannot take it down (a mapped page that vanishes is a SIGBUS).
The costs are measured in docs/performance.md. Everything fails with one
:class:`LayerRejectedError` whose ``reason`` is a short label for metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

HOURS_PER_WEEK = 168
HEADER = "layer.json"
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_VERSION_CHARS = 200
VERSION_PATTERN = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]*")
READ_CHUNK = 8 * 1024 * 1024
# dtype kind each array must have: u unsigned, i/u integer, f float
REQUIRED = ("cells", "intensity", "incident_count", "last_incident_s")
KINDS = {
    "cells": "u",
    "intensity": "f",
    "incident_count": "iu",
    "violent_count": "iu",
    "last_incident_s": "iu",
    "lower": "f",
    "upper": "f",
    "recent_share": "f",
    "recent_since_s": "iu",
    "coverage": "u",
}
# arrays not indexed by the layer's cells
NOT_PER_CELL = ("cells", "intensity", "coverage")
# reasons (the metric's label values)
REASONS = ("not_found", "path", "file", "size", "hash", "metadata", "shape", "values", "empty")


class LayerRejectedError(ValueError):
    """A stored layer that must not serve; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_version_name(version: object) -> str:
    """The version as a folder name, or :class:`LayerRejectedError` (``not_found``)."""
    if (
        not isinstance(version, str)
        or len(version) > MAX_VERSION_CHARS
        or not VERSION_PATTERN.fullmatch(version)
        or version in (".", "..")
    ):
        raise LayerRejectedError("not_found", f"no layer {str(version)[:MAX_VERSION_CHARS]!r}")
    return version


def inside(folder: Path, layers_root: Path) -> Path:
    """The resolved folder, which must be a directory directly inside ``layers_root`` (resolved)."""
    root = layers_root.resolve()
    resolved = folder.resolve()
    if resolved.parent != root:
        raise LayerRejectedError("path", f"layer folder {folder.name} resolves outside the layer store")
    if not resolved.is_dir():
        raise LayerRejectedError("not_found", f"layer folder {folder.name} is not a directory")
    return resolved


def _open_regular(path: Path, folder: Path) -> int:
    """A read-only descriptor of a regular file directly inside ``folder`` (symlinks refused)."""
    if path.resolve().parent != folder:
        raise LayerRejectedError("path", f"{path.name} resolves outside its layer folder")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise LayerRejectedError("file", f"{path.name} is missing") from None
    except OSError as exc:
        raise LayerRejectedError("path", f"{path.name} cannot be opened: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayerRejectedError("file", f"{path.name} is not a regular file")
    return fd


def read_header(folder: Path) -> tuple[dict[str, Any], str]:
    """``layer.json`` (a JSON object, at most :data:`MAX_HEADER_BYTES`) and its SHA-256."""
    fd = _open_regular(folder / HEADER, folder)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_HEADER_BYTES + 1)
    if len(data) > MAX_HEADER_BYTES:
        raise LayerRejectedError("size", f"{HEADER} is larger than {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise LayerRejectedError("metadata", f"{HEADER} is not JSON: {str(exc)[:120]}") from None
    if not isinstance(header, dict):
        raise LayerRejectedError("metadata", f"{HEADER} is not a JSON object")
    return header, hashlib.sha256(data).hexdigest()


def read_array(path: Path, folder: Path) -> tuple[np.ndarray, str]:
    """One ``.npy`` file read whole into memory (read-only), and the SHA-256 of the file.

    The size is checked against the header's shape before anything is allocated."""
    fd = _open_regular(path, folder)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            major, minor = npy_format.read_magic(handle)
            if (major, minor) == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
            elif (major, minor) == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy version {major}.{minor}")
        except ValueError as exc:
            raise LayerRejectedError("file", f"{path.name}: not a .npy array: {str(exc)[:120]}") from None
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf" or fortran:
            raise LayerRejectedError("file", f"{path.name}: dtype {dtype.str} is not a plain numeric array")
        offset = handle.tell()
        count = math.prod(shape)  # exact: a forged shape cannot wrap around
        if size != offset + count * dtype.itemsize:
            raise LayerRejectedError(
                "size", f"{path.name}: {size} bytes on disk, its shape {shape} needs {offset + count * dtype.itemsize}"
            )
        digest = hashlib.sha256()
        handle.seek(0)
        digest.update(handle.read(offset))
        array = np.empty(shape, dtype=dtype)
        view = memoryview(array.reshape(-1).view(np.uint8).data) if count else memoryview(b"")
        done = 0
        while done < len(view):
            got = handle.readinto(view[done : done + READ_CHUNK])
            if not got:
                raise LayerRejectedError("size", f"{path.name}: shrank while it was read")
            done += got
        digest.update(view)
    array.flags.writeable = False
    return array, digest.hexdigest()


def file_digests(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each named file of a layer folder (what :func:`read_layer_files` checks)."""
    digests = {}
    for name in names:
        digest = hashlib.sha256()
        with open(folder / name, "rb") as handle:
            while block := handle.read(READ_CHUNK):
                digest.update(block)
        digests[name] = digest.hexdigest()
    return digests


def read_layer_files(
    folder: Path, array_names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, np.ndarray | None], dict[str, str] | None]:
    """The checked header, the arrays read into memory, and the file hashes the header recorded
    (None for a layer written before hashes were recorded: the caller verifies its version)."""
    header, _ = read_header(folder)
    check_header(header)
    recorded = header.get("sha256")
    if recorded is not None and (
        not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values())
    ):
        raise LayerRejectedError("metadata", f"{HEADER}: sha256 is not an object of hex strings")
    arrays: dict[str, np.ndarray | None] = {}
    for name in array_names:
        path = folder / f"{name}.npy"
        if not os.path.lexists(path):
            if name in REQUIRED:
                raise LayerRejectedError("file", f"{path.name} is missing")
            arrays[name] = None
            continue
        array, digest = read_array(path, folder)
        if recorded is not None and recorded.get(path.name) != digest:
            raise LayerRejectedError("hash", f"{path.name} does not match its SHA-256 in {HEADER}")
        arrays[name] = array
    if recorded is not None:
        extra = set(recorded) - {f"{name}.npy" for name, a in arrays.items() if a is not None}
        if extra:
            raise LayerRejectedError("hash", f"files recorded in {HEADER} are missing: {sorted(extra)}")
    check_arrays(int(header["resolution"]), arrays)
    return header, arrays, recorded


def check_header(header: Mapping[str, Any]) -> None:
    """Types and ranges of ``layer.json``."""
    resolution = header.get("resolution")
    if type(resolution) is not int or not 0 <= resolution <= 15:
        raise LayerRejectedError("metadata", f"resolution {str(resolution)[:40]!r} is not an integer in 0–15")
    check_version_name(header.get("version"))
    metadata = header.get("metadata")
    if not isinstance(metadata, dict):
        raise LayerRejectedError("metadata", "metadata is not a JSON object")
    for key in ("period_end_s", "period_start_s", "as_of_s", "incidents"):
        value = metadata.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise LayerRejectedError("metadata", f"metadata {key} {str(value)[:40]!r} is not a non-negative integer")
    if not isinstance(metadata.get("inputs", []), list):
        raise LayerRejectedError("metadata", "metadata inputs is not a list")
    if not isinstance(metadata.get("name", ""), str):
        raise LayerRejectedError("metadata", "metadata name is not a string")


def check_arrays(resolution: int, arrays: Mapping[str, np.ndarray | None]) -> None:
    """Dtypes, shapes and values (never naming a cell: cells are places)."""
    for name, kinds in KINDS.items():
        array = arrays.get(name)
        if array is None:
            if name in REQUIRED:
                raise LayerRejectedError("file", f"{name}.npy is missing")
            continue
        if array.dtype.kind not in kinds or (name == "cells" and array.dtype.itemsize != 8):
            raise LayerRejectedError("file", f"{name}: dtype {array.dtype.str} is not what a layer holds")
    cells = arrays["cells"]
    intensity = arrays["intensity"]
    assert cells is not None and intensity is not None
    n = len(cells) if cells.ndim == 1 else -1
    if n < 0:
        raise LayerRejectedError("shape", f"cells has shape {cells.shape}, not one dimension")
    if n == 0:
        raise LayerRejectedError("empty", "the layer has no cells")
    if intensity.shape != (n, HOURS_PER_WEEK):
        raise LayerRejectedError("shape", f"intensity shape {intensity.shape} does not match {n} cells × 168 hours")
    for name in KINDS:
        array = arrays.get(name)
        if name not in NOT_PER_CELL and array is not None and array.shape != (n,):
            raise LayerRejectedError("shape", f"{name} shape {array.shape} does not match {n} cells")
    if n > 1 and not bool(np.all(cells[1:] > cells[:-1])):
        raise LayerRejectedError("values", "cells are not sorted and unique")
    if not _h3_cells(cells, resolution, exact=True):
        raise LayerRejectedError("values", f"cells are not all H3 cells of resolution {resolution}")
    _check_coverage(arrays.get("coverage"), resolution)
    for name in ("intensity", "lower", "upper", "recent_share"):
        array = arrays.get(name)
        if array is None:
            continue
        if not bool(np.isfinite(array).all()):
            raise LayerRejectedError("values", f"{name} has NaN or infinite values")
        if bool((array < 0).any()):
            raise LayerRejectedError("values", f"{name} has negative values")
    share = arrays.get("recent_share")
    if share is not None and bool((share > 1).any()):
        raise LayerRejectedError("values", "recent_share has values above 1")
    for name in ("incident_count", "violent_count", "last_incident_s", "recent_since_s"):
        array = arrays.get(name)
        if array is not None and array.dtype.kind == "i" and bool((array < 0).any()):
            raise LayerRejectedError("values", f"{name} has negative values")


def _h3_cells(cells: np.ndarray, resolution: int, *, exact: bool) -> bool:
    """Whether every value is an H3 cell of ``resolution`` (``exact``) or no finer. H3 index bits:
    mode (59–62) is 1 for a cell, the resolution is in bits 52–55."""
    modes = (cells >> np.uint64(59)) & np.uint64(0xF)
    resolutions = (cells >> np.uint64(52)) & np.uint64(0xF)
    fits = resolutions == resolution if exact else resolutions <= resolution
    return bool(np.all(modes == 1)) and bool(np.all(fits))


def _check_coverage(coverage: np.ndarray | None, resolution: int) -> None:
    """Coverage (optional: older layers have none): one dimension, sorted and unique H3 cells no
    finer than the layer's, possibly empty (a layer may claim to cover nothing)."""
    if coverage is None:
        return
    if coverage.ndim != 1 or coverage.dtype.itemsize != 8:
        raise LayerRejectedError("shape", f"coverage has shape {coverage.shape}, not one dimension of uint64")
    if len(coverage) > 1 and not bool(np.all(coverage[1:] > coverage[:-1])):
        raise LayerRejectedError("values", "coverage cells are not sorted and unique")
    if not _h3_cells(coverage, resolution, exact=False):
        raise LayerRejectedError("values", f"coverage is not all H3 cells of resolution {resolution} or coarser")


def content_version(resolution: int, arrays: Mapping[str, np.ndarray | None], metadata: Mapping[str, Any]) -> str:
    """The content hash a layer's version is made of (``geodata.layers.with_version``):
    ``{name}-{sha256[:12]}`` over the resolution, the arrays in order, and the metadata."""
    digest = hashlib.sha256()
    digest.update(str(resolution).encode())
    for name, array in arrays.items():
        if array is not None:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(metadata, sort_keys=True, default=str).encode())
    return f"{metadata.get('name', 'layer')}-{digest.hexdigest()[:12]}"
