"""Experiments and arms over HTTP: create, list, get, complete, archive, add, retire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

NewExperiment = Callable[..., dict[str, Any]]


def test_create_returns_the_experiment_with_defaults(client: TestClient) -> None:
    response = client.post("/v1/experiments", json={"name": "Spring", "headlines": ["A", "B"]})

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "burn_in"  # no evidence yet: 100 effective sends each first
    assert body["policy"] == "thompson"
    assert body["attribution_window_seconds"] == 72 * 3600
    assert (body["burn_in_per_arm"], body["burn_in_share"]) == (100, 1.0)
    assert body["delay_prior"] == {
        "median_seconds": 3 * 3600.0,
        "p95_seconds": 36 * 3600.0,
        "weight": 5.0,
    }
    assert [h["headline"] for h in body["headlines"]] == ["A", "B"]
    assert body["stopping"] == {
        "enabled": True,
        "p_best_threshold": 0.99,
        "value_remaining_threshold": 0.01,
        "value_remaining_quantile": 0.97,
        "require": "any",
        "min_opens": 100,
        "check_interval_seconds": 3600.0,
        "rate_spread": 0.1,
    }
    assert body["winner_arm"] is None


@pytest.mark.parametrize(
    ("policy", "stored"),
    [("uniform", "uniform"), ("top_two", "top_two"), ("top-two", "top_two")],
    ids=["uniform", "top_two", "top-two spelling"],
)
def test_create_accepts_each_service_policy(
    new_experiment: NewExperiment, policy: str, stored: str
) -> None:
    assert new_experiment(policy=policy)["policy"] == stored


def test_status_is_burn_in_until_every_headline_has_its_evidence(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(headlines=["A", "B"], burn_in_per_arm=2)
    assert experiment["status"] == "burn_in"
    path = f"/v1/experiments/{experiment['id']}"

    decisions = [client.post(f"{path}/decisions").json() for _ in range(8)]
    # Eight sends with no outcome yet carry no evidence: still burning in.
    assert client.get(path).json()["status"] == "burn_in"
    for decision in decisions:
        client.post(f"{path}/decisions/{decision['decision_id']}/outcome", json={"reward": 0})

    assert client.get(path).json()["status"] == "running"


def test_list_is_newest_first_and_hides_archived(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    first = new_experiment(name="first")
    second = new_experiment(name="second")
    client.post(f"/v1/experiments/{first['id']}/archive")

    listed = client.get("/v1/experiments").json()
    everything = client.get("/v1/experiments", params={"include_archived": True}).json()

    assert [e["id"] for e in listed] == [second["id"]]
    assert {e["id"] for e in everything} == {first["id"], second["id"]}


def test_complete_by_hand_names_the_winner_and_stops_decisions(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    done = client.post(
        f"/v1/experiments/{experiment['id']}/complete", json={"winner_headline": "B"}
    )
    decision = client.post(f"/v1/experiments/{experiment['id']}/decisions")

    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    assert done.json()["winner_arm"] == 1
    assert done.json()["winner_headline"] == "B"
    assert decision.status_code == 409
    assert "completed" in decision.json()["detail"][0]["msg"]


def test_completing_twice_is_a_conflict(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/complete"
    client.post(url, json={"winner_arm": 0})

    again = client.post(url, json={"winner_arm": 0})

    assert again.status_code == 409


def test_archive_stops_decisions_and_archiving_twice_conflicts(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"

    archived = client.post(f"{url}/archive")

    assert archived.json()["status"] == "archived"
    assert client.post(f"{url}/decisions").status_code == 409
    assert client.post(f"{url}/allocations", json={"sends": 10}).status_code == 409
    assert client.post(f"{url}/archive").status_code == 409


def test_added_headline_takes_the_next_position_and_gets_sends(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(headlines=["A", "B"], burn_in_per_arm=1)
    url = f"/v1/experiments/{experiment['id']}"

    added = client.post(f"{url}/arms", json={"headline": "  New one  "})
    arms = {client.post(f"{url}/decisions").json()["arm"] for _ in range(3)}

    assert added.status_code == 201
    assert added.json() == {
        "arm": 2,
        "headline": "New one",
        "active": True,
        "created_at": added.json()["created_at"],
        "retired_at": None,
    }
    assert arms == {0, 1, 2}  # burn-in gives the new headline its send at once


def test_retired_headline_gets_no_sends_but_stays_in_the_report(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"
    first = client.post(f"{url}/decisions").json()

    retired = client.post(f"{url}/arms/{first['arm']}/retire")
    arms = {client.post(f"{url}/decisions").json()["arm"] for _ in range(30)}
    report = client.get(f"{url}/report").json()

    assert retired.json()["active"] is False
    assert first["arm"] not in arms
    line = report["arms"][first["arm"]]
    assert line["active"] is False
    assert line["sends"] == 1
    assert line["p_best"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"headlines": ["A", "B"]}, "name"),
        ({"name": "x", "headlines": ["A"]}, "headlines"),
        ({"name": "x", "headlines": ["A", "A"]}, "headlines"),
        ({"name": "x", "headlines": ["A", ""]}, "headlines"),
        ({"name": "x", "headlines": ["A", "B"], "policy": "ucb9"}, "policy"),
        ({"name": "x", "headlines": ["A", "B"], "alpha_prior": 0}, "alpha_prior"),
        ({"name": "x", "headlines": ["A", "B"], "attribution_window_seconds": -1}, None),
        ({"name": "x", "headlines": ["A", "B"], "floor": 0.6}, "floor"),
        ({"name": "x", "headlines": ["A", "B"], "burn_in_per_arm": -1}, "burn_in_per_arm"),
        ({"name": "x", "headlines": ["A", "B"], "winner_exploration": 2}, None),
        ({"name": "x", "headlines": ["A", "B"], "stopping": {"p_best_threshold": 0.3}}, None),
        (
            {
                "name": "x",
                "headlines": ["A", "B"],
                "stopping": {"p_best_threshold": None, "value_remaining_threshold": None},
            },
            "stopping",
        ),
        ({"name": "x", "headlines": ["A", "B"], "surprise": 1}, "surprise"),
    ],
    ids=[
        "no name",
        "one headline",
        "duplicate headlines",
        "blank headline",
        "unknown policy",
        "zero prior",
        "negative window",
        "floor too high",
        "negative burn-in",
        "exploration above 1",
        "p_best threshold below 0.5",
        "no stopping criterion",
        "unknown field",
    ],
)
def test_create_rejects_bad_input_with_field_messages(
    client: TestClient, body: dict[str, Any], field: str | None
) -> None:
    response = client.post("/v1/experiments", json=body)

    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors and all("msg" in e and "loc" in e for e in errors)
    if field is not None:
        assert any(field in e["loc"] for e in errors), errors


def test_leader_probability_is_only_for_top_two(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments",
        json={"name": "x", "headlines": ["A", "B"], "leader_probability": 0.7},
    )

    assert response.status_code == 422
    assert "leader_probability" in response.json()["detail"][0]["msg"]


def test_complete_needs_exactly_one_winner_field(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/complete"

    assert client.post(url, json={}).status_code == 422
    assert client.post(url, json={"winner_arm": 0, "winner_headline": "A"}).status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/experiments/missing"),
        ("get", "/v1/experiments/missing/report"),
        ("post", "/v1/experiments/missing/archive"),
        ("post", "/v1/experiments/missing/decisions"),
        ("post", "/v1/experiments/missing/allocations"),
        ("post", "/v1/experiments/missing/arms/0/retire"),
    ],
    ids=["get", "report", "archive", "decide", "allocate", "retire"],
)
def test_unknown_experiment_is_404(client: TestClient, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {"sends": 5}} if path.endswith("allocations") else {}

    response = client.request(method.upper(), path, **kwargs)

    assert response.status_code == 404
    assert "missing" in response.json()["detail"][0]["msg"]


def test_unknown_headline_is_404(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"

    assert client.post(f"{url}/arms/7/retire").status_code == 404
    assert client.post(f"{url}/complete", json={"winner_headline": "Z"}).status_code == 404


def test_arm_conflicts(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment(headlines=["A", "B"], floor=0.5)
    url = f"/v1/experiments/{experiment['id']}"

    duplicate = client.post(f"{url}/arms", json={"headline": "A"})
    no_room = client.post(f"{url}/arms", json={"headline": "C"})
    client.post(f"{url}/arms/0/retire")
    last = client.post(f"{url}/arms/1/retire")

    assert duplicate.status_code == 409
    assert no_room.status_code == 409
    assert "floor" in no_room.json()["detail"][0]["msg"]
    assert last.status_code == 409
    assert "last" in last.json()["detail"][0]["msg"]


def test_the_declared_winner_cannot_be_retired_and_no_arm_added_after_it(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"
    client.post(f"{url}/complete", json={"winner_arm": 2})

    assert client.post(f"{url}/arms/2/retire").status_code == 409
    assert client.post(f"{url}/arms", json={"headline": "D"}).status_code == 409
