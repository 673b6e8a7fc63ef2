"""Errors of the use cases that are not a caller's bad input (those are ``geodata.errors``)."""

from __future__ import annotations


class NotFoundError(LookupError):
    """The named thing (port, cell) does not exist."""


class ConflictError(RuntimeError):
    """Other writers kept changing the same shared state: nothing was applied, the caller may
    send it again (gRPC ``ABORTED``, the code for a concurrency conflict)."""
