"""Scenarios: a campaign's headlines, true rates, horizons, seeds and policies in YAML.

A scenario file looks like this (every key but ``headlines`` and
``iterations`` has a default; ``iterations`` may be left out when the file has
a ``campaign:`` section, see below)::

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

An optional ``campaign:`` section describes a campaign as the decision
service would run it, simulated by :mod:`headliner.sim.campaign` with the
scenario's headlines, true rates, priors and ``seeds.monte_carlo_seed``
(every key but ``list_size`` has the default of
:class:`~headliner.sim.campaign.Campaign`)::

    campaign:
      list_size: 100000
      waves: {size: 1000, every: 1h}       # or per_send: {rate_per_hour: 2000, refresh: 5m}
      open_delay: {median: 2h, p95: 24h}   # or none: opens known at the next step
      attribution_window: 72h
      policy: thompson                     # uniform, top_two, {name: top_two, ...}
      burn_in_per_arm: 100
      burn_in_share: 1.0
      floor: 0.0
      winner_exploration: 0.0
      stopping: {p_best_threshold: 0.99, min_opens: 100, rate_spread: 0.1}  # or off
      delay_prior: {median: 3h, p95: 36h, weight: 5}
      counting: delay_aware                # known_curve, settled, immediate
      replications: 1000

Durations are seconds, or a number with a unit: ``90s``, ``15m``, ``2h``, ``3d``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

import annotated_types
import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from headliner.core.allocation import GUARD_CONSTRAINTS
from headliner.core.delay import ATTRIBUTION_WINDOW, DelayPrior
from headliner.core.errors import InvalidParameterError
from headliner.core.policies import (
    AB_TEST_SIZE_CONSTRAINTS,
    LIVE_POLICIES,
    POLICY_CLASSES,
    UCB1,
    ABTestThenCommit,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    TopTwoThompson,
    UniformRandom,
)
from headliner.core.posterior import PRIOR_CONSTRAINTS
from headliner.core.stopping import Require, StoppingRule
from headliner.core.validation import Constraint, Interval
from headliner.sim.campaign import Campaign, Counting, OpenDelay

REFERENCE_RESOURCE = "scenarios/reference.yaml"


def within(constraint: Constraint) -> annotated_types.Interval:
    """A declared range as pydantic field metadata: ``Annotated[float, within(...)]``.

    The scenario loader and the service's request schemas read the library's
    declarations through this, so a bound is written once.
    """
    if not isinstance(constraint, Interval):
        raise TypeError(f"a numeric range is needed, not {constraint!r}")
    return annotated_types.Interval(**constraint.bounds())


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

    alpha_prior: Annotated[float, within(PRIOR_CONSTRAINTS["alpha_prior"])] = 1.0
    beta_prior: Annotated[float, within(PRIOR_CONSTRAINTS["beta_prior"])] = 1.0


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


_AB_SIZE = AB_TEST_SIZE_CONSTRAINTS


class ABTestSpec(_Strict):
    """``{name: ab_test, n_test_sends: N}`` or a plan from baseline rate and lift."""

    name: Literal["ab_test"]
    n_test_sends: Annotated[
        int | None, within(ABTestThenCommit.parameter_constraints["n_test_sends"])
    ] = None
    baseline_rate: Annotated[float | None, within(_AB_SIZE["baseline_rate"])] = None
    min_detectable_lift: Annotated[float | None, within(_AB_SIZE["min_detectable_lift"])] = None
    alpha: Annotated[float, within(_AB_SIZE["alpha"])] = 0.05
    power: Annotated[float, within(_AB_SIZE["power"])] = 0.8

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
    epsilon: Annotated[float, within(EpsilonGreedy.parameter_constraints["epsilon"])] = 0.1

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
    leader_probability: Annotated[
        float, within(TopTwoThompson.parameter_constraints["leader_probability"])
    ] = 0.5

    def build(self, n_arms: int) -> Policy:
        """The policy this entry describes."""
        return TopTwoThompson(leader_probability=self.leader_probability)


PolicySpec = Annotated[
    ThompsonSpec | UniformSpec | ABTestSpec | EpsilonGreedySpec | UCB1Spec | TopTwoSpec,
    Field(discriminator="name"),
]


def _default_policies() -> list[PolicySpec]:
    return [ThompsonSpec(name="thompson"), UniformSpec(name="uniform")]


_POLICY_NAMES = frozenset(POLICY_CLASSES)


# --- the campaign section -------------------------------------------------------------
_DURATION = re.compile(r"^\s*(-?(?:\d+(?:\.\d*)?|\.\d+))\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RULE = "seconds, or a number with a unit s, m, h or d (e.g. 90s, 15m, 2h, 3d)"


def parse_duration(value: object) -> float:
    """Seconds in a duration: seconds, or a string like ``90s``, ``15m``, ``2h``, ``3d``.

    Raises
    ------
    ValueError
        If ``value`` is neither. Negative and zero durations are returned as
        they are, for the field's own bound to reject.

    Examples
    --------
    >>> parse_duration("15m"), parse_duration("2h"), parse_duration(90)
    (900.0, 7200.0, 90.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match is not None:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"a duration must be {_DURATION_RULE}")


