"""Scenarios: a campaign's headlines, true rates, horizons, seeds and policies in YAML.

A scenario file looks like this (every key but ``headlines`` and
``iterations`` has a default)::

    name: reference
    headlines:
      - text: "48 Hours Only: Save 25%"
        true_open_rate: 0.18
      - text: "Ending Tonight: Final Chance to Save"
        true_open_rate: 0.24
    iterations: [100, 1000, 10000]
    seeds: {random_seed: 42, bandit_seed: 123, monte_carlo_seed: 2024}
    priors: {alpha_prior: 1.0, beta_prior: 1.0}
    policies:
      - thompson
      - uniform
      - {name: ab_test, baseline_rate: 0.2, min_detectable_lift: 0.1}
    replications: 1

:func:`load_scenario` validates it with pydantic (unknown keys are errors)
and turns any problem into a :class:`ScenarioError` whose message is one line
naming the file, the key path and the problem, e.g.
``bad.yaml: headlines[1].true_open_rate: Input should be less than or equal
to 1 (got 1.5)``.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headliner.core.errors import InvalidParameterError
from headliner.core.policies import (
    UCB1,
    ABTestThenCommit,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    TopTwoThompson,
    UniformRandom,
)

REFERENCE_RESOURCE = "scenarios/reference.yaml"


class ScenarioError(InvalidParameterError):
    """A scenario file is missing, not YAML, or does not describe a valid scenario."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeadlineSpec(_Strict):
    """One candidate headline and its true open rate."""

    text: str = Field(min_length=1)
    true_open_rate: float = Field(ge=0.0, le=1.0)


class SeedsSpec(_Strict):
    """Seeds of the seed-compatible comparison and of the Monte Carlo replications."""

    random_seed: int | None = Field(default=42, ge=0)
    bandit_seed: int | None = Field(default=123, ge=0)
    monte_carlo_seed: int | None = Field(default=None, ge=0)


class PriorsSpec(_Strict):
    """Beta prior of every headline."""

    alpha_prior: float = Field(default=1.0, gt=0.0)
    beta_prior: float = Field(default=1.0, gt=0.0)


class ThompsonSpec(_Strict):
    """``{name: thompson}``."""

    name: Literal["thompson"]

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return ThompsonSampling()


class UniformSpec(_Strict):
    """``{name: uniform}``: the seed's random split."""

    name: Literal["uniform"]

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return UniformRandom()


