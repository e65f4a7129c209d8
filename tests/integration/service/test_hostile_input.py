"""Hostile input on every /v1 route: a JSON 4xx in the documented shape, naming the field.

Each case sends one malformed request (non-finite numbers, lone surrogates,
NUL and other control characters, bodies that are not UTF-8, booleans where an
index belongs, priors too small for the numerics) and checks the answer and
that nothing changed. The route table is read from the app, so a new /v1
route without a hostile case fails :func:`test_every_v1_route_has_a_hostile_case`.
Runs on SQLite and PostgreSQL (the ``client`` fixture is parametrized).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Route

from headliner.service.routes import fast
from headliner.service.schemas import ErrorPublic

EXPERIMENTS = "/v1/experiments"
EXPERIMENT = EXPERIMENTS + "/{experiment_id}"
DECISIONS = EXPERIMENT + "/decisions"
DECISION = DECISIONS + "/{decision_id}"
BY_KEY = DECISIONS + "/by-key/{idempotency_key:path}"
WAVES = EXPERIMENT + "/allocations"
WAVE = WAVES + "/{wave_id}"
PLANS = "/v1/plans"
PLAN_BODY = (
    '{"name": "n", "headlines": ["A", "B"], "open_rates": [0.1, 0.12], "list_size": 2000, '
    '"replications": 100, "recommend": false}'
)
NUL = "%00"  # percent-encoded in the URL; the route sees the NUL character


@dataclass(frozen=True)
class Case:
    """One hostile request: route template, method, what to send, the field to be named."""

    method: str
    route: str
    field: str
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # path parameters to replace

    @property
    def id(self) -> str:
        sent = self.content[:40].decode("utf-8", "backslashreplace") if self.content else ""
        extra = self.params or self.headers or self.ids
        return f"{self.method} {self.route} {sent}{extra or ''}"


def _json(text: str) -> bytes:
    return text.encode()


CASES = [
    # Experiments.
    Case(
        "POST",
        EXPERIMENTS,
        "alpha_prior",
        _json('{"name": "x", "headlines": ["A", "B"], "alpha_prior": Infinity}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "beta_prior",
        _json('{"name": "x", "headlines": ["A", "B"], "beta_prior": NaN}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "floor",
        _json('{"name": "x", "headlines": ["A", "B"], "floor": -Infinity}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "beta_prior",
        _json('{"name": "x", "headlines": ["A", "B"], "beta_prior": 1e-300}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "alpha_prior",
        _json('{"name": "x", "headlines": ["A", "B"], "alpha_prior": 1e-300}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "beta_prior",
        _json('{"name": "x", "headlines": ["A", "B"], "beta_prior": 1.4e283}'),
    ),
    Case("POST", EXPERIMENTS, "headlines", _json('{"name": "x", "headlines": ["\\ud800", "B"]}')),
    Case("POST", EXPERIMENTS, "name", _json('{"name": "x\\u0000y", "headlines": ["A", "B"]}')),
    Case("POST", EXPERIMENTS, "headlines", _json('{"name": "x", "headlines": ["A\\u0000", "B"]}')),
    Case(
        "POST",
        EXPERIMENTS,
        "burn_in_per_arm",
        _json('{"name": "x", "headlines": ["A", "B"], "burn_in_per_arm": true}'),
    ),
    Case(
        "POST",
        EXPERIMENTS,
        "enabled",
        _json('{"name": "x", "headlines": ["A", "B"], "stopping": {"enabled": 1}}'),
    ),
    Case("POST", EXPERIMENTS, "body", b"\xff\xfe"),
    Case("GET", EXPERIMENTS, "include_archived", params={"include_archived": "\x00"}),
    Case("GET", EXPERIMENT, "experiment_id", ids={"experiment_id": NUL}),
    Case("POST", EXPERIMENT + "/complete", "winner_arm", _json('{"winner_arm": false}')),
    Case("POST", EXPERIMENT + "/complete", "winner_arm", _json('{"winner_arm": NaN}')),
    Case(
        "POST", EXPERIMENT + "/complete", "winner_headline", _json('{"winner_headline": "\\ud800"}')
    ),
    Case("POST", EXPERIMENT + "/archive", "experiment_id", ids={"experiment_id": NUL}),
    Case("GET", EXPERIMENT + "/report", "snapshots", params={"snapshots": "NaN"}),
    Case("GET", EXPERIMENT + "/report", "experiment_id", ids={"experiment_id": "a" + NUL}),
    # Arms.
    Case("POST", EXPERIMENT + "/arms", "headline", _json('{"headline": "\\u0000"}')),
    Case("POST", EXPERIMENT + "/arms", "headline", _json('{"headline": "\\udfff"}')),
    Case("POST", EXPERIMENT + "/arms/{arm}/retire", "arm", ids={"arm": "false"}),
    Case("POST", EXPERIMENT + "/arms/{arm}/retire", "arm", ids={"arm": NUL}),
    # Per-send decisions and outcomes (the first two routes are the fast ones).
    Case("POST", DECISIONS, "body", b"\xff\xfe"),
    Case("POST", DECISIONS, "recipient_id", _json('{"recipient_id": "\\ud800"}')),
    Case("POST", DECISIONS, "recipient_id", _json('{"recipient_id": "r\\u0000"}')),
    Case("POST", DECISIONS, "recipient_id", _json('{"recipient_id": NaN}')),
    Case("POST", DECISIONS, "idempotency_key", _json('{"idempotency_key": "k\\u0000"}')),
    Case("POST", DECISIONS, "idempotency-key", headers={"Idempotency-Key": "k\x00"}),
    Case("POST", DECISIONS, "experiment_id", ids={"experiment_id": NUL}),
    Case("GET", DECISION, "decision_id", ids={"decision_id": NUL}),
    Case("POST", DECISION + "/open", "decision_id", ids={"decision_id": NUL}),
    Case("POST", DECISION + "/open", "experiment_id", ids={"experiment_id": "x" + NUL}),
    Case("GET", DECISIONS, "after", params={"after": "a\x00"}),
    Case("GET", DECISIONS, "after", params={"after": "0" * 32}),  # no such decision
    Case("GET", DECISIONS, "limit", params={"limit": "0"}),
    Case("GET", DECISIONS, "limit", params={"limit": "NaN"}),
    Case("GET", DECISIONS, "limit", params={"limit": "1001"}),
    Case("GET", BY_KEY, "idempotency_key", ids={"idempotency_key": "k" + NUL}),
    Case("GET", BY_KEY, "idempotency_key", ids={"idempotency_key": "k" * 256}),
    Case("POST", BY_KEY + "/open", "idempotency_key", ids={"idempotency_key": NUL}),
    Case("POST", BY_KEY + "/open", "idempotency_key", ids={"idempotency_key": "esc%1B"}),
    Case("POST", BY_KEY + "/open", "experiment_id", ids={"experiment_id": "x" + NUL}),
    Case("POST", DECISION + "/events", "type", _json('{"type": "bounce"}')),
    Case("POST", DECISION + "/events", "type", _json('{"type": NaN}')),
    Case("POST", DECISION + "/events", "machine", _json('{"type": "open", "machine": 1}')),
    Case(
        "POST",
        DECISION + "/events",
        "user_agent",
        _json('{"type": "open", "user_agent": "Mozilla\\u0000"}'),
    ),
    Case(
        "POST",
        DECISION + "/events",
        "user_agent",
        _json('{"type": "open", "user_agent": "\\ud800"}'),
    ),
    Case(
        "POST",
        DECISION + "/events",
        "proxy_address",
        _json('{"type": "open", "proxy_address": "17.58.0.300"}'),
    ),
    Case(
        "POST",
        DECISION + "/events",
        "proxy_address",
        _json('{"type": "open", "proxy_address": "1.2.3.4\\u0000"}'),
    ),
    Case("POST", DECISION + "/events", "body", b"\xff\xfe"),
    Case("POST", DECISION + "/events", "decision_id", ids={"decision_id": NUL}),
    Case("POST", BY_KEY + "/events", "idempotency_key", ids={"idempotency_key": "k" + NUL}),
    Case("POST", BY_KEY + "/events", "machine", _json('{"type": "open", "machine": "false"}')),
    Case(
        "POST",
        BY_KEY + "/events",
        "proxy_address",
        _json('{"type": "open", "machine": true, "proxy_address": "apple.com"}'),
    ),
    Case("POST", DECISION + "/outcome", "reward", _json('{"reward": NaN}')),
    Case("POST", DECISION + "/outcome", "reward", _json('{"reward": true}')),
    Case("POST", DECISION + "/outcome", "reward", _json('{"reward": Infinity}')),
    # Waves.
    Case("POST", WAVES, "sends", _json('{"sends": NaN}')),
    Case("POST", WAVES, "sends", _json('{"sends": true}')),
    Case("POST", WAVES, "body", b"\xff\xfe"),
    Case("GET", WAVE, "wave_id", ids={"wave_id": NUL}),
    Case("POST", WAVE + "/opens", "arm", _json('{"opens": [{"arm": false, "opens": 1}]}')),
    Case("POST", WAVE + "/opens", "opens", _json('{"opens": [{"arm": 0, "opens": NaN}]}')),
    Case(
        "POST",
        WAVE + "/opens",
        "headline",
        _json('{"opens": [{"headline": "\\u0000", "opens": 1}]}'),
    ),  # Plans (nothing is stored; the observable state must not change either).
    Case("POST", PLANS, "open_rates", _json(PLAN_BODY.replace("0.12]", "NaN]"))),
    Case("POST", PLANS, "headlines", _json(PLAN_BODY.replace('"A"', '"\\ud800"'))),
    Case("POST", PLANS, "name", _json(PLAN_BODY.replace('"n"', '"n\\u0000"'))),
    Case("POST", PLANS, "replications", _json(PLAN_BODY.replace("100,", "100000,"))),
    Case("POST", PLANS, "body", b"\xff\xfe"),
]


def _v1_routes(routes: list[Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router, unflattened
        if included is not None:
            found |= _v1_routes(included.routes)
        elif isinstance(route, Route) and route.path.startswith("/v1"):
            found.update((method, route.path) for method in route.methods or () if method != "HEAD")
    return found


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    """An experiment with a decision and a wave: the ids the cases aim at."""
    created = client.post(EXPERIMENTS, json={"name": "Spring sale", "headlines": ["A", "B"]})
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    decision = client.post(
        f"{EXPERIMENTS}/{experiment_id}/decisions", headers={"Idempotency-Key": "send-1"}
    )
    assert decision.status_code == 201, decision.text
    wave = client.post(f"{EXPERIMENTS}/{experiment_id}/allocations", json={"sends": 100})
    assert wave.status_code == 201, wave.text
    return {
        "experiment_id": experiment_id,
        "decision_id": decision.json()["decision_id"],
        "wave_id": wave.json()["wave_id"],
        "idempotency_key": "send-1",
        "arm": "0",
    }


def _observable_state(client: TestClient, ids: dict[str, str]) -> dict[str, Any]:
    experiment_id = ids["experiment_id"]
    listed = client.get(EXPERIMENTS, params={"include_archived": "true"}).json()
    report = client.get(f"{EXPERIMENTS}/{experiment_id}/report").json()
    wave = client.get(f"{EXPERIMENTS}/{experiment_id}/allocations/{ids['wave_id']}").json()
    decision = client.get(f"{EXPERIMENTS}/{experiment_id}/decisions/{ids['decision_id']}").json()
    log = client.get(f"{EXPERIMENTS}/{experiment_id}/decisions").json()
    counted = (
        "arm", "headline", "active", "sends", "opens", "non_opens", "late_opens", "open_events",
        "machine_opens",
    )  # fmt: skip
    return {
        "experiments": listed,
        "arms": [{k: arm[k] for k in counted} for arm in report["arms"]],
        "wave": wave,
        "decision": decision,
        "log": log,
    }


def _send(client: TestClient, case: Case, ids: dict[str, str]) -> Any:
    # Without the converters of the route's template ({key:path}).
    path = re.sub(r":\w+}", "}", case.route).format(**{**ids, **case.ids})
    headers = {"content-type": "application/json", **case.headers}
    return client.request(
        case.method, path, content=case.content, params=case.params, headers=headers
    )


def _assert_refused(response: Any, case: Case) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = ErrorPublic.model_validate(response.json())
    assert body.detail, response.text
    named = [str(part) for error in body.detail for part in error.loc] + [
        error.msg for error in body.detail
    ]
    assert any(case.field in text for text in named), (case.field, response.text)


def test_every_v1_route_has_a_hostile_case(app: FastAPI) -> None:
    covered = {(case.method, case.route) for case in CASES}
    served = _v1_routes(app.routes)
    assert len(served) >= 15  # the walk found the included routers' routes
    assert served - covered == set()
    assert covered - served == set(), "a case names a route the app does not have"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_request_is_refused_and_changes_nothing(
    client: TestClient, world: dict[str, str], case: Case
) -> None:
    before = _observable_state(client, world)

    response = _send(client, case, world)

    _assert_refused(response, case)
    assert _observable_state(client, world) == before


_HOT = [case for case in CASES if case.route in (DECISIONS, DECISION + "/open")]


@pytest.mark.parametrize("case", _HOT, ids=[case.id for case in _HOT])
def test_fast_routes_and_their_twins_refuse_alike(
    client: TestClient, world: dict[str, str], app: FastAPI, case: Case
) -> None:
    fast_answer = _send(client, case, world)
    routes = list(app.router.routes)
    app.router.routes[:] = [
        r for r in routes if getattr(r, "endpoint", None) not in (fast.fast_decide, fast.fast_open)
    ]
    try:
        twin_answer = _send(client, case, world)
    finally:
        app.router.routes[:] = routes

    _assert_refused(fast_answer, case)
    _assert_refused(twin_answer, case)
    assert fast_answer.status_code == twin_answer.status_code
    fast_types = [e["type"] for e in fast_answer.json()["detail"]]
    twin_types = [e["type"] for e in twin_answer.json()["detail"]]
    assert fast_types == twin_types, (fast_answer.text, twin_answer.text)
