"""POST /v1/plans, and experiments created from a plan (which keep it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from headliner.service.experiment_file import load_experiment_file
from headliner.sim.plan import PlanSpec

PLAN: dict[str, Any] = {
    "name": "spring",
    "headlines": ["Ending Tonight", "Your Spring Offer"],
    "open_rates": [0.10, 0.13],
    "list_size": 20_000,
    "waves": {"count": 10, "every": "2h"},
    "replications": 200,
    "seed": 7,
}


def test_a_plan_answers_the_four_questions(client: TestClient) -> None:
    response = client.post("/v1/plans", json={**PLAN, "recommend": False})

    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["replications"] == 200 and plan["seed"] == 7
    assert set(plan["hours_to_decision"]) >= {"median", "p90"}
    assert 0.0 <= plan["no_decision_share"] <= 1.0
    assert 0.0 <= plan["p_within_1pct"] <= 1.0
    assert set(plan["extra_opens_vs_even"]) == {"mean", "ci95"}
    assert plan["ab_test_sends_per_arm"] > 0
    assert plan["verdict"].startswith("With 20,000 sends in 10 waves")
    # The same inputs and seed give the same figures (the plan is reproducible).
    again = client.post("/v1/plans", json={**PLAN, "recommend": False}).json()
    assert again["p_within_1pct"] == plan["p_within_1pct"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"open_rates": [0.1, 1.2]}, "open_rates"),
        ({"open_rates": None, "baseline_rate": 0.6, "best_lift": 1.0}, "best_lift"),
        ({"list_size": 1}, "list_size"),
        ({"attribution_window": -3600}, "attribution_window"),
        ({"replications": 5000}, "replications"),
        ({"waves": {"count": 20_000, "every": "1m"}}, "waves"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=["rate", "lift", "list-smaller-than-headlines", "window", "replications", "steps", "key"],
)
def test_a_bad_plan_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    body = {**PLAN, **change}
    response = client.post("/v1/plans", json={k: v for k, v in body.items() if v is not None})

    assert response.status_code == 422, response.text
    assert field in response.text


def test_an_experiment_keeps_the_plan_it_was_created_from(client: TestClient) -> None:
    spec = PlanSpec.model_validate(PLAN)
    settings = {**spec.experiment_settings(), "plan": spec.model_dump(mode="json")}

    created = client.post("/v1/experiments", json=settings)

    assert created.status_code == 201, created.text
    stored = client.get(f"/v1/experiments/{created.json()['id']}").json()
    assert PlanSpec.model_validate(stored["plan"]) == spec  # round-trips unchanged
    assert stored["headlines"][1]["headline"] == "Your Spring Offer"
    plain = client.post("/v1/experiments", json={"name": "x", "headlines": ["A", "B"]}).json()
    assert plain["plan"] is None


def test_a_plan_file_creates_what_was_planned(tmp_path: Path) -> None:
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "burn_in_per_arm": 300, "floor": 0.05}))

    spec = load_experiment_file(path)

    assert spec.headlines == PLAN["headlines"]
    assert (spec.burn_in_per_arm, spec.floor) == (300, 0.05)
    assert spec.plan is not None and spec.plan["list_size"] == 20_000
