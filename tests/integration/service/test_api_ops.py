"""Health, readiness, metrics, docs, unknown routes, wrong methods, body limit, logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from headliner.service.app import create_app
from headliner.service.clock import ManualClock
from headliner.service.settings import Settings
from headliner.storage.base import Store
from headliner.storage.sql import SqlStore

NewExperiment = Callable[..., dict[str, Any]]


def test_health(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_the_database_answers(client: TestClient) -> None:
    assert client.get("/ready").json() == {"status": "ready"}


class _DownStore(SqlStore):
    def ping(self) -> None:
        raise ConnectionError("database down")


@pytest.fixture
def down_store(database_url: str) -> Iterator[_DownStore]:
    """A store whose database does not answer ``ping``, closed after the test."""
    opened = _DownStore(database_url)
    yield opened
    opened.close()


def test_ready_is_503_when_the_database_is_unreachable(
    settings: Settings, down_store: _DownStore
) -> None:
    app = create_app(settings, store=down_store, clock=ManualClock())
    with TestClient(app) as client:
        response = client.get("/ready")

    assert response.status_code == 503
    assert "not reachable" in response.json()["detail"][0]["msg"]
    assert int(response.headers["retry-after"]) >= 1


def test_metrics_count_decisions_opens_and_latency(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"
    decision = client.post(url).json()
    client.post(url, headers={"Idempotency-Key": "k"})
    client.post(url, headers={"Idempotency-Key": "k"})  # a replay is not a new decision
    client.post(f"{url}/{decision['decision_id']}/open")
    client.post(f"{url}/{decision['decision_id']}/open")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "headliner_decisions_total 2.0" in text
    assert 'headliner_opens_total{result="counted"} 1.0' in text
    assert 'headliner_opens_total{result="duplicate"} 1.0' in text
    assert (
        'headliner_request_duration_seconds_count{method="POST",'
        'route="/v1/experiments/{experiment_id}/decisions",status="201"} 2.0'
    ) in text


def test_unexpected_error_in_a_hot_route_is_a_500_in_the_metrics(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot routes run in the service middleware: a crash still answers 500 and is measured."""

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as crashing:
        created = crashing.post("/v1/experiments", json={"name": "x", "headlines": ["A", "B"]})
        monkeypatch.setattr(app.state.context.service, "_choose", crash)
        response = crashing.post(f"/v1/experiments/{created.json()['id']}/decisions")
        metrics = crashing.get("/metrics").text

    assert response.status_code == 500
    assert (
        'headliner_request_duration_seconds_count{method="POST",'
        'route="/v1/experiments/{experiment_id}/decisions",status="500"} 1.0'
    ) in metrics


def test_openapi_lists_the_v1_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    paths = set(schema["paths"])
    assert {
        "/v1/experiments",
        "/v1/experiments/{experiment_id}",
        "/v1/experiments/{experiment_id}/complete",
        "/v1/experiments/{experiment_id}/archive",
        "/v1/experiments/{experiment_id}/report",
        "/v1/experiments/{experiment_id}/arms",
        "/v1/experiments/{experiment_id}/arms/{arm}/retire",
        "/v1/experiments/{experiment_id}/decisions",
        "/v1/experiments/{experiment_id}/decisions/{decision_id}/open",
        "/v1/experiments/{experiment_id}/decisions/{decision_id}/outcome",
        "/v1/experiments/{experiment_id}/allocations",
        "/v1/experiments/{experiment_id}/allocations/{wave_id}/opens",
        "/health",
        "/ready",
        "/metrics",
    } <= paths
    decide = schema["paths"]["/v1/experiments/{experiment_id}/decisions"]["post"]
    assert "201" in decide["responses"] and "409" in decide["responses"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_every_v1_operation_documents_its_errors_in_one_shape(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    error = {"$ref": "#/components/schemas/ErrorPublic"}

    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "409", "413", "422"):
                documented = operation["responses"].get(code)
                assert documented is not None, (method, path, code)
                assert documented["content"]["application/json"]["schema"] == error
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"loc", "msg", "type"}


def test_docs_page(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()


@pytest.mark.parametrize("path", ["/nothing", "/v1", "/v2/experiments"])
def test_unknown_route_is_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/health"), ("delete", "/v1/experiments"), ("delete", "/v1/experiments/x/decisions")],
    ids=["post health", "delete experiments", "delete decisions"],
)
def test_wrong_method_is_405(client: TestClient, method: str, path: str) -> None:
    assert client.request(method.upper(), path).status_code == 405


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    huge = {"name": "x", "headlines": ["h" * 400 + str(i) for i in range(200)]}

    response = client.post("/v1/experiments", json=huge)

    assert response.status_code == 413
    assert "limit" in response.json()["detail"][0]["msg"]


def test_streamed_body_over_the_limit_is_413(settings: Settings, store: Store) -> None:
    small = settings.model_copy(update={"max_body_bytes": 100})
    app = create_app(small, store=store, clock=ManualClock())

    def chunks() -> Any:
        yield b'{"name": "x", '
        yield b'"headlines": ["' + b"a" * 200 + b'", "b"]}'

    with TestClient(app) as client:
        response = client.post(
            "/v1/experiments", content=chunks(), headers={"content-type": "application/json"}
        )

    assert response.status_code == 413


def test_one_json_log_line_per_request_without_secrets(settings: Settings, store: Store) -> None:
    verbose = settings.model_copy(update={"log_level": "INFO"})
    app = create_app(verbose, store=store, clock=ManualClock())
    logger = logging.getLogger("headliner")
    (handler,) = [h for h in logger.handlers if getattr(h, "_headliner", False)]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        with TestClient(app) as client:
            client.get("/health?token=secret", headers={"Authorization": "Bearer hl_secret"})
    finally:
        handler.setStream(previous)
        logger.setLevel("WARNING")

    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line]
    access = [entry for entry in lines if entry["logger"] == "headliner.access"]

    assert len(access) == 1
    assert access[0]["method"] == "GET"
    assert access[0]["path"] == "/health"
    assert access[0]["status"] == 200
    assert access[0]["duration_ms"] >= 0
    assert "secret" not in json.dumps(lines)


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql", "postgres"])
def test_service_migrates_its_own_postgres_database_whatever_the_url_spelling(
    scheme: str, unmigrated_postgres_url: str
) -> None:
    # postgres:// is what many hosting platforms hand out; the service must
    # migrate that database at start-up, not fail on its first query.
    url = sa.make_url(unmigrated_postgres_url).set(drivername=scheme)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url.render_as_string(hide_password=False),
        log_level="WARNING",
    )
    with TestClient(create_app(settings, clock=ManualClock())) as client:
        assert client.get("/ready").status_code == 200
        created = client.post("/v1/experiments", json={"name": "x", "headlines": ["a", "b"]})
        assert created.status_code == 201, created.text


def test_docs_work_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    # The page names only the service's own assets, and those assets are served.
    assert "cdn." not in page.text and "unpkg" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in page.text
        response = client.get(f"/static-offline-docs/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000