class ABTestSpec(_Strict):
    """``{name: ab_test, n_test_sends: N}`` or a plan from baseline rate and lift."""

    name: Literal["ab_test"]
    n_test_sends: int | None = Field(default=None, ge=0)
    baseline_rate: float | None = Field(default=None, gt=0.0, lt=1.0)
    min_detectable_lift: float | None = Field(default=None, gt=0.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    power: float = Field(default=0.8, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_way_to_size(self) -> ABTestSpec:
        planned = self.baseline_rate is not None or self.min_detectable_lift is not None
        if self.n_test_sends is not None and planned:
            raise ValueError(
                "give either n_test_sends or baseline_rate and min_detectable_lift, not both"
            )
        if self.n_test_sends is None and (
            self.baseline_rate is None or self.min_detectable_lift is None
        ):
            raise ValueError("give n_test_sends, or both baseline_rate and min_detectable_lift")
        return self

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes (the planned size uses ``n_arms``)."""
        if self.n_test_sends is not None:
            return ABTestThenCommit(n_test_sends=self.n_test_sends)
        assert self.baseline_rate is not None and self.min_detectable_lift is not None
        return ABTestThenCommit.planned(
            n_arms,
            self.baseline_rate,
            self.min_detectable_lift,
            alpha=self.alpha,
            power=self.power,
        )


class EpsilonGreedySpec(_Strict):
    """``{name: epsilon_greedy, epsilon: 0.1}``."""

    name: Literal["epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0)

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return EpsilonGreedy(epsilon=self.epsilon)


class UCB1Spec(_Strict):
    """``{name: ucb1}``."""

    name: Literal["ucb1"]

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return UCB1()


class TopTwoSpec(_Strict):
    """``{name: top_two, leader_probability: 0.5}``."""

    name: Literal["top_two"]
    leader_probability: float = Field(default=0.5, ge=0.0, le=1.0)

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return TopTwoThompson(leader_probability=self.leader_probability)


PolicySpec = Annotated[
    ThompsonSpec | UniformSpec | ABTestSpec | EpsilonGreedySpec | UCB1Spec | TopTwoSpec,
    Field(discriminator="name"),
]


def _default_policies() -> list[PolicySpec]:
    return [ThompsonSpec(name="thompson"), UniformSpec(name="uniform")]


_POLICY_NAMES = frozenset(("thompson", "uniform", "ab_test", "epsilon_greedy", "ucb1", "top_two"))


class Scenario(_Strict):
    """A validated scenario.

    Attributes
    ----------
    name : str
    description : str
    headlines : list of HeadlineSpec
        At least one, texts distinct.
    iterations : list of int
        Horizons (send counts), strictly increasing, each >= 1.
    seeds : SeedsSpec
        ``random_seed`` and ``bandit_seed`` of the comparison,
        ``monte_carlo_seed`` of the replications (None: fresh entropy).
    priors : PriorsSpec
    policies : list of policy entries
        What the Monte Carlo comparison runs; a bare name stands for
        ``{name: <name>}``. Default: thompson, uniform.
    replications : int
        Monte Carlo replications, >= 1.
    """

    name: str = "scenario"
    description: str = ""
    headlines: list[HeadlineSpec] = Field(min_length=1)
    iterations: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    seeds: SeedsSpec = SeedsSpec()
    priors: PriorsSpec = PriorsSpec()
    policies: list[PolicySpec] = Field(default_factory=_default_policies, min_length=1)
    replications: int = Field(default=1, ge=1)

    @field_validator("policies", mode="before")
    @classmethod
    def _bare_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("headlines")
    @classmethod
    def _distinct_texts(cls, value: list[HeadlineSpec]) -> list[HeadlineSpec]:
        texts = [headline.text for headline in value]
        repeated = sorted({text for text in texts if texts.count(text) > 1})
        if repeated:
            raise ValueError(f"headline texts must be distinct; repeated: {repeated}")
        return value

    @field_validator("iterations")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in zip(value, value[1:], strict=False)):
            raise ValueError(f"must be strictly increasing (got {value})")
        return value

    @property
    def headline_texts(self) -> list[str]:
        """The headline texts in order."""
        return [headline.text for headline in self.headlines]

    @property
    def true_probabilities(self) -> NDArray[np.float64]:
        """True open rates, shape (n_arms,)."""
        return np.array([headline.true_open_rate for headline in self.headlines])

    @property
    def n_arms(self) -> int:
        """Number of headlines."""
        return len(self.headlines)

    @property
    def horizon(self) -> int:
        """The longest horizon, ``iterations[-1]``."""
        return self.iterations[-1]

    def build_policies(self) -> list[Policy]:
        """The policies to compare, as :class:`headliner.core.policies.Policy` objects.

        Raises
        ------
        ScenarioError
            If a policy's settings are invalid for this scenario (e.g. an A/B
            plan whose lift pushes the rate past 1).
        """
        built = []
        for index, spec in enumerate(self.policies):
            try:
                built.append(spec.build(self.n_arms))
            except InvalidParameterError as exc:
                raise ScenarioError(f"policies[{index}]: {exc}") from exc
        return built


def _key_path(loc: tuple[int | str, ...]) -> str:
    """``('headlines', 1, 'true_open_rate')`` -> ``headlines[1].true_open_rate``."""
    path = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        # The discriminated union adds the policy's tag after its index.
        if i >= 2 and loc[i - 2] == "policies" and isinstance(loc[i - 1], int):
            if part in _POLICY_NAMES:
                continue
        path += f".{part}" if path else part
    return path or "top level"


def _describe(error: Any) -> str:
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if error["type"] not in ("missing", "extra_forbidden") and "input" in error:
        got = error["input"]
        if not isinstance(got, dict | list):
            message += f" (got {got!r})"
    return f"{_key_path(tuple(error['loc']))}: {message}"


def parse_scenario(data: object, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed YAML (a mapping) into a :class:`Scenario`.

    Raises
    ------
    ScenarioError
        One line: ``"<source>: <key path>: <problem>"`` (problems joined by
        ``"; "``).
    """
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        raise ScenarioError(f"{source}: top level: expected a mapping of scenario keys, got {kind}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ScenarioError(f"{source}: {problems}".replace("\n", " ")) from None
    try:
        scenario.build_policies()
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return scenario


def _parse_yaml(text: str, source: str) -> Scenario:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"{source}: {where}invalid YAML: {problem}".replace("\n", " ")
        ) from None
    return parse_scenario(data, source)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario YAML file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        An :class:`~headliner.core.errors.InvalidParameterError` whose
        message is one line naming the file, the key path and the problem.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read scenario file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not a UTF-8 text file: {exc.reason}") from None
    return _parse_yaml(text, source)


def reference_scenario() -> Scenario:
    """The reference experiment of the seed design, from the YAML shipped in the package.

    Examples
    --------
    >>> scenario = reference_scenario()
    >>> scenario.iterations[-1], scenario.seeds.random_seed, scenario.seeds.bandit_seed
    (1000000, 42, 123)
    """
    resource = resources.files("headliner").joinpath(REFERENCE_RESOURCE)
    return _parse_yaml(resource.read_text(encoding="utf-8"), f"headliner/{REFERENCE_RESOURCE}")
