"""API keys of two tenants: one may score and read, the other only read."""

from __future__ import annotations

import json

from service.grpc.auth import hash_key

SCORER, READER = "rr_scorer-key", "rr_reader-key"
KEYS = json.dumps(
    [
        {"sha256": hash_key(SCORER), "tenant": "acme", "permissions": ["score", "read"]},
        {"sha256": hash_key(READER), "tenant": "bravo", "permissions": ["read"]},
    ]
)


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]
