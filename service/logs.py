"""Structured (JSON) logs. Callers pass identifiers and figures, never coordinates, routes or keys."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence

# LogRecord attributes that are not extra fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO", fmt: str = "json", filters: Sequence[logging.Filter] = ()) -> None:
    """Send logs to stderr in the chosen format, replacing earlier handlers (except those marked
    ``keep_on_configure``, such as the test suite's log scanner), through ``filters`` (the server
    passes :class:`service.grpc.request_log.RequestContextFilter`, so that records logged during a
    gRPC call carry its ``request_id`` and ``tenant``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for log_filter in filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    root.handlers[:] = [*(h for h in root.handlers if getattr(h, "keep_on_configure", False)), handler]
    root.setLevel(level.upper())
