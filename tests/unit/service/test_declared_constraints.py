"""Every bound is declared once: the API schemas and the scenario loader read the library's."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from headliner.core.allocation import GUARD_CONSTRAINTS
from headliner.core.delay import ATTRIBUTION_WINDOW, DelayPrior
from headliner.core.errors import InvalidParameterError
from headliner.core.policies import LIVE_POLICIES, POLICY_CLASSES, TopTwoThompson
from headliner.core.posterior import PRIOR_CONSTRAINTS
from headliner.core.stopping import StoppingRule
from headliner.core.validation import Interval, Options, validate_params
from headliner.service.experiments import REQUEST_CONSTRAINTS, build_spec
from headliner.service.schemas import (
    AllocationCreate,
    DelayPriorSettings,
    ExperimentCreate,
    StoppingSettings,
)
from headliner.sim import scenarios


def _numeric(schema: dict[str, Any]) -> dict[str, Any]:
    """The numeric branch of a (possibly nullable) property's JSON schema."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") in ("number", "integer"):
            return dict(branch)
    raise AssertionError(f"no numeric branch in {schema}")


_JSON_NAMES = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _declared(constraint: Interval) -> dict[str, float]:
    return {_JSON_NAMES[k]: v for k, v in constraint.bounds().items()}


def _bounds(schema: dict[str, Any]) -> dict[str, float]:
    numeric = _numeric(schema)
    # A field behind a before-validator (durations) keeps pydantic's own keyword names.
    return {
        _JSON_NAMES.get(k, k): v
        for k, v in numeric.items()
        if k in {*_JSON_NAMES, *_JSON_NAMES.values()}
    }


API_FIELDS: list[tuple[type[Any], str, Interval]] = [
    (ExperimentCreate, "alpha_prior", PRIOR_CONSTRAINTS["alpha_prior"]),
    (ExperimentCreate, "beta_prior", PRIOR_CONSTRAINTS["beta_prior"]),
    (ExperimentCreate, "attribution_window_seconds", ATTRIBUTION_WINDOW),
    (
        ExperimentCreate,
        "leader_probability",
        TopTwoThompson.parameter_constraints["leader_probability"],  # type: ignore[list-item]
    ),
    *[(ExperimentCreate, name, rule) for name, rule in GUARD_CONSTRAINTS.items()],
    *[
        (StoppingSettings, name, rule)
        for name, rule in StoppingRule.parameter_constraints.items()
        if isinstance(rule, Interval)
    ],
    *[
        (DelayPriorSettings, name, rule)
        for name, rule in DelayPrior.parameter_constraints.items()
        if isinstance(rule, Interval)
    ],
    (AllocationCreate, "sends", REQUEST_CONSTRAINTS["sends"]),
]


@pytest.mark.parametrize(
    ("model", "name", "constraint"),
    API_FIELDS,
    ids=[f"{model.__name__}.{name}" for model, name, _ in API_FIELDS],
)
def test_api_schema_states_the_declared_range(
    model: type[Any], name: str, constraint: Interval
) -> None:
    schema = model.model_json_schema()["properties"][name]
    assert _bounds(schema) == _declared(constraint)


def test_api_policy_choices_are_the_live_policies() -> None:
    schema = ExperimentCreate.model_json_schema()["properties"]["policy"]
    assert schema["enum"] == list(LIVE_POLICIES.values)  # "top-two" is read, not listed


def test_a_changed_declaration_changes_the_library_check() -> None:
    # The check reads the declaration itself: tighten it and the same value fails.
    rules = {"floor": Interval(float, 0.0, 0.1)}
    validate_params(rules, {"floor": 0.1}, "Experiment")
    with pytest.raises(InvalidParameterError, match=r"range \[0, 0\.1\]\. Got 0\.2 instead"):
        validate_params(rules, {"floor": 0.2}, "Experiment")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("alpha_prior", 0.0),
        ("burn_in_share", 1.5),
        ("winner_exploration", -0.1),
        ("burn_in_per_arm", 10_000_001),
        ("attribution_window_seconds", 400 * 86400.0),
        ("leader_probability", 1.5),
    ],
)
def test_api_and_library_refuse_the_same_values(setting: str, value: float) -> None:
    extra = {"policy": "top_two"} if setting == "leader_probability" else {}
    with pytest.raises(InvalidParameterError, match=f"'{setting}' parameter of Experiment"):
        build_spec("n", ["A", "B"], **extra, **{setting: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=setting):
        ExperimentCreate.model_validate(
            {"name": "n", "headlines": ["A", "B"], **extra, setting: value}
        )


def _spec_names(union: Any) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["name"].annotation)[0] for m in members}


def test_scenario_policy_entries_cover_the_registry() -> None:
    assert _spec_names(scenarios.PolicySpec) == set(POLICY_CLASSES)
    assert _spec_names(scenarios.CampaignPolicySpec) == set(LIVE_POLICIES.values)


@pytest.mark.parametrize(
    ("spec", "field", "constraint"),
    [
        (scenarios.PriorsSpec, "alpha_prior", PRIOR_CONSTRAINTS["alpha_prior"]),
        (scenarios.CampaignSpec, "floor", GUARD_CONSTRAINTS["floor"]),
        (scenarios.CampaignSpec, "burn_in_per_arm", GUARD_CONSTRAINTS["burn_in_per_arm"]),
        (scenarios.CampaignSpec, "attribution_window", ATTRIBUTION_WINDOW),
        (
            scenarios.TopTwoSpec,
            "leader_probability",
            TopTwoThompson.parameter_constraints["leader_probability"],
        ),
    ],
    ids=["priors", "floor", "burn-in", "window", "leader"],
)
def test_scenario_loader_states_the_declared_range(
    spec: type[Any], field: str, constraint: Interval
) -> None:
    schema = spec.model_json_schema()["properties"][field]
    assert _bounds(schema) == _declared(constraint)


def test_options_name_every_choice() -> None:
    with pytest.raises(InvalidParameterError, match="one of 'thompson', 'uniform', 'top_two'"):
        LIVE_POLICIES.check("ucb1", "policy", "Experiment")
    assert Options(("a",)).check("a", "x", "Owner") == "a"
