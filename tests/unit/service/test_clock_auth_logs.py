"""The manual clock, the API-key cache and the JSON log formatter."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from headliner.core.errors import AuthError, InvalidParameterError
from headliner.service.auth import KeyCache, create_key, hash_key
from headliner.service.clock import ManualClock, SystemClock
from headliner.service.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    configure_logging,
    sole_json_handler,
    write_access_line,
)
from headliner.storage.sql import SqlStore


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=100.0)

    assert clock.now() == 100.0
    assert clock.advance(7 * 24 * 3600) == 100.0 + 604800
    assert clock.set(1e9) == 1e9
    with pytest.raises(InvalidParameterError, match="'seconds' parameter"):
        clock.advance(-1)
    with pytest.raises(InvalidParameterError, match="'when' parameter"):
        clock.set(0.0)


def test_system_clock_is_the_wall_clock() -> None:
    assert abs(SystemClock().now() - time.time()) < 1.0


def test_keys_are_random_and_stored_hashed(store: SqlStore) -> None:
    record, secret = create_key(store, "ci", 0.0)
    _, other = create_key(store, "ci-2", 0.0)

    assert secret.startswith("hl_") and secret != other
    assert store.find_api_key(hash_key(secret)) == record
    assert store.find_api_key(secret) is None
    with pytest.raises(InvalidParameterError, match="'name' parameter"):
        create_key(store, " ", 0.0)


def test_key_cache_without_keys_lets_everyone_through(store: SqlStore) -> None:
    cache = KeyCache(store, ManualClock(), ttl=5.0)

    assert cache.check(None) is None


def test_key_cache_checks_and_caches_for_the_ttl(store: SqlStore) -> None:
    clock = ManualClock()
    cache = KeyCache(store, clock, ttl=5.0)
    assert cache.check(None) is None  # caches "no keys" for 5 s
    record, secret = create_key(store, "ci", clock.now())

    assert cache.check(None) is None  # the new key is not seen yet
    clock.advance(5.0)
    with pytest.raises(AuthError, match="Missing") as missing:
        cache.check(None)
    assert cache.check(secret) == record
    store.revoke_api_key(record.id, clock.now())
    assert cache.check(secret) == record  # cached
    clock.advance(5.0)
    with pytest.raises(AuthError, match="revoked") as revoked:
        cache.check(secret)
    with pytest.raises(AuthError, match="Unknown") as unknown:
        cache.check("hl_wrong")

    assert missing.value.revoked is False
    assert revoked.value.revoked is True
    assert unknown.value.revoked is False
    cache.clear()


def test_json_formatter_writes_one_object_with_extras() -> None:
    record = logging.makeLogRecord(
        {"name": "headliner.access", "levelname": "INFO", "msg": "request", "status": 201}
    )

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "request"
    assert entry["status"] == 201
    assert entry["logger"] == "headliner.access"
    assert entry["time"].endswith("Z")


def test_json_formatter_includes_exceptions() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})

    entry = json.loads(JsonFormatter().format(record))

    assert "RuntimeError: boom" in entry["exception"]


def test_access_line_reads_as_the_logged_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The access log's direct write and logger.info give the same JSON object."""
    configure_logging("INFO")
    access = logging.getLogger(ACCESS_LOGGER)
    parent = logging.getLogger("headliner")
    # Only the service's handler (pytest may have added capturing ones).
    ours = [h for h in parent.handlers if getattr(h, "_headliner", False)]
    monkeypatch.setattr(parent, "handlers", ours)
    handler = sole_json_handler(access)
    assert handler is not None
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        write_access_line(handler, "POST", "/v1/experiments/e/decisions", 201, 0.25)
        access.info(
            "request",
            extra={
                "method": "POST",
                "path": "/v1/experiments/e/decisions",
                "status": 201,
                "duration_ms": 0.25,
            },
        )
    finally:
        handler.setStream(previous)
        logging.getLogger("headliner").setLevel("WARNING")
    direct, logged = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(direct) == list(logged)  # same fields in the same order
    assert {k: v for k, v in direct.items() if k != "time"} == {
        k: v for k, v in logged.items() if k != "time"
    }
    assert (
        abs(
            time.mktime(time.strptime(direct["time"][:19], "%Y-%m-%dT%H:%M:%S"))
            - time.mktime(time.strptime(logged["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        )
        <= 1
    )


def test_access_line_falls_back_to_the_logger_when_others_listen() -> None:
    """A handler of its own on the access logger: the direct write steps aside."""
    configure_logging("INFO")
    access = logging.getLogger(ACCESS_LOGGER)
    extra = logging.NullHandler()
    access.addHandler(extra)
    try:
        assert sole_json_handler(access) is None
    finally:
        access.removeHandler(extra)
        logging.getLogger("headliner").setLevel("WARNING")
