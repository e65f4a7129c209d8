"""The service during a database outage: 503 with Retry-After, the connection kept, then recovery.

The app runs under a real uvicorn (in a thread, on a free loopback port)
rather than the TestClient, because what is at stake is the HTTP connection:
an error that escapes the app makes uvicorn answer a plain-text 500 and close
the client's keep-alive connection. The client is ``http.client``, one socket,
so the test can see that every answer came back on the same one.

The outage comes from ``database_outage`` (tests/integration/conftest.py):
PostgreSQL refuses connections and ends the open ones; a SQLite file's write
lock is held elsewhere past the busy timeout.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from headliner.service.app import create_app
from headliner.service.clock import ManualClock
from headliner.service.settings import Settings
from headliner.storage.schema import decisions
from headliner.storage.sql import SqlStore

DatabaseOutage = Callable[[], AbstractContextManager[None]]
Answer = tuple[int, dict[str, str], Any]  # status, headers (lower-case names), JSON body


@contextmanager
def _serving(app: FastAPI) -> Iterator[int]:
    """Run ``app`` under uvicorn on a free loopback port; yield the port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _KeepAliveClient:
    """JSON over one keep-alive HTTP connection; fails if the server closed it."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.connection.connect()
        self.socket = self.connection.sock

    def request(self, method: str, path: str, body: object = None) -> Answer:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        # http.client drops the socket when the server announces a close.
        assert self.connection.sock is self.socket, "the server closed the keep-alive connection"
        assert response.getheader("content-type") == "application/json", raw
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw)

    def close(self) -> None:
        self.connection.close()


def _assert_unavailable(status: int, headers: dict[str, str], body: Any) -> None:
    assert status == 503, body
    assert int(headers["retry-after"]) >= 1
    assert isinstance(body["detail"], str | list) and body["detail"]


def _stored_decisions(database_url: str, experiment_id: str) -> dict[str, tuple[str, bool]]:
    """Idempotency key -> (decision id, opened) of every decision the database holds."""
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions.c.idempotency_key, decisions.c.id, decisions.c.opened_at).where(
                    decisions.c.experiment_id == experiment_id
                )
            ).all()
    finally:
        engine.dispose()
    assert len({row.idempotency_key for row in rows}) == len(rows), "a key stored twice"
    return {row.idempotency_key: (row.id, row.opened_at is not None) for row in rows}


@pytest.mark.parametrize(
    "key_cache_seconds",
    [
        pytest.param(0.0, id="key-check-reads-the-database"),
        pytest.param(3600.0, id="key-check-cached"),
    ],
)
def test_an_outage_answers_503_keeps_the_connection_and_loses_no_acknowledged_write(
    settings: Settings,
    database_url: str,
    database_outage: DatabaseOutage,
    clock: ManualClock,
    key_cache_seconds: float,
) -> None:
    """The key check reads the database (fails first, in the middleware) or is cached."""
    store = SqlStore(database_url)  # opened after database_outage: SQLite's short busy timeout
    app = create_app(
        settings.model_copy(update={"api_key_cache_seconds": key_cache_seconds}),
        store=store,
        clock=clock,
    )
    acknowledged: dict[str, str] = {}  # idempotency key -> decision id
    opened: set[str] = set()

    def decide(key: str) -> Answer:
        answer = client.request(
            "POST", f"/v1/experiments/{exp}/decisions", {"idempotency_key": key}
        )
        if answer[0] in (200, 201):
            acknowledged[key] = answer[2]["decision_id"]
        return answer

    def open_(key: str) -> Answer:
        answer = client.request("POST", f"/v1/experiments/{exp}/decisions/{acknowledged[key]}/open")
        if answer[0] == 200:
            opened.add(key)
        return answer

    try:
        with _serving(app) as port:
            client = _KeepAliveClient(port)
            try:
                status, _, body = client.request(
                    "POST", "/v1/experiments", {"name": "Outage", "headlines": ["A", "B"]}
                )
                assert status == 201, body
                exp = body["id"]
                assert decide("before")[0] == 201

                with database_outage():
                    _assert_unavailable(*decide("during"))
                    _assert_unavailable(*open_("before"))
                    ready, ready_headers, _ = client.request("GET", "/ready")
                    if database_url.startswith("postgresql"):
                        assert ready == 503 and int(ready_headers["retry-after"]) >= 1
                    else:  # SQLite: reads go on while another process holds the write lock
                        assert ready == 200

                # The database is back: the same connection, the same app, no restart.
                assert client.request("GET", "/ready")[0] == 200
                assert decide("during")[0] == 201  # the failed decision was not stored
                assert decide("after")[0] == 201
                assert open_("before")[2]["result"] == "counted"
                assert decide("before")[0] == 200  # a replay, not a second decision
            finally:
                client.close()
    finally:
        store.close()

    stored = _stored_decisions(database_url, exp)
    assert {key: decision for key, (decision, _) in stored.items()} == acknowledged
    assert {key for key, (_, was_opened) in stored.items() if was_opened} == opened == {"before"}
