"""Per-send decisions, opens and explicit outcomes over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from headliner.service.app import create_app
from headliner.service.clock import ManualClock
from headliner.service.schemas import iso_time
from headliner.service.settings import Settings
from headliner.storage.base import Store

NewExperiment = Callable[..., dict[str, Any]]
HOUR = 3600.0


def _decide(client: TestClient, experiment_id: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post(f"/v1/experiments/{experiment_id}/decisions", **kwargs)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def test_decision_returns_id_arm_headline_and_propensity(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions", json={"recipient_id": "r-1"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["headline"] == ["A", "B", "C"][body["arm"]]
    assert body["propensity"] == pytest.approx(1 / 3)  # no data yet: every arm equally likely
    assert body["recipient_id"] == "r-1"
    assert body["replayed"] is False
    logged = client.get(f"/v1/experiments/{experiment['id']}/decisions/{body['decision_id']}")
    assert logged.json() == body


def test_decision_without_a_body_is_fine(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()

    assert client.post(f"/v1/experiments/{experiment['id']}/decisions").status_code == 201


@pytest.mark.parametrize("where", ["header", "body"])
def test_retried_decision_with_idempotency_key_returns_the_same_decision(
    client: TestClient, new_experiment: NewExperiment, where: str
) -> None:
    experiment = new_experiment()
    kwargs: dict[str, Any] = (
        {"headers": {"Idempotency-Key": "send-42"}}
        if where == "header"
        else {"json": {"idempotency_key": "send-42"}}
    )

    first = client.post(f"/v1/experiments/{experiment['id']}/decisions", **kwargs)
    replays = [
        client.post(f"/v1/experiments/{experiment['id']}/decisions", **kwargs) for _ in range(5)
    ]
    report = client.get(f"/v1/experiments/{experiment['id']}/report").json()

    assert first.status_code == 201
    assert {r.status_code for r in replays} == {200}
    assert {r.json()["decision_id"] for r in replays} == {first.json()["decision_id"]}
    assert all(r.json()["replayed"] for r in replays)
    assert sum(a["sends"] for a in report["arms"]) == 1


@pytest.mark.parametrize(
    ("where", "loc"),
    [("header", ["header", "idempotency-key"]), ("body", ["body", "idempotency_key"])],
)
def test_a_key_reused_for_a_different_request_is_409_and_stores_nothing(
    client: TestClient, new_experiment: NewExperiment, where: str, loc: list[str]
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"

    def send(recipient: str | None) -> Any:
        body: dict[str, Any] = {} if recipient is None else {"recipient_id": recipient}
        if where == "header":
            return client.post(url, json=body, headers={"Idempotency-Key": "send-7"})
        return client.post(url, json={**body, "idempotency_key": "send-7"})

    first = send("r-1")
    retry = send("r-1")
    other = send("r-2")
    without = send(None)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == {**first.json(), "replayed": True}
    for reused in (other, without):
        assert reused.status_code == 409, reused.text
        (error,) = reused.json()["detail"]
        assert error["loc"] == loc
        assert error["type"] == "conflict"
        assert "Idempotency-Key was already used for a different request" in error["msg"]
    report = client.get(f"/v1/experiments/{experiment['id']}/report").json()
    assert sum(a["sends"] for a in report["arms"]) == 1


def test_a_key_reused_for_a_different_request_is_409_after_completion(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"
    first = client.post(f"{url}/decisions", json={"idempotency_key": "k", "recipient_id": "a"})
    client.post(f"{url}/complete", json={"winner_arm": 0})

    replay = client.post(f"{url}/decisions", json={"idempotency_key": "k", "recipient_id": "a"})
    reused = client.post(f"{url}/decisions", json={"idempotency_key": "k", "recipient_id": "b"})

    assert replay.status_code == 200
    assert replay.json()["decision_id"] == first.json()["decision_id"]
    assert reused.status_code == 409
    assert reused.json()["detail"][0]["loc"] == ["body", "idempotency_key"]


def test_idempotency_key_in_header_and_body_must_agree(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions",
        headers={"Idempotency-Key": "a"},
        json={"idempotency_key": "b"},
    )

    assert response.status_code == 422


def test_open_is_counted_once_then_duplicate(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=HOUR)
    decision = _decide(client, experiment["id"])
    url = f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/open"

    first = client.post(url)
    second = client.post(url)
    report = client.get(f"/v1/experiments/{experiment['id']}/report").json()

    assert first.json() == {
        "decision_id": decision["decision_id"],
        "result": "counted",
        "counted": True,
    }
    assert second.json()["result"] == "duplicate"
    line = report["arms"][decision["arm"]]
    # Counted at once for the decision posterior; matured only with its window.
    assert (line["opens"], line["pending"]) == (1, 0)
    assert (line["matured_sends"], line["matured_opens"]) == (0, 0)


def test_send_is_pending_until_the_window_passes_then_a_non_open(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=HOUR)
    decision = _decide(client, experiment["id"])
    report_url = f"/v1/experiments/{experiment['id']}/report"

    before = client.get(report_url).json()["arms"][decision["arm"]]
    clock.advance(HOUR + 1)
    after = client.get(report_url).json()["arms"][decision["arm"]]

    assert (before["pending"], before["non_opens"]) == (1, 0)
    assert (after["pending"], after["non_opens"], after["matured_sends"]) == (0, 1, 1)


def test_open_after_the_window_is_late_stored_not_counted(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=HOUR)
    decision = _decide(client, experiment["id"])
    clock.advance(2 * HOUR)

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/open"
    )
    again = client.post(
        f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/open"
    )
    line = client.get(f"/v1/experiments/{experiment['id']}/report").json()["arms"][decision["arm"]]

    assert response.json()["result"] == "late"
    assert response.json()["counted"] is False
    assert again.json()["result"] == "duplicate"
    assert (line["opens"], line["non_opens"], line["late_opens"]) == (0, 1, 1)


def test_explicit_outcomes_settle_at_once(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"
    zero = _decide(client, experiment["id"])
    one = _decide(client, experiment["id"])

    r0 = client.post(f"{url}/{zero['decision_id']}/outcome", json={"reward": 0})
    r1 = client.post(f"{url}/{one['decision_id']}/outcome", json={"reward": 1})
    repeat = client.post(f"{url}/{one['decision_id']}/outcome", json={"reward": 1})
    clash = client.post(f"{url}/{one['decision_id']}/outcome", json={"reward": 0})
    arms = client.get(f"/v1/experiments/{experiment['id']}/report").json()["arms"]

    assert r0.json() == {"decision_id": zero["decision_id"], "reward": 0, "recorded": True}
    assert r1.json()["recorded"] is True
    assert repeat.json()["recorded"] is False
    assert clash.status_code == 409
    assert sum(a["opens"] for a in arms) == 1
    assert sum(a["non_opens"] for a in arms) == 1
    assert sum(a["pending"] for a in arms) == 0


@pytest.mark.parametrize(
    "reward", [2, -1, "1", 0.5, True, None], ids=["2", "-1", "string", "half", "bool", "null"]
)
def test_outcome_must_be_0_or_1(
    client: TestClient, new_experiment: NewExperiment, reward: object
) -> None:
    experiment = new_experiment()
    decision = _decide(client, experiment["id"])

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/outcome",
        json={"reward": reward},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "reward"]


def test_unknown_decision_is_404(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions/nope"

    assert client.post(f"{url}/open").status_code == 404
    assert client.post(f"{url}/outcome", json={"reward": 1}).status_code == 404
    assert client.get(url).status_code == 404


def test_open_for_another_experiments_decision_is_409(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    mine = new_experiment(name="mine")
    theirs = new_experiment(name="theirs")
    decision = _decide(client, theirs["id"])
    url = f"/v1/experiments/{mine['id']}/decisions/{decision['decision_id']}"

    opened = client.post(f"{url}/open")
    outcome = client.post(f"{url}/outcome", json={"reward": 1})

    assert opened.status_code == 409
    assert (
        "another experiment" in opened.json()["detail"][0]["msg"]
        or theirs["id"] in opened.json()["detail"][0]["msg"]
    )
    assert outcome.status_code == 409
    assert client.get(url).status_code == 404


def test_opens_keep_arriving_after_completion(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    decision = _decide(client, experiment["id"])
    client.post(f"/v1/experiments/{experiment['id']}/complete", json={"winner_arm": 0})

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions/{decision['decision_id']}/open"
    )

    assert response.json()["result"] == "counted"


def test_a_stale_worker_gets_409_after_completion_and_replays_still_answer(
    client: TestClient,
    new_experiment: NewExperiment,
    settings: Settings,
    store: Store,
    clock: ManualClock,
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}"
    # A second worker on the same database, reusing its cached state for a minute.
    stale_settings = settings.model_copy(update={"posterior_refresh_seconds": 60.0})
    with TestClient(create_app(stale_settings, store=store, clock=clock)) as stale:
        first = stale.post(f"{url}/decisions", headers={"Idempotency-Key": "k1"})
        done = client.post(f"{url}/complete", json={"winner_arm": 0})
        refused = stale.post(f"{url}/decisions")
        replay = stale.post(f"{url}/decisions", headers={"Idempotency-Key": "k1"})
        replay_elsewhere = client.post(f"{url}/decisions", headers={"Idempotency-Key": "k1"})
        new_key = stale.post(f"{url}/decisions", headers={"Idempotency-Key": "k2"})

    assert (first.status_code, done.status_code) == (201, 200)
    assert refused.status_code == 409
    assert "is completed: it makes no more decisions" in refused.json()["detail"][0]["msg"]
    assert replay.status_code == replay_elsewhere.status_code == 200
    assert replay.json() == replay_elsewhere.json() == {**first.json(), "replayed": True}
    assert new_key.status_code == 409
    report = client.get(f"{url}/report").json()
    assert sum(a["sends"] for a in report["arms"]) == 1


@pytest.mark.parametrize(
    "body",
    [{"recipient_id": ""}, {"recipient_id": "x" * 300}, {"idempotency_key": ""}, {"extra": 1}],
    ids=["empty recipient", "long recipient", "empty key", "unknown field"],
)
def test_decision_body_is_validated(
    client: TestClient, new_experiment: NewExperiment, body: dict[str, Any]
) -> None:
    experiment = new_experiment()

    response = client.post(f"/v1/experiments/{experiment['id']}/decisions", json=body)

    assert response.status_code == 422


def test_malformed_json_is_422(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422


@pytest.mark.parametrize("key", ["", "k" * 256], ids=["empty", "too long"])
def test_idempotency_key_header_is_validated(
    client: TestClient, new_experiment: NewExperiment, key: str
) -> None:
    experiment = new_experiment()

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions", headers={"Idempotency-Key": key}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


def test_field_errors_name_the_body_field(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    response = client.post(
        f"/v1/experiments/{experiment['id']}/decisions", json={"recipient_id": 42}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "recipient_id"]


# --- by the caller's send key ------------------------------------------------------------
@pytest.mark.parametrize("key", ["msg-1", "<0100018f.a1@email.example.com>", "esp/2024 #7?x=1"])
def test_a_decision_is_found_and_opened_by_its_send_key(
    client: TestClient, new_experiment: NewExperiment, key: str
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"
    made = client.post(url, headers={"Idempotency-Key": key}, json={"recipient_id": "r"}).json()
    by_key = f"{url}/by-key/{quote(key, safe='')}"

    found = client.get(by_key)
    first = client.post(f"{by_key}/open")
    again = client.post(f"{by_key}/open")
    by_id = client.post(f"{url}/{made['decision_id']}/open")

    assert found.status_code == 200, found.text
    assert found.json() == made
    assert first.json() == {
        "decision_id": made["decision_id"],
        "result": "counted",
        "counted": True,
    }
    assert again.json()["result"] == by_id.json()["result"] == "duplicate"
    report = client.get(f"/v1/experiments/{experiment['id']}/report").json()
    assert sum(a["opens"] for a in report["arms"]) == 1


def test_an_unknown_send_key_is_404_and_stores_nothing(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"
    client.post(url, headers={"Idempotency-Key": "known"})

    for response in (client.get(f"{url}/by-key/nope"), client.post(f"{url}/by-key/nope/open")):
        assert response.status_code == 404
        assert "No decision with this idempotency key" in response.json()["detail"][0]["msg"]
    assert client.get("/v1/experiments/nope/decisions/by-key/known").status_code == 404
    assert client.get(url).json()["decisions"][0]["opened_at"] is None


# --- the decision log --------------------------------------------------------------------
def test_the_decision_log_pages_oldest_first_with_what_became_of_each_send(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment()
    url = f"/v1/experiments/{experiment['id']}/decisions"
    made = []
    for i in range(7):
        made.append(_decide(client, experiment["id"], json={"recipient_id": f"r{i}"}))
        clock.advance(1.0 if i != 3 else 0.0)  # two decisions at the same time
    opened_at = clock.now()
    client.post(f"{url}/{made[2]['decision_id']}/open")
    client.post(f"{url}/{made[4]['decision_id']}/outcome", json={"reward": 0})

    pages, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 3} if after is None else {"limit": 3, "after": after}
        response = client.get(url, params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json()["decisions"])
        after = response.json()["next_after"]
        if after is None:
            break

    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [row for page in pages for row in page]
    assert sorted(r["decision_id"] for r in listed) == sorted(d["decision_id"] for d in made)
    assert [(r["created_at"], r["decision_id"]) for r in listed] == sorted(
        (r["created_at"], r["decision_id"]) for r in listed
    )
    by_id = {r["decision_id"]: r for r in listed}
    for d in made:
        row = by_id[d["decision_id"]]
        assert {k: row[k] for k in ("arm", "headline", "propensity", "recipient_id")} == {
            k: d[k] for k in ("arm", "headline", "propensity", "recipient_id")
        }
        assert row["created_at"] == d["created_at"]
    # Times are ISO 8601 in UTC, which sort as the times they are.
    assert by_id[made[2]["decision_id"]]["opened_at"] == iso_time(opened_at)
    assert made[0]["created_at"].endswith("Z") and "T" in made[0]["created_at"]
    assert by_id[made[2]["decision_id"]]["outcome"] == 1
    assert by_id[made[4]["decision_id"]]["outcome"] == 0
    assert by_id[made[4]["decision_id"]]["opened_at"] is None
    assert by_id[made[0]["decision_id"]]["opened_at"] is None
    assert by_id[made[0]["decision_id"]]["outcome"] is None


def test_the_decision_log_of_a_new_experiment_is_empty(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    response = client.get(f"/v1/experiments/{experiment['id']}/decisions")

    assert response.json() == {"decisions": [], "next_after": None}
    assert client.get("/v1/experiments/nope/decisions").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "true"}, "limit"),
        ({"after": ""}, "after"),
        ({"after": "f" * 32}, "after"),
        ({"after": "a\x00"}, "after"),
    ],
)
def test_the_decision_log_refuses_bad_pages_naming_the_field(
    client: TestClient, new_experiment: NewExperiment, params: dict[str, str], field: str
) -> None:
    experiment = new_experiment()
    other = new_experiment()
    foreign = _decide(client, other["id"])["decision_id"]
    if params.get("after") == "f" * 32:
        params = {"after": foreign}  # a decision, but of another experiment

    response = client.get(f"/v1/experiments/{experiment['id']}/decisions", params=params)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]
