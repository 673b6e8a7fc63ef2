"""Incremental builds: a layer keeps its incidents, so new ones are added without re-reading files.

``routerisk layers build NEW.csv --incremental`` loads the base layer's ``incidents.npz``
(positions, instants, local hours, flags, weights, cells and a 64-bit hash of each id, ~52
bytes per incident), appends the new incidents (an id already in the base is an error, as
across files in one build), refits the model and builds the layer.  Parsing and validating
files is most of a full build's time (21 of ~30 s on 1,000,000 incidents); the refit and
build on stored arrays take seconds.  Nothing else changes: same fit, same layer as a full
build on the same incidents (the ids are hashes, which the layer never uses).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from geodata.errors import Violation
from geodata.incidents import INCIDENT_TYPES, IncidentSet, InvalidIncidentFileError, concatenate

INCIDENTS_FILE = "incidents.npz"
MAX_LISTED = 20


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """64-bit BLAKE2b of each id (uint64)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little") for i in ids.tolist()),
        np.uint64,
        len(ids),
    )


def save_incidents(incidents: IncidentSet, cells: np.ndarray, folder: Path | str) -> None:
    """Write the incidents a layer was built from next to it (``incidents.npz``)."""
    codes = np.array([INCIDENT_TYPES.index(t) for t in incidents.types.tolist()], dtype=np.int8)
    np.savez(
        Path(folder) / INCIDENTS_FILE,
        id_hash=id_hashes(incidents.ids),
        lat=incidents.lat,
        lng=incidents.lng,
        utc_s=incidents.utc_s,
        local_how=incidents.local_how,
        violent=incidents.violent,
        type_code=codes,
        weight=incidents.weights,
        cells=np.asarray(cells, dtype=np.uint64),
        sources=np.array(incidents.sources, dtype=str),
    )


def load_incidents(folder: Path | str) -> tuple[IncidentSet, np.ndarray]:
    """The incidents stored with a layer and their cells; ``FileNotFoundError`` when it has none."""
    path = Path(folder) / INCIDENTS_FILE
    with np.load(path, allow_pickle=False) as data:
        hashes = data["id_hash"]
        incidents = IncidentSet(
            ids=np.array([f"#{h:016x}" for h in hashes.tolist()], dtype=object),
            lat=data["lat"],
            lng=data["lng"],
            utc_s=data["utc_s"],
            local_how=data["local_how"],
            violent=data["violent"],
            types=np.array(INCIDENT_TYPES, dtype=object)[data["type_code"].astype(np.intp)],
            sources=tuple(data["sources"].tolist()),
            weight=data["weight"],
        )
        return incidents, data["cells"]


def merge(
    base: IncidentSet, base_cells: np.ndarray, new: IncidentSet, new_cells: np.ndarray, base_version: str
) -> tuple[IncidentSet, np.ndarray]:
    """Base + new incidents; an id of ``new`` already in the base rejects the whole update."""
    base_hashes = np.array([int(i[1:], 16) for i in base.ids.tolist()], dtype=np.uint64)
    known = np.isin(id_hashes(new.ids), base_hashes)
    if known.any():
        dup = new.ids[known].tolist()
        problems = [Violation("id", f"id {i!r} is already in layer {base_version}") for i in dup[:MAX_LISTED]]
        if len(dup) > MAX_LISTED:
            problems.append(Violation("id", f"... and {len(dup) - MAX_LISTED} more ids already in {base_version}"))
        raise InvalidIncidentFileError(problems)
    merged = concatenate([base, _with_weights(new)])
    return merged, np.concatenate([np.asarray(base_cells, dtype=np.uint64), np.asarray(new_cells, dtype=np.uint64)])


def _with_weights(incidents: IncidentSet) -> IncidentSet:
    if incidents.weight is not None:
        return incidents
    return IncidentSet(**{**incidents.__dict__, "weight": np.ones(len(incidents))})