#: A duration in seconds, > 0.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0.0, allow_inf_nan=False)]
#: A duration in seconds, >= 0.
DurationOrZero = Annotated[
    float, BeforeValidator(parse_duration), Field(ge=0.0, allow_inf_nan=False)
]


def _switched_off(value: Any) -> Any:
    """``off``, ``none`` and ``null`` (YAML reads ``off`` as false) become None."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in ("off", "none"):
        return None
    return value


# The library's defaults, which a campaign section's omitted keys take.
_CAMPAIGN = Campaign(true_rates=(0.5,), n_sends=1)
assert _CAMPAIGN.wave_size is not None
assert _CAMPAIGN.open_delay is not None
assert _CAMPAIGN.stopping is not None
_WAVE_SIZE: int = _CAMPAIGN.wave_size
_OPEN_DELAY: OpenDelay = _CAMPAIGN.open_delay
_STOPPING: StoppingRule = _CAMPAIGN.stopping
_DELAY_PRIOR: DelayPrior = _CAMPAIGN.delay_prior


class WavesSpec(_Strict):
    """``waves: {size: 1000, every: 1h}``: a wave of ``size`` sends every ``every``."""

    size: Annotated[int, within(_CAMPAIGN_RULES["wave_size"])] = _WAVE_SIZE
    every: Duration = _CAMPAIGN.interval_seconds


class PerSendSpec(_Strict):
    """``per_send: {rate_per_hour: 2000, refresh: 5m}``: one decision per send.

    The decisions between two posterior refreshes use the same probabilities.
    """

    rate_per_hour: Annotated[float, within(_CAMPAIGN_RULES["sends_per_hour"])]
    refresh: Duration = _CAMPAIGN.interval_seconds


class OpenDelaySpec(_Strict):
    """``open_delay: {median: 2h, p95: 24h}``: the true delay of an open (log-normal)."""

    median: Duration = _OPEN_DELAY.median_seconds
    p95: Duration = _OPEN_DELAY.p95_seconds


class DelayPriorSpec(_Strict):
    """``delay_prior: {median: 3h, p95: 36h, weight: 5}``: the curve assumed before data."""

    median: Duration = _DELAY_PRIOR.median_seconds
    p95: Duration = _DELAY_PRIOR.p95_seconds
    weight: Annotated[float, within(DelayPrior.parameter_constraints["weight"])] = (
        _DELAY_PRIOR.weight
    )


_RULE = StoppingRule.parameter_constraints


class StoppingSpec(_Strict):
    """``stopping: {...}``: when the service declares a winner (``off``: never)."""

    p_best_threshold: Annotated[float | None, within(_RULE["p_best_threshold"])] = (
        _STOPPING.p_best_threshold
    )
    value_remaining_threshold: Annotated[
        float | None, within(_RULE["value_remaining_threshold"])
    ] = _STOPPING.value_remaining_threshold
    value_remaining_quantile: Annotated[float, within(_RULE["value_remaining_quantile"])] = (
        _STOPPING.value_remaining_quantile
    )
    require: Require = _STOPPING.require
    min_opens: Annotated[int, within(_RULE["min_opens"])] = _STOPPING.min_opens
    check_interval: Annotated[DurationOrZero, within(_RULE["check_interval_seconds"])] = (
        _STOPPING.check_interval_seconds
    )
    rate_spread: Annotated[float | None, within(_RULE["rate_spread"])] = _STOPPING.rate_spread

    @field_validator("p_best_threshold", "value_remaining_threshold", "rate_spread", mode="before")
    @classmethod
    def _criterion_off(cls, value: Any) -> Any:
        return _switched_off(value)


CampaignPolicySpec = Annotated[
    ThompsonSpec | UniformSpec | TopTwoSpec,
    Field(discriminator="name"),
]

_CAMPAIGN_POLICY_NAMES = frozenset(LIVE_POLICIES.values)


_GUARDS = GUARD_CONSTRAINTS
_CAMPAIGN_RULES = Campaign.parameter_constraints


class CampaignSpec(_Strict):
    """The ``campaign:`` section: a campaign as the decision service would run it.

    Every key but ``list_size`` defaults to the library's default (those of
    :class:`~headliner.sim.campaign.Campaign`, which are the service's).

    Attributes
    ----------
    list_size : int
        Sends over the whole campaign, >= 1.
    waves : WavesSpec or None
        Waves of a fixed size at a fixed interval (the default when neither
        ``waves`` nor ``per_send`` is given).
    per_send : PerSendSpec or None
        Per-send traffic at a rate, instead of waves.
    open_delay : OpenDelaySpec or None
        The true delay of an open; None (``none``): opens known at the next step.
    attribution_window : float
        Seconds after a send during which its open counts.
    policy : policy entry
        thompson, uniform or top_two (the service's policies).
    burn_in_per_arm, burn_in_share, floor, winner_exploration
        The service's guards (see :class:`~headliner.sim.campaign.Campaign`).
    stopping : StoppingSpec or None
        None (``off``): never declare a winner.
    delay_prior : DelayPriorSpec
    counting : {"delay_aware", "known_curve", "settled", "immediate"}
    replications : int
        Simulated campaigns, >= 1.
    """

    list_size: Annotated[int, within(_CAMPAIGN_RULES["n_sends"])]
    waves: WavesSpec | None = None
    per_send: PerSendSpec | None = None
    open_delay: OpenDelaySpec | None = OpenDelaySpec()
    attribution_window: Annotated[Duration, within(ATTRIBUTION_WINDOW)] = (
        _CAMPAIGN.attribution_window_seconds
    )
    policy: CampaignPolicySpec = ThompsonSpec(name="thompson")
    burn_in_per_arm: Annotated[int, within(_GUARDS["burn_in_per_arm"])] = _CAMPAIGN.burn_in_per_arm
    burn_in_share: Annotated[float, within(_GUARDS["burn_in_share"])] = _CAMPAIGN.burn_in_share
    floor: Annotated[float, within(_GUARDS["floor"])] = _CAMPAIGN.floor
    winner_exploration: Annotated[float, within(_GUARDS["winner_exploration"])] = (
        _CAMPAIGN.winner_exploration
    )
    stopping: StoppingSpec | None = StoppingSpec()
    delay_prior: DelayPriorSpec = DelayPriorSpec()
    counting: Counting = _CAMPAIGN.counting
    replications: int = Field(default=1000, ge=1)

    @field_validator("policy", mode="before")
    @classmethod
    def _bare_policy_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("open_delay", "stopping", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return _switched_off(value)

    @model_validator(mode="after")
    def _one_traffic_shape(self) -> CampaignSpec:
        if self.waves is not None and self.per_send is not None:
            raise ValueError("give either waves or per_send, not both")
        return self

    def build(
        self, true_rates: tuple[float, ...], priors: PriorsSpec, *, section: str = "campaign"
    ) -> Campaign:
        """The :class:`~headliner.sim.campaign.Campaign` this section describes.

        Parameters
        ----------
        true_rates : tuple of float
        priors : PriorsSpec
        section : str, default="campaign"
            Where these keys sit in the document, for error messages ("" for
            the top level, as in a plan).

        Raises
        ------
        ScenarioError
            Naming the key path (``campaign.open_delay.p95: ...``) of a
            setting the library rejects.
        """
        prefix = f"{section}." if section else ""
        open_delay = None
        if self.open_delay is not None:
            spec = self.open_delay
            open_delay = _located(
                lambda: OpenDelay(spec.median, spec.p95), f"{prefix}open_delay", _DELAY_KEYS
            )
        prior = self.delay_prior
        delay_prior = _located(
            lambda: DelayPrior(prior.median, prior.p95, prior.weight),
            f"{prefix}delay_prior",
            _DELAY_KEYS,
        )
        stopping = None
        if self.stopping is not None:
            rule = self.stopping
            stopping = _located(
                lambda: StoppingRule(
                    p_best_threshold=rule.p_best_threshold,
                    value_remaining_threshold=rule.value_remaining_threshold,
                    value_remaining_quantile=rule.value_remaining_quantile,
                    require=rule.require,
                    min_opens=rule.min_opens,
                    check_interval_seconds=rule.check_interval,
                    rate_spread=rule.rate_spread,
                ),
                f"{prefix}stopping",
                _STOPPING_KEYS,
            )
        policy = _located(lambda: self.policy.build(len(true_rates)), f"{prefix}policy", {})
        if self.per_send is not None:
            traffic = f"/{prefix}per_send"
            wave_size, sends_per_hour = None, self.per_send.rate_per_hour
            interval = self.per_send.refresh
        else:
            traffic = f"/{prefix}waves"
            waves = self.waves if self.waves is not None else WavesSpec()
            wave_size, sends_per_hour, interval = waves.size, None, waves.every
        keys = {
            **_CAMPAIGN_KEYS,
            "wave_size": f"{traffic}.size",
            "sends_per_hour": f"{traffic}.rate_per_hour",
            "interval_seconds": f"{traffic}.{'every' if self.per_send is None else 'refresh'}",
        }
        return _located(
            lambda: Campaign(
                true_rates=true_rates,
                n_sends=self.list_size,
                wave_size=wave_size,
                interval_seconds=interval,
                sends_per_hour=sends_per_hour,
                open_delay=open_delay,
                attribution_window_seconds=self.attribution_window,
                policy=policy,
                alpha_prior=priors.alpha_prior,
                beta_prior=priors.beta_prior,
                burn_in_per_arm=self.burn_in_per_arm,
                burn_in_share=self.burn_in_share,
                floor=self.floor,
                winner_exploration=self.winner_exploration,
                stopping=stopping,
                delay_prior=delay_prior,
                counting=self.counting,
            ),
            section,
            keys,
        )


# Library parameter -> key path in the scenario file (relative to the section,
# or absolute when it starts with "/").
_DELAY_KEYS = {"median_seconds": "median", "p95_seconds": "p95", "weight": "weight"}
_STOPPING_KEYS = {
    "p_best_threshold": "p_best_threshold",
    "value_remaining_threshold": "value_remaining_threshold",
    "value_remaining_quantile": "value_remaining_quantile",
    "require": "require",
    "min_opens": "min_opens",
    "check_interval_seconds": "check_interval",
    "rate_spread": "rate_spread",
}
_CAMPAIGN_KEYS = {
    "true_rates": "/headlines",
    "n_sends": "list_size",
    "attribution_window_seconds": "attribution_window",
    "alpha_prior": "/priors.alpha_prior",
    "beta_prior": "/priors.beta_prior",
    "burn_in_per_arm": "burn_in_per_arm",
    "burn_in_share": "burn_in_share",
    "floor": "floor",
    "winner_exploration": "winner_exploration",
    "counting": "counting",
    "policy": "policy",
}
_PARAMETER = re.compile(r"The '(\w+)' parameter of ")
_Built = TypeVar("_Built")


def _located(build: Callable[[], _Built], section: str, keys: Mapping[str, str]) -> _Built:
    """``build()``, its :class:`InvalidParameterError` re-raised with the key path in front."""
    try:
        return build()
    except InvalidParameterError as exc:
        match = _PARAMETER.search(str(exc))
        key = keys.get(match.group(1)) if match is not None else None
        if key is None:
            path = section or "top level"
        elif key.startswith("/"):
            path = key[1:]
        else:
            path = f"{section}.{key}" if section else key
        raise ScenarioError(f"{path}: {exc}") from None


class Scenario(_Strict):
    """A validated scenario.

    Attributes
    ----------
    name : str
    description : str
    headlines : list of HeadlineSpec
        At least one, texts distinct.
    iterations : list of int or None
        Horizons (send counts) of the seed comparison, strictly increasing,
        each >= 1; None when the scenario is a campaign only.
    seeds : SeedsSpec
        ``random_seed`` and ``bandit_seed`` of the comparison,
        ``monte_carlo_seed`` of the replications (None: fresh entropy).
    priors : PriorsSpec
    policies : list of policy entries
        What the Monte Carlo comparison runs; a bare name stands for
        ``{name: <name>}``. Default: thompson, uniform.
    replications : int
        Monte Carlo replications, >= 1.
    campaign : CampaignSpec or None
        A campaign to simulate as the service would run it (see
        :meth:`build_campaign`). A scenario has ``iterations``, a
        ``campaign`` or both.
    """

    name: str = "scenario"
    description: str = ""
    headlines: list[HeadlineSpec] = Field(min_length=1)
    iterations: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, min_length=1)
    seeds: SeedsSpec = SeedsSpec()
    priors: PriorsSpec = PriorsSpec()
    policies: list[PolicySpec] = Field(default_factory=_default_policies, min_length=1)
    replications: int = Field(default=1, ge=1)
    campaign: CampaignSpec | None = None

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
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if any(later <= earlier for earlier, later in zip(value, value[1:], strict=False)):
            raise ValueError(f"must be strictly increasing (got {value})")
        return value

    @model_validator(mode="after")
    def _something_to_simulate(self) -> Scenario:
        if self.iterations is None and self.campaign is None:
            raise ValueError("give iterations, a campaign section, or both")
        return self

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
        """The longest horizon, ``iterations[-1]``.

        Raises
        ------
        ScenarioError
            If the scenario has no ``iterations``.
        """
        if self.iterations is None:
            raise ScenarioError("iterations: the scenario has none (it is a campaign only)")
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

    def build_campaign(self) -> Campaign:
        """The ``campaign`` section as a :class:`~headliner.sim.campaign.Campaign`.

        The headlines' true open rates and the ``priors`` are the scenario's.

        Raises
        ------
        ScenarioError
            If the scenario has no campaign, or the library rejects a setting
            (e.g. an attribution window shorter than the wave interval); the
            message starts with the key path, ``campaign.attribution_window: ...``.

        Examples
        --------
        >>> scenario = parse_scenario(
        ...     {
        ...         "headlines": [{"text": "A", "true_open_rate": 0.1}],
        ...         "campaign": {"list_size": 5000, "waves": {"size": 500, "every": "2h"}},
        ...     }
        ... )
        >>> campaign = scenario.build_campaign()
        >>> campaign.n_sends, campaign.wave_size, campaign.interval_seconds
        (5000, 500, 7200.0)
        """
        if self.campaign is None:
            raise ScenarioError("campaign: the scenario has no campaign section")
        rates = tuple(headline.true_open_rate for headline in self.headlines)
        return self.campaign.build(rates, self.priors)


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
        if i >= 1 and loc[i - 1] == "policy" and part in _CAMPAIGN_POLICY_NAMES:
            continue
        path += f".{part}" if path else part
    return path or "top level"


# A model-wide check names the key it is about at the start of its message.
_NAMED = re.compile(r"^[a-z_][\w.\[\]]*: ")


def _describe(error: Any) -> str:
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if not error["loc"] and _NAMED.match(message):
        return message
    if error["type"] not in ("missing", "extra_forbidden") and "input" in error:
        got = error["input"]
        if not isinstance(got, dict | list):
            message += f" (got {got!r})"
    return f"{_key_path(tuple(error['loc']))}: {message}"


def validation_message(exc: ValidationError, source: str) -> str:
    """One line: ``"<source>: <key path>: <problem>"``, problems joined by ``"; "``."""
    problems = "; ".join(_describe(error) for error in exc.errors())
    return f"{source}: {problems}".replace("\n", " ")


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
        raise ScenarioError(validation_message(exc, source)) from None
    try:
        scenario.build_policies()
        if scenario.campaign is not None:
            scenario.build_campaign()
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    return scenario


def _parse_yaml(text: str, source: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(
            f"{source}: {where}invalid YAML: {problem}".replace("\n", " ")
        ) from None


def read_yaml(path: str | os.PathLike[str]) -> object:
    """The parsed YAML of a scenario file, not yet validated.

    Raises
    ------
    ScenarioError
        One line naming the file: unreadable, not UTF-8, or not YAML.
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
    return parse_scenario(read_yaml(path), os.fspath(path))


def reference_scenario() -> Scenario:
    """The reference experiment of the seed design, from the YAML shipped in the package.

    Examples
    --------
    >>> scenario = reference_scenario()
    >>> scenario.iterations[-1], scenario.seeds.random_seed, scenario.seeds.bandit_seed
    (1000000, 42, 123)
    """
    resource = resources.files("headliner").joinpath(REFERENCE_RESOURCE)
    source = f"headliner/{REFERENCE_RESOURCE}"
    return parse_scenario(_parse_yaml(resource.read_text(encoding="utf-8"), source), source)
