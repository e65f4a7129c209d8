"""API keys: off until one exists, then every /v1 route needs a valid one."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from headliner.service.auth import create_key
from headliner.service.clock import ManualClock
from headliner.service.schemas import ErrorPublic
from headliner.storage.base import KeyScope, Store

V1_ROUTES = [
    ("get", "/v1/experiments"),
    ("post", "/v1/experiments"),
    ("get", "/v1/experiments/x"),
    ("get", "/v1/experiments/x/report"),
    ("post", "/v1/experiments/x/decisions"),
    ("post", "/v1/experiments/x/decisions/d/open"),
    ("post", "/v1/experiments/x/allocations"),
    ("post", "/v1/experiments/x/arms"),
]


def test_without_keys_v1_is_open(client: TestClient) -> None:
    assert client.get("/v1/experiments").status_code == 200


@pytest.mark.parametrize(("method", "path"), V1_ROUTES, ids=[f"{m} {p}" for m, p in V1_ROUTES])
def test_once_a_key_exists_every_v1_route_needs_it(
    client: TestClient, store: Store, clock: ManualClock, method: str, path: str
) -> None:
    create_key(store, "ci", clock.now())

    missing = client.request(method.upper(), path)
    unknown = client.request(method.upper(), path, headers={"Authorization": "Bearer hl_not_a_key"})
    basic = client.request(method.upper(), path, headers={"Authorization": "Basic dXNlcjpwdw=="})

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Missing API key" in missing.json()["detail"][0]["msg"]
    assert unknown.status_code == 401
    assert unknown.json()["detail"][0]["msg"] == "Unknown API key."
    assert basic.status_code == 401


def test_a_valid_key_passes_and_a_revoked_one_is_403(
    client: TestClient, store: Store, clock: ManualClock
) -> None:
    record, secret = create_key(store, "pipeline", clock.now())
    headers = {"Authorization": f"Bearer {secret}"}

    created = client.post(
        "/v1/experiments", json={"name": "x", "headlines": ["A", "B"]}, headers=headers
    )
    store.revoke_api_key(record.id, clock.now())
    revoked = client.get("/v1/experiments", headers=headers)

    assert secret.startswith("hl_")
    assert created.status_code == 201
    assert revoked.status_code == 403
    assert record.id in revoked.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/docs", "/openapi.json"])
def test_operational_routes_stay_public(
    client: TestClient, store: Store, clock: ManualClock, path: str
) -> None:
    create_key(store, "ci", clock.now())

    assert client.get(path).status_code == 200


def test_key_lookups_are_cached_for_the_ttl(
    client: TestClient, store: Store, clock: ManualClock
) -> None:
    context = client.app.state.context  # type: ignore[attr-defined]
    context.keys._ttl = 5.0  # the production default
    record, secret = create_key(store, "pipeline", clock.now())
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/experiments", headers=headers).status_code == 200

    store.revoke_api_key(record.id, clock.now())
    within = client.get("/v1/experiments", headers=headers)
    clock.advance(5.0)
    after = client.get("/v1/experiments", headers=headers)

    assert within.status_code == 200  # still cached
    assert after.status_code == 403  # the revocation took effect within the TTL


def test_a_read_only_key_reads_but_writes_nothing(
    client: TestClient, store: Store, clock: ManualClock
) -> None:
    _, full = create_key(store, "pipeline", clock.now())
    record, viewer = create_key(store, "viewer", clock.now(), scope=KeyScope.READ)
    body = {"name": "x", "headlines": ["A", "B"]}
    made = client.post("/v1/experiments", json=body, headers={"Authorization": f"Bearer {full}"})
    experiment_id = made.json()["id"]
    reader = {"Authorization": f"Bearer {viewer}"}

    listed = client.get("/v1/experiments", headers=reader)
    report = client.get(f"/v1/experiments/{experiment_id}/report", headers=reader)
    refused = [
        client.post("/v1/experiments", json=body, headers=reader),
        client.post(f"/v1/experiments/{experiment_id}/decisions", headers=reader),
        client.post(
            f"/v1/experiments/{experiment_id}/allocations", json={"sends": 10}, headers=reader
        ),
        client.request("DELETE", f"/v1/experiments/{experiment_id}", headers=reader),
    ]

    assert (listed.status_code, report.status_code) == (200, 200)
    for response in refused:
        assert response.status_code == 403
        error = ErrorPublic.model_validate(response.json()).detail[0]
        assert record.id in error.msg and "read-only" in error.msg
        assert error.loc == ["header", "authorization"]
    assert [e["id"] for e in listed.json()] == [experiment_id]  # nothing was created
    assert (
        client.get(f"/v1/experiments/{experiment_id}/report", headers=reader).json()["arms"][0][
            "sends"
        ]
        == 0
    )
