"""Structured logs: one JSON object per line on stderr.

The access log (logger ``headliner.access``) writes one line per request with
method, path, status and duration_ms. Nothing secret is ever logged: no
headers, no bodies, no query strings (an API key could sit in any of them).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS_LOGGER = "headliner.access"

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send the ``headliner`` loggers to stderr as JSON at ``level`` (idempotent)."""
    logger = logging.getLogger("headliner")
    logger.setLevel(level)
    if not any(getattr(h, "_headliner", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._headliner = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
