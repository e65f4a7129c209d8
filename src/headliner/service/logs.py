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


def _utc_time(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": _utc_time(record.created, record.msecs),
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


def sole_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The JSON handler of :func:`configure_logging` if it alone gets ``logger``'s INFO records.

    That is: no handler or filter of ``logger`` itself, and its parent, the
    ``headliner`` logger, has that one handler, no filter, and does not
    propagate. Then a record can be written straight to the handler's stream
    (:func:`write_access_line`) and reads the same.
    """
    parent = logger.parent
    if logger.handlers or logger.filters or not logger.propagate or parent is None:
        return None
    if parent.name != "headliner" or parent.filters or parent.propagate:
        return None
    handlers = parent.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        not getattr(handler, "_headliner", False)
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JsonFormatter
    ):
        return None
    assert isinstance(handler, logging.StreamHandler)
    return handler


def write_access_line(
    handler: logging.StreamHandler[Any],
    method: str,
    path: str,
    status: int,
    duration_ms: float,
) -> None:
    """Write one access-log line the way ``logger.info("request", extra=...)`` would.

    Without a ``LogRecord`` (whose construction, caller lookup and dispatch
    cost several times the formatting): the same JSON object, field for field,
    straight to ``handler`` (from :func:`sole_json_handler`).
    """
    created = time.time()
    entry = {
        "time": _utc_time(created, (created - int(created)) * 1000),
        "level": "INFO",
        "logger": ACCESS_LOGGER,
        "message": "request",
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
    }
    line = json.dumps(entry, default=str) + handler.terminator
    try:
        with handler.lock:  # type: ignore[union-attr]  # created by the handler's __init__
            handler.stream.write(line)
            handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": line}))


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
