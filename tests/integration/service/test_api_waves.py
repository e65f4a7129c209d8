"""Wave allocations and their running totals of opens over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from headliner.service.clock import ManualClock

NewExperiment = Callable[..., dict[str, Any]]
HOUR = 3600.0


def _allocate(client: TestClient, experiment_id: str, sends: int) -> dict[str, Any]:
    response = client.post(f"/v1/experiments/{experiment_id}/allocations", json={"sends": sends})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_first_wave_is_split_evenly_and_sums_to_n(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()

    wave = _allocate(client, experiment["id"], 1000)

    assert wave["sends"] == 1000
    assert [a["sends"] for a in wave["allocation"]] == [334, 333, 333]
    assert [a["headline"] for a in wave["allocation"]] == ["A", "B", "C"]
    assert wave["reason"].startswith("burn-in: every headline has fewer than 100 effective")
    fetched = client.get(f"/v1/experiments/{experiment['id']}/allocations/{wave['wave_id']}")
    assert fetched.json() == {**wave, "reason": None}  # the reason belongs to the split


def test_waves_stay_even_until_the_evidence_is_in(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(burn_in_per_arm=10, attribution_window_seconds=HOUR)
    first = _allocate(client, experiment["id"], 30)
    url = f"/v1/experiments/{experiment['id']}/allocations/{first['wave_id']}/opens"
    client.post(url, json={"opens": [{"headline": "A", "opens": 1}, {"arm": 2, "opens": 9}]})

    # Still inside the window: the sends are no evidence yet, so the next wave is even too.
    second = _allocate(client, experiment["id"], 30)
    clock.advance(HOUR)  # the window of both waves has passed: 20 full sends each
    third = _allocate(client, experiment["id"], 1000)

    assert [a["sends"] for a in first["allocation"]] == [10, 10, 10]
    assert [a["sends"] for a in second["allocation"]] == [10, 10, 10]
    assert second["reason"].startswith("burn-in:")
    assert third["reason"].startswith("thompson:")
    assert third["allocation"][2]["sends"] > 900  # 9 opens in 20 against 1 and 0


def test_running_totals_count_once_and_never_go_down(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=10 * HOUR)
    wave = _allocate(client, experiment["id"], 300)
    url = f"/v1/experiments/{experiment['id']}/allocations/{wave['wave_id']}/opens"

    client.post(url, json={"opens": [{"arm": 0, "opens": 10}, {"headline": "B", "opens": 4}]})
    retry = client.post(url, json={"opens": [{"arm": 0, "opens": 10}]})  # a retry: no change
    clock.advance(HOUR)
    lower = client.post(url, json={"opens": [{"arm": 0, "opens": 8}, {"arm": 1, "opens": 6}]})
    clock.advance(10 * HOUR)
    latest = client.post(url, json={"opens": [{"arm": 2, "opens": 3}]})  # after the window
    report = client.get(f"/v1/experiments/{experiment['id']}/report").json()

    assert retry.status_code == 200
    assert lower.status_code == 409  # and arm 1's rise to 6 is not stored either
    by_arm = {a["arm"]: a for a in latest.json()["allocation"]}
    assert (by_arm[0]["opens"], by_arm[1]["opens"], by_arm[2]["opens"]) == (10, 4, 0)
    assert by_arm[2]["late_opens"] == 3
    arms = report["arms"]
    assert [a["opens"] for a in arms] == [10, 4, 0]
    assert [a["late_opens"] for a in arms] == [0, 0, 3]
    assert [a["non_opens"] for a in arms] == [90, 96, 100]
    assert all(a["pending"] == 0 for a in arms)


def test_a_lower_running_total_is_409_naming_the_stored_total_and_stores_nothing(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment()
    wave = _allocate(client, experiment["id"], 3000)
    url = f"/v1/experiments/{experiment['id']}/allocations/{wave['wave_id']}/opens"
    first = client.post(
        url, json={"opens": [{"headline": "A", "opens": 812}, {"arm": 1, "opens": 5}]}
    )
    assert first.status_code == 200, first.text

    lower = client.post(
        url, json={"opens": [{"arm": 1, "opens": 9}, {"headline": "A", "opens": 800}]}
    )
    equal = client.post(url, json={"opens": [{"headline": "A", "opens": 812}]})

    assert lower.status_code == 409
    (error,) = lower.json()["detail"]
    assert error["type"] == "conflict"
    assert "800 opens reported for headline 'A'" in error["msg"]
    assert "running total of 812 already stored" in error["msg"]
    assert equal.status_code == 200
    assert equal.json()["allocation"] == first.json()["allocation"]
    stored = client.get(f"/v1/experiments/{experiment['id']}/allocations/{wave['wave_id']}")
    assert stored.json()["allocation"] == first.json()["allocation"]


def test_wave_sends_are_pending_until_the_window_passes(
    client: TestClient, new_experiment: NewExperiment, clock: ManualClock
) -> None:
    experiment = new_experiment(attribution_window_seconds=HOUR)
    _allocate(client, experiment["id"], 90)
    report_url = f"/v1/experiments/{experiment['id']}/report"

    before = client.get(report_url).json()["arms"]
    clock.advance(HOUR)
    after = client.get(report_url).json()["arms"]

    assert [a["pending"] for a in before] == [30, 30, 30]
    assert [a["pending"] for a in after] == [0, 0, 0]
    assert [a["non_opens"] for a in after] == [30, 30, 30]


def test_after_a_winner_waves_go_to_it_with_the_exploration_share(
    client: TestClient, new_experiment: NewExperiment
) -> None:
    experiment = new_experiment(
        winner_exploration=0.3,
        burn_in_per_arm=10,
        stopping={"p_best_threshold": 0.95, "min_opens": 10, "check_interval_seconds": 0},
    )
    url = f"/v1/experiments/{experiment['id']}"
    decisions = [client.post(f"{url}/decisions").json() for _ in range(60)]
    for d in decisions:
        reward = 1 if d["arm"] == 2 else 0
        client.post(f"{url}/decisions/{d['decision_id']}/outcome", json={"reward": reward})

    state = client.get(url).json()
    wave = _allocate(client, experiment["id"], 1000)

    assert state["status"] == "winner_declared"
    assert state["winner_arm"] == 2
    assert [a["sends"] for a in wave["allocation"]] == [100, 100, 800]


@pytest.mark.parametrize(
    "body",
    [{}, {"sends": 0}, {"sends": -5}, {"sends": "10"}, {"sends": 1.5}, {"sends": 10**9}],
    ids=["missing", "zero", "negative", "string", "float", "huge"],
)
def test_allocation_size_is_validated(
    client: TestClient, new_experiment: NewExperiment, body: dict[str, Any]
) -> None:
    experiment = new_experiment()

    response = client.post(f"/v1/experiments/{experiment['id']}/allocations", json=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "sends"] or body == {}


def test_wave_open_errors(client: TestClient, new_experiment: NewExperiment) -> None:
    experiment = new_experiment()
    other = new_experiment(name="other")
    wave = _allocate(client, experiment["id"], 30)
    url = f"/v1/experiments/{experiment['id']}/allocations"

    too_many = client.post(
        f"{url}/{wave['wave_id']}/opens", json={"opens": [{"arm": 0, "opens": 11}]}
    )
    unknown_headline = client.post(
        f"{url}/{wave['wave_id']}/opens", json={"opens": [{"headline": "Z", "opens": 1}]}
    )
    unknown_wave = client.post(f"{url}/nope/opens", json={"opens": [{"arm": 0, "opens": 1}]})
    other_wave = client.get(f"/v1/experiments/{other['id']}/allocations/{wave['wave_id']}")
    both = client.post(
        f"{url}/{wave['wave_id']}/opens", json={"opens": [{"arm": 0, "headline": "A", "opens": 1}]}
    )
    negative = client.post(
        f"{url}/{wave['wave_id']}/opens", json={"opens": [{"arm": 0, "opens": -1}]}
    )
    empty = client.post(f"{url}/{wave['wave_id']}/opens", json={"opens": []})

    assert too_many.status_code == 409
    assert unknown_headline.status_code == 404
    assert unknown_wave.status_code == 404
    assert other_wave.status_code == 404
    assert both.status_code == 422
    assert negative.status_code == 422
    assert empty.status_code == 422
