"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every operation gets requests that fit the document (positive) and requests
that break it (negative), in-process against the ASGI app on SQLite. Path
parameters point at a live experiment, decision and wave most of the time, so
the requests reach the domain code instead of stopping at 404s. No answer may
be a 5xx, use an undocumented status or content type, or break its documented
schema. Derandomized with a bounded number of examples: the same requests on
every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from headliner.service.app import create_app
from headliner.service.clock import ManualClock
from headliner.service.settings import Settings
from headliner.storage.sql import SqlStore

EXAMPLES_PER_OPERATION = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_app(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The app on a fresh SQLite file, running, with an experiment, a keyed decision and a wave."""
    from headliner.storage.migrate import upgrade

    path: Path = tmp_path_factory.mktemp("fuzz") / "headliner.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    store = SqlStore(url)
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        posterior_refresh_seconds=0.0,
        snapshot_interval_seconds=0.0,
        report_cache_seconds=0.0,
        api_key_cache_seconds=0.0,
        seed=7,
        log_level="ERROR",
    )
    app = create_app(config, store=store, clock=ManualClock())
    with TestClient(app) as client:
        created = client.post("/v1/experiments", json={"name": "fuzz", "headlines": ["A", "B"]})
        experiment_id = created.json()["id"]
        decision = client.post(
            f"/v1/experiments/{experiment_id}/decisions", headers={"Idempotency-Key": "send-1"}
        ).json()
        wave = client.post(f"/v1/experiments/{experiment_id}/allocations", json={"sends": 100})
        ids = {
            "experiment_id": experiment_id,
            "decision_id": decision["decision_id"],
            "wave_id": wave.json()["wave_id"],
            "idempotency_key": "send-1",
        }
        yield app, ids
    store.close()


def _operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _has_inputs(operation: Any) -> bool:
    return bool(operation.path_parameters or operation.query or operation.headers or operation.body)


def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    fuzzed_app: tuple[FastAPI, dict[str, str]],
) -> None:
    app, ids = fuzzed_app
    operations = _operations(app)
    assert len(operations) >= 17  # every route of the document, /v1 and operations
    failures: dict[str, str] = {}
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if _has_inputs(operation):  # nothing to break in an operation without inputs
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode), aimed=st.booleans())
            def fuzz(case: Any, aimed: bool) -> None:
                if aimed and case.path_parameters:
                    for name in case.path_parameters:
                        if name in ids:
                            case.path_parameters[name] = ids[name]
                response = case.call()
                case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except Exception as exc:  # collect all, report together
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
