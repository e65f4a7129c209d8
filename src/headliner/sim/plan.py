"""Plan a campaign before its first send: when a winner will be declared, how sure, what it earns.

A plan is a campaign's inputs -- headlines and their expected open rates (or a
baseline rate and the best one's lift), list size (or daily volume and
length), waves or per-send traffic, the open-delay curve, the attribution
window and the service's settings -- simulated as the decision service would
run it (:func:`~headliner.sim.campaign.simulate_campaign`, the service's own
compiled decision path), many times over. The plan's figures, each with its
95% interval:

- hours and sends until a winner is declared (median and 90th percentile
  over every simulated campaign; one that never declares counts as later than
  any, so a figure is None when too few declare), and the share that never do;
- P(the declared headline is the best) and P(it is within 1% of the best),
  over every campaign (one that declares nothing has picked nothing);
- the expected extra opens against an even split and against a powered A/B
  test then the winner, and the opens lost against always the best headline;
- a verdict in plain words, and recommendations: the smallest list, the
  cadence and the burn-in that keep P(within 1%) at 95% or more, each found by
  a small search over a few candidates, each candidate a cheaper Monte Carlo.

A plan's inputs (:class:`PlanSpec`) have the keys of a scenario's
``campaign:`` section, at the top level, plus the headlines and rates::

    name: spring sale
    headlines: 5                 # or their names: [A, B, C, D, E]
    open_rates: [0.18, 0.21, 0.16, 0.24, 0.20]   # or baseline_rate: 0.2, best_lift: 0.1
    list_size: 1000000           # or daily_volume: 250000, campaign_length: 4d
    waves: {count: 20, every: 2h}                # or {size: 50000, every: 2h}, or per_send
    open_delay: {median: 2h, p95: 24h}
    attribution_window: 72h
    replications: 1000
    seed: 2024

A simulate scenario with a ``campaign:`` section is a plan too
(:func:`load_plan`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headliner.core.errors import InvalidParameterError
from headliner.core.policies import AB_TEST_SIZE_CONSTRAINTS, ab_test_sends_per_arm
from headliner.core.validation import Interval
from headliner.sim.campaign import (
    HOUR,
    WITHIN_BEST,
    Campaign,
    CampaignResult,
    ProgressCallback,
    mean_and_ci,
    proportion_and_ci,
    simulate_campaign,
)
from headliner.sim.scenarios import (
    CampaignSpec,
    Duration,
    PerSendSpec,
    PriorsSpec,
    Scenario,
    ScenarioError,
    WavesSpec,
    parse_scenario,
    read_yaml,
    validation_message,
    within,
)

DAY = 86400.0
#: The recommendations look for settings that keep P(within 1%) at least this high.
TARGET = 0.95

#: The plan's own inputs, declared once; the model reads them through ``within``.
PLAN_CONSTRAINTS: dict[str, Interval] = {
    # an open rate the plan can learn from: never certain, never impossible
    "open_rate": AB_TEST_SIZE_CONSTRAINTS["baseline_rate"],
    "best_lift": AB_TEST_SIZE_CONSTRAINTS["min_detectable_lift"],
    # the service's experiments have 2 to 100 headlines
    "headlines": Interval(int, 2, 100),
    "daily_volume": Interval(float, 0.0, None, closed="neither"),
    "campaign_length": Interval(float, 0.0, 366 * DAY, closed="right"),
    "wave_count": Interval(int, 1),
    "replications": Interval(int, 1),
    "seed": Interval(int, 0),
}
_RULES = PLAN_CONSTRAINTS
_OWNER = "Plan"

OpenRate = Annotated[float, within(_RULES["open_rate"])]
HeadlineName = Annotated[str, Field(min_length=1, max_length=500)]


class PlanWavesSpec(BaseModel):
    """``waves: {size: 50000, every: 2h}`` or ``waves: {count: 20, every: 2h}``.

    ``count`` splits the list into that many waves (the last one smaller when
    it does not divide); ``size`` and ``count`` are exclusive.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: Annotated[int | None, within(Campaign.parameter_constraints["wave_size"])] = None
    count: Annotated[int | None, within(_RULES["wave_count"])] = None
    every: Duration = WavesSpec().every

    @model_validator(mode="after")
    def _size_or_count(self) -> PlanWavesSpec:
        if self.size is not None and self.count is not None:
            raise ValueError("give either size or count, not both")
        return self

    def resolve(self, list_size: int) -> WavesSpec:
        """The simulator's waves: a size, the default's when neither was given."""
        if self.count is not None:
            return WavesSpec(size=max(1, math.ceil(list_size / self.count)), every=self.every)
        if self.size is not None:
            return WavesSpec(size=self.size, every=self.every)
        return WavesSpec(every=self.every)


class PlanSpec(CampaignSpec):
    """A plan's inputs: the campaign as the service would run it, and what is expected of it.

    Unknown keys are rejected; the campaign keys are those of a scenario's
    ``campaign:`` section (:class:`~headliner.sim.scenarios.CampaignSpec`),
    with the service's defaults. The model is JSON-serialisable
    (``model_dump(mode="json")`` validates back to an equal plan), so a plan
    can be stored with the experiment created from it.

    Attributes
    ----------
    name : str
    headlines : list of str
        Distinct names, 2 to 100. A number ``n`` stands for ``Headline 1`` ..
        ``Headline n``; a scenario's ``[{text, true_open_rate}, ...]`` sets
        the names and ``open_rates`` at once.
    open_rates : list of float or None
        Each headline's expected open rate, in (0, 1).
    baseline_rate, best_lift : float or None
        Instead of ``open_rates``: every headline at ``baseline_rate`` but the
        first, at ``baseline_rate * (1 + best_lift)`` (which must be < 1).
    list_size : int or None
        Sends over the whole campaign, at least one per headline.
    daily_volume, campaign_length : float or None
        Instead of ``list_size``: sends a day and the campaign's length
        (seconds or a duration such as ``4d``). Without ``waves`` or
        ``per_send`` such a campaign is sent per send at ``daily_volume / 24``
        an hour.
    waves : PlanWavesSpec or None
        As in a campaign section, and ``count`` instead of ``size``.
    priors : PriorsSpec
    replications : int
        Simulated campaigns, default 1,000.
    seed : int or None
        Root seed (None: fresh entropy, echoed in the plan).
    """

    name: str = "plan"
    headlines: list[HeadlineName] = Field(min_length=2, max_length=100)
    open_rates: list[OpenRate] | None = None
    baseline_rate: Annotated[float | None, within(_RULES["open_rate"])] = None
    best_lift: Annotated[float | None, within(_RULES["best_lift"])] = None
    list_size: Annotated[int | None, within(Campaign.parameter_constraints["n_sends"])] = None  # type: ignore[assignment]
    daily_volume: Annotated[float | None, within(_RULES["daily_volume"])] = None
    campaign_length: Annotated[Duration | None, within(_RULES["campaign_length"])] = None
    waves: PlanWavesSpec | None = None  # type: ignore[assignment]
    counting: Literal["delay_aware"] = "delay_aware"
    priors: PriorsSpec = PriorsSpec()
    replications: Annotated[int, within(_RULES["replications"])] = 1000
    seed: Annotated[int | None, within(_RULES["seed"])] = None

    @model_validator(mode="before")
    @classmethod
    def _headline_forms(cls, data: Any) -> Any:
        # A scenario's headlines carry their rates; bare rates need names.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        headlines = data.get("headlines")
        scenario_style = isinstance(headlines, list) and bool(headlines)
        if scenario_style and all(isinstance(h, dict) for h in headlines):
            if "open_rates" in data:
                raise ValueError(
                    "open_rates: give each headline's true_open_rate or open_rates, not both"
                )
            data["headlines"] = [item.get("text") for item in headlines]
            data["open_rates"] = [item.get("true_open_rate") for item in headlines]
        elif headlines is None and isinstance(data.get("open_rates"), list):
            data["headlines"] = len(data["open_rates"])
        return data

    @field_validator("headlines", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            rule = _RULES["headlines"]
            try:
                rule.check(value, "headlines", _OWNER)
            except InvalidParameterError:
                raise ValueError(f"a number of headlines must be {rule.describe()}") from None
            return [f"Headline {i}" for i in range(1, value + 1)]
        return value

    @field_validator("headlines")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({text for text in value if value.count(text) > 1})
        if repeated:
            raise ValueError(f"headline names must be distinct; repeated: {repeated}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PlanSpec:
        n = len(self.headlines)
        if self.open_rates is not None:
            if self.baseline_rate is not None or self.best_lift is not None:
                raise ValueError(
                    "open_rates: give open_rates, or baseline_rate and best_lift, not both"
                )
            if len(self.open_rates) != n:
                raise ValueError(
                    f"open_rates: {len(self.open_rates)} rates for {n} headlines; give one each"
                )
        elif self.baseline_rate is None or self.best_lift is None:
            raise ValueError(
                "open_rates: give each headline's open rate, or both baseline_rate and best_lift"
            )
        else:
            best = self.baseline_rate * (1.0 + self.best_lift)
            if best >= 1.0:
                raise ValueError(
                    f"best_lift: makes the best headline's rate {best:.4g}; it must be "
                    f"< {1.0 / self.baseline_rate - 1.0:.4g} with baseline_rate "
                    f"{self.baseline_rate:g} (got {self.best_lift:g})"
                )
        by_volume = self.daily_volume is not None or self.campaign_length is not None
        if self.list_size is not None and by_volume:
            raise ValueError(
                "list_size: give list_size, or daily_volume and campaign_length, not both"
            )
        if self.list_size is None and (self.daily_volume is None or self.campaign_length is None):
            raise ValueError("list_size: give list_size, or both daily_volume and campaign_length")
        sends = self.n_sends
        what = "list_size" if self.list_size is not None else "daily_volume"
        if n > sends:
            volume = "" if self.list_size is not None else " (daily_volume x campaign_length)"
            raise ValueError(
                f"{what}: {sends:,} sends{volume} for {n} headlines; a plan needs at least "
                "one send per headline"
            )
        return self

    @property
    def true_rates(self) -> tuple[float, ...]:
        """Each headline's expected open rate."""
        if self.open_rates is not None:
            return tuple(self.open_rates)
        assert self.baseline_rate is not None and self.best_lift is not None
        best = self.baseline_rate * (1.0 + self.best_lift)
        return (best, *([self.baseline_rate] * (len(self.headlines) - 1)))

    @property
    def n_sends(self) -> int:
        """Sends over the whole campaign."""
        if self.list_size is not None:
            return self.list_size
        assert self.daily_volume is not None and self.campaign_length is not None
        return round(self.daily_volume * self.campaign_length / DAY)

    def campaign_spec(self) -> CampaignSpec:
        """The plan's campaign as a scenario's ``campaign:`` section (sizes resolved)."""
        fields = {name: getattr(self, name) for name in CampaignSpec.model_fields}
        fields["list_size"] = self.n_sends
        fields["waves"] = self.waves.resolve(self.n_sends) if self.waves is not None else None
        if self.waves is None and self.per_send is None and self.list_size is None:
            assert self.daily_volume is not None
            fields["per_send"] = PerSendSpec(rate_per_hour=self.daily_volume / 24.0)
        return CampaignSpec.model_validate(fields)

    def build_campaign(self) -> Campaign:
        """The :class:`~headliner.sim.campaign.Campaign` the plan simulates.

        Raises
        ------
        ScenarioError
            Naming the key of a setting the library rejects (an attribution
            window shorter than the wave interval, say).
        """
        return self.campaign_spec().build(self.true_rates, self.priors, section="")

    def to_scenario(self) -> Scenario:
        """The plan as a ``headliner simulate`` scenario (its campaign section and seed)."""
        return parse_scenario(
            {
                "name": self.name,
                "headlines": [
                    {"text": text, "true_open_rate": rate}
                    for text, rate in zip(self.headlines, self.true_rates, strict=True)
                ],
                "seeds": {"monte_carlo_seed": self.seed},
                "priors": self.priors.model_dump(),
                "campaign": self.campaign_spec().model_dump(),
            },
            self.name,
        )

    def experiment_settings(self) -> dict[str, Any]:
        """What ``POST /v1/experiments`` needs to run this plan: a JSON-ready mapping.

        The keys are those of the service's experiment request (name,
        headlines, policy, leader_probability, priors, attribution window,
        burn-in, floor, winner exploration, stopping rule, delay prior), so
        that what was planned is what runs.

        Examples
        --------
        >>> plan = PlanSpec(headlines=["A", "B"], open_rates=[0.1, 0.12], list_size=10_000)
        >>> settings = plan.experiment_settings()
        >>> settings["headlines"], settings["burn_in_per_arm"], settings["stopping"]["enabled"]
        (['A', 'B'], 100, True)
        """
        policy = self.policy
        stopping: dict[str, Any] = {"enabled": False}
        if self.stopping is not None:
            rule = self.stopping
            stopping = {
                "enabled": True,
                "p_best_threshold": rule.p_best_threshold,
                "value_remaining_threshold": rule.value_remaining_threshold,
                "value_remaining_quantile": rule.value_remaining_quantile,
                "require": rule.require,
                "min_opens": rule.min_opens,
                "check_interval_seconds": rule.check_interval,
                "rate_spread": rule.rate_spread,
            }
        return {
            "name": self.name,
            "headlines": list(self.headlines),
            "policy": policy.name,
            "leader_probability": getattr(policy, "leader_probability", None),
            "alpha_prior": self.priors.alpha_prior,
            "beta_prior": self.priors.beta_prior,
            "attribution_window_seconds": self.attribution_window,
            "burn_in_per_arm": self.burn_in_per_arm,
            "burn_in_share": self.burn_in_share,
            "floor": self.floor,
            "winner_exploration": self.winner_exploration,
            "stopping": stopping,
            "delay_prior": {
                "median_seconds": self.delay_prior.median,
                "p95_seconds": self.delay_prior.p95,
                "weight": self.delay_prior.weight,
            },
        }


def parse_plan(
    data: object, source: str = "<plan>", *, names: Mapping[str, str] | None = None
) -> PlanSpec:
    """Validate a plan's inputs (a mapping, from YAML, JSON or options).

    Parameters
    ----------
    data : mapping
    source : str
        Names where the inputs came from, at the start of an error.
    names : mapping, optional
        Key path -> how the caller calls it (``{"list_size": "--list-size"}``),
        so that an error names the option that was given.

    Raises
    ------
    ScenarioError
        One line: ``"<source>: <key path>: <problem>"``.
    """
    if not isinstance(data, dict):
        kind = "nothing" if data is None else type(data).__name__
        raise ScenarioError(f"{source}: top level: expected a mapping of plan keys, got {kind}")
    try:
        plan = PlanSpec.model_validate(data)
        plan.build_campaign()
    except ValidationError as exc:
        raise ScenarioError(_renamed(validation_message(exc, source), source, names)) from None
    except ScenarioError as exc:
        raise ScenarioError(_renamed(f"{source}: {exc}", source, names)) from None
    return plan


def _renamed(message: str, source: str, names: Mapping[str, str] | None) -> str:
    """``message`` with the key paths of ``names`` replaced, where a problem starts."""
    if not names:
        return message
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        for lead in (f"{source}: ", "; "):
            # The key itself, or an item or key inside it: open_rates[1], waves.size.
            message = re.sub(re.escape(lead + path) + r"(?=[:\[.])", lead + name, message)
    return message


def load_plan(path: str | os.PathLike[str]) -> PlanSpec:
    """Read a plan from YAML: a plan file, or a simulate scenario with a ``campaign:`` section.

    Raises
    ------
    ScenarioError
        One line naming the file, the key path and the problem.
    """
    source = os.fspath(path)
    data = read_yaml(path)
    if isinstance(data, dict) and "campaign" in data:
        return plan_of_scenario(parse_scenario(data, source), source)
    return parse_plan(data, source)


def plan_of_scenario(scenario: Scenario, source: str = "<scenario>") -> PlanSpec:
    """The plan of a scenario's campaign: its headlines, rates, priors, seed and settings."""
    if scenario.campaign is None:
        raise ScenarioError(f"{source}: campaign: the scenario has no campaign section")
    fields = scenario.campaign.model_dump(exclude={"counting", "waves"}, exclude_unset=True)
    if scenario.campaign.waves is not None:
        fields["waves"] = scenario.campaign.waves.model_dump()
    if scenario.campaign.counting != "delay_aware":
        raise ScenarioError(
            f"{source}: campaign.counting: a plan runs the service's delay_aware counting "
            f"(got {scenario.campaign.counting!r})"
        )
    return parse_plan(
        {
            **fields,
            "name": scenario.name,
            "headlines": scenario.headline_texts,
            "open_rates": [h.true_open_rate for h in scenario.headlines],
            "priors": scenario.priors.model_dump(),
            "seed": scenario.seeds.monte_carlo_seed,
        },
        source,
    )


# --- the figures ------------------------------------------------------------------------
def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def censored_quantile(values: NDArray[np.float64], q: float) -> tuple[float, float, float]:
    """The ``q``-quantile of ``values`` (inf: never) with a distribution-free 95% interval.

    The estimate is an observed value (the smallest with at least ``q`` of
    the values at or below it); the interval runs between the order
    statistics whose ranks bound a Binomial(n, q) count at its 2.5% and 97.5%
    points. Infinite ends mean "not by the end of the campaign".
    """
    from scipy import special  # not scipy.stats: a second less to start a plan

    x = np.sort(np.asarray(values, dtype=np.float64))
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan
    estimate = x[min(max(math.ceil(q * n), 1), n) - 1]
    # The Binomial(n, q) quantiles: the first count whose CDF reaches 2.5% / 97.5%.
    cdf = special.bdtr(np.arange(n + 1), n, q)
    low_rank = int(np.searchsorted(cdf, 0.025))
    high_rank = int(np.searchsorted(cdf, 0.975)) + 1
    low = x[min(max(low_rank, 1), n) - 1]
    high = x[min(max(high_rank, 1), n) - 1]
    return float(estimate), float(low), float(high)


def _ab_test_opens(
    campaign: Campaign, per_arm: int | None, n_replications: int, seed: int
) -> NDArray[np.float64]:
    """Expected opens of "A/B test, then send the observed winner to the rest", per replication.

    The test sends ``per_arm`` to every headline; its winner is the headline
    with the most opens once they are all in (ties broken at random) and gets
    every send left. A list too small for the test is all test: an even split.
    """
    rates = np.asarray(campaign.true_rates, dtype=np.float64)
    n, k = campaign.n_sends, rates.size
    if per_arm is None or per_arm * k >= n:
        return np.full(n_replications, n * float(rates.mean()))
    rng = np.random.default_rng([seed, 1])
    opens = rng.binomial(per_arm, rates, size=(n_replications, k)).astype(np.float64)
    winner = np.argmax(opens + rng.random((n_replications, k)), axis=1)
    opens_out: NDArray[np.float64] = per_arm * rates.sum() + (n - per_arm * k) * rates[winner]
    return opens_out


def _expected_opens(result: CampaignResult) -> NDArray[np.float64]:
    """Expected opens of each replication's sends: sum over headlines of sends x rate."""
    rates = np.asarray(result.campaign.true_rates, dtype=np.float64)
    opens: NDArray[np.float64] = result.sends.astype(np.float64) @ rates
    return opens


def _right_picks(result: CampaignResult) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per replication: declared the best headline; declared one within 1% of it."""
    rates = np.asarray(result.campaign.true_rates)
    best = result.decided & (rates[np.where(result.decided, result.declared_arm, 0)] == rates.max())
    return best, result.within_best(WITHIN_BEST)


def _never(values: NDArray[Any], decided: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Decision times with the campaigns that never declared at infinity."""
    return np.where(decided, np.asarray(values, dtype=np.float64), np.inf)


# --- recommendations --------------------------------------------------------------------
SearchKind = Literal["list_size", "cadence", "burn_in"]
#: List sizes tried, as shares of the plan's (the larger ones only when it falls short).
LIST_FACTORS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2)
LIST_FACTORS_UP = (2.0, 4.0)
#: Cadences tried: the plan's number of waves halved and doubled, and its interval.
CADENCE_FACTORS = (0.5, 2.0)
#: Burn-ins tried: the plan's times these (none among them).
BURN_IN_FACTORS = (0.0, 0.5, 2.0, 4.0)
BURN_IN_WITHOUT_ONE = (50, 100, 200, 400)
#: Replications of each candidate: a tenth of the plan's, at least this many.
MIN_SEARCH_REPLICATIONS = 100


@dataclass(frozen=True)
class Candidate:
    """One setting tried by a recommendation's search, and what it gave.

    Attributes
    ----------
    setting : dict
        What was changed, in the plan's keys (``{"list_size": 62500}``).
    campaign : Campaign
    replications : int
    p_best, p_within_1pct : float
        Shares of the campaigns that declared the best headline / one within 1%.
    p_best_ci95, p_within_1pct_ci95 : tuple of float
        Their Wilson 95% intervals.
    hours_to_decision : float or None
        Median hours to a declaration (None: more than half never declare).
    extra_opens_vs_even : float
        Mean expected extra opens over an even split.
    extra_opens_ci95_half : float
        Half-width of its 95% interval.
    is_plan : bool
        The plan's own setting (its figures come from the full run).
    """

    setting: dict[str, Any]
    campaign: Campaign
    replications: int
    p_best: float
    p_within_1pct: float
    p_best_ci95: tuple[float, float]
    p_within_1pct_ci95: tuple[float, float]
    hours_to_decision: float | None
    extra_opens_vs_even: float
    extra_opens_ci95_half: float
    is_plan: bool = False

    @property
    def meets_target(self) -> bool:
        """Whether P(within 1%) is at least :data:`TARGET`."""
        return self.p_within_1pct >= TARGET

    def to_document(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            **self.setting,
            "p_best": self.p_best,
            "p_within_1pct": self.p_within_1pct,
            "p_best_ci95": list(self.p_best_ci95),
            "p_within_1pct_ci95": list(self.p_within_1pct_ci95),
            "hours_to_decision_median": self.hours_to_decision,
            "extra_opens_vs_even": self.extra_opens_vs_even,
            "extra_opens_vs_even_ci95": [
                self.extra_opens_vs_even - self.extra_opens_ci95_half,
                self.extra_opens_vs_even + self.extra_opens_ci95_half,
            ],
            "is_plan": self.is_plan,
        }


def _candidate(
    setting: dict[str, Any], result: CampaignResult, *, is_plan: bool = False
) -> Candidate:
    best, within = _right_picks(result)
    p_best, best_low, best_high = proportion_and_ci(best)
    p_within, low, high = proportion_and_ci(within)
    hours, _, _ = censored_quantile(_never(result.decision_hours, result.decided), 0.5)
    campaign = result.campaign
    even = campaign.n_sends * float(np.mean(campaign.true_rates))
    extra, half = mean_and_ci(_expected_opens(result) - even)
    return Candidate(
        setting=setting,
        campaign=campaign,
        replications=result.n_replications,
        p_best=p_best,
        p_within_1pct=p_within,
        p_best_ci95=(best_low, best_high),
        p_within_1pct_ci95=(low, high),
        hours_to_decision=_finite(hours),
        extra_opens_vs_even=extra,
        extra_opens_ci95_half=half if math.isfinite(half) else 0.0,
        is_plan=is_plan,
    )


@dataclass(frozen=True)
class Search:
    """A recommendation: the candidates tried, the one chosen and how.

    Attributes
    ----------
    kind : {"list_size", "cadence", "burn_in"}
    rule : str
        How the recommended candidate is chosen among those reaching the target.
    candidates : tuple of Candidate
        Sorted by the setting searched; the plan's own is among them.
    recommended : Candidate or None
        None when no candidate reaches the target.
    """

    kind: SearchKind
    rule: str
    candidates: tuple[Candidate, ...]
    recommended: Candidate | None

    def to_document(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        chosen = self.recommended
        return {
            "rule": self.rule,
            "recommended": None if chosen is None else chosen.to_document(),
            "candidates": [c.to_document() for c in self.candidates],
        }


def _plan_candidates(campaign: Campaign) -> dict[SearchKind, list[tuple[dict[str, Any], Campaign]]]:
    """The settings each search tries (the plan's own excluded), as campaigns."""
    n_steps = int(campaign.step_sends().shape[0])
    out: dict[SearchKind, list[tuple[dict[str, Any], Campaign]]] = {
        "list_size": [],
        "cadence": [],
        "burn_in": [],
    }

    def add(kind: SearchKind, setting: dict[str, Any], **changes: Any) -> None:
        try:
            out[kind].append((setting, replace(campaign, **changes)))
        except InvalidParameterError:
            pass  # a setting the service would refuse (a window shorter than the interval)

    def scaled(n: int) -> dict[str, Any]:
        # The same schedule (waves and interval, or the per-send campaign's length).
        if campaign.wave_size is not None:
            return {"n_sends": n, "wave_size": max(1, math.ceil(n / n_steps))}
        assert campaign.sends_per_hour is not None
        return {"n_sends": n, "sends_per_hour": campaign.sends_per_hour * n / campaign.n_sends}

    for factor in LIST_FACTORS:
        n = round(campaign.n_sends * factor)
        if n >= max(campaign.n_arms, 1):
            add("list_size", {"list_size": n}, **scaled(n))
    every = campaign.interval_seconds
    for factor in CADENCE_FACTORS:
        add(
            "cadence",
            _cadence_setting(campaign, n_steps, every * factor),
            interval_seconds=every * factor,
        )
        if campaign.wave_size is not None:
            count = max(2, round(n_steps * factor))
            size = math.ceil(campaign.n_sends / count)
            add("cadence", _cadence_setting(campaign, count, every, size), wave_size=size)
    burn_ins = (
        [round(campaign.burn_in_per_arm * f) for f in BURN_IN_FACTORS]
        if campaign.burn_in_per_arm > 0
        else list(BURN_IN_WITHOUT_ONE)
    )
    for burn_in in sorted(set(burn_ins) - {campaign.burn_in_per_arm}):
        add("burn_in", {"burn_in_per_arm": burn_in}, burn_in_per_arm=burn_in)
    return out


def _cadence_setting(
    campaign: Campaign, count: int, every: float, size: int | None = None
) -> dict[str, Any]:
    if campaign.wave_size is None:
        return {"refresh_hours": every / HOUR}
    size = size if size is not None else campaign.wave_size
    return {
        "waves": math.ceil(campaign.n_sends / size),
        "wave_size": size,
        "every_hours": every / HOUR,
    }


def _own_setting(kind: SearchKind, campaign: Campaign) -> dict[str, Any]:
    if kind == "list_size":
        return {"list_size": campaign.n_sends}
    if kind == "burn_in":
        return {"burn_in_per_arm": campaign.burn_in_per_arm}
    n_steps = int(campaign.step_sends().shape[0])
    return _cadence_setting(campaign, n_steps, campaign.interval_seconds)


_RULE_TEXT: dict[SearchKind, str] = {
    "list_size": "the smallest list (same waves and interval, each wave scaled) whose "
    "P(within 1%) and every larger one's reach the target",
    "cadence": "among the cadences reaching the target, the one with the most extra opens "
    "(the plan's own unless another beats it by more than its 95% interval)",
    "burn_in": "the smallest burn-in reaching the target",
}


def _choose(kind: SearchKind, candidates: list[Candidate]) -> Candidate | None:
    if kind == "list_size":
        chosen = None
        for candidate in sorted(candidates, key=lambda c: -c.campaign.n_sends):
            if not candidate.meets_target:
                break
            chosen = candidate
        return chosen
    reaching = [c for c in candidates if c.meets_target]
    if not reaching:
        return None
    if kind == "burn_in":
        return min(reaching, key=lambda c: c.campaign.burn_in_per_arm)
    best = max(reaching, key=lambda c: c.extra_opens_vs_even)
    own = next((c for c in reaching if c.is_plan), None)
    # A cadence no better than the plan's beyond the noise of its figure is no change.
    if own is not None and own.extra_opens_vs_even >= best.extra_opens_vs_even - (
        best.extra_opens_ci95_half
    ):
        return own
    return best


def _sort_key(kind: SearchKind) -> Callable[[Candidate], tuple[float, ...]]:
    if kind == "list_size":
        return lambda c: (c.campaign.n_sends,)
    if kind == "burn_in":
        return lambda c: (c.campaign.burn_in_per_arm,)
    return lambda c: (c.campaign.interval_seconds, -c.campaign.step_sends().shape[0])


# --- the plan ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CampaignPlan:
    """A planned campaign: its inputs, the simulated campaigns and the recommendations.

    Attributes
    ----------
    spec : PlanSpec
    result : CampaignResult
        The plan's replications (``result.seed`` is the root seed).
    ab_test_opens : ndarray of shape (n_replications,)
        Expected opens of the A/B test then the winner, per replication.
    searches : tuple of Search
        The list-size, cadence and burn-in searches (empty when not asked).
    search_replications : int
        Replications of every candidate of the searches.
    """

    spec: PlanSpec
    result: CampaignResult
    ab_test_opens: NDArray[np.float64]
    searches: tuple[Search, ...]
    search_replications: int

    @property
    def campaign(self) -> Campaign:
        """The simulated campaign."""
        return self.result.campaign

    @property
    def ab_test_sends_per_arm(self) -> int | None:
        """Sends per headline of the powered A/B test (None: nothing to detect)."""
        return ab_test_sends_per_arm(self.campaign.true_rates)

    def own_candidate(self, kind: SearchKind) -> Candidate:
        """The plan's own setting of a search, with the figures of its full run."""
        return _candidate(_own_setting(kind, self.campaign), self.result, is_plan=True)

    def search(self, kind: SearchKind) -> Search | None:
        """The search of that kind, if it ran."""
        return next((s for s in self.searches if s.kind == kind), None)

    def figures(self) -> dict[str, Any]:
        """The plan's figures, each with its 95% interval (see the module docstring)."""
        result = self.result
        campaign = self.campaign
        rates = np.asarray(campaign.true_rates, dtype=np.float64)
        decided = result.decided
        even = campaign.n_sends * float(rates.mean())
        bandit = _expected_opens(result)
        best, within = _right_picks(result)
        never_share, never_low, never_high = proportion_and_ci(~decided)
        p_best, best_low, best_high = proportion_and_ci(best)
        p_within, within_low, within_high = proportion_and_ci(within)

        def quantiles(values: NDArray[Any]) -> dict[str, Any]:
            times = _never(values, decided)
            median = censored_quantile(times, 0.5)
            p90 = censored_quantile(times, 0.9)
            return {
                "median": _finite(median[0]),
                "median_ci95": [_finite(median[1]), _finite(median[2])],
                "p90": _finite(p90[0]),
                "p90_ci95": [_finite(p90[1]), _finite(p90[2])],
            }

        def mean(values: NDArray[Any]) -> dict[str, Any]:
            centre, half = mean_and_ci(values)
            interval = [_finite(centre - half), _finite(centre + half)]
            return {"mean": _finite(centre), "ci95": interval}

        per_arm = self.ab_test_sends_per_arm
        if_declared = within[decided]
        return {
            "hours_to_decision": quantiles(result.decision_hours),
            "sends_to_decision": quantiles(result.decision_sends),
            "no_decision_share": never_share,
            "no_decision_share_ci95": [never_low, never_high],
            "p_best": p_best,
            "p_best_ci95": [best_low, best_high],
            "p_within_1pct": p_within,
            "p_within_1pct_ci95": [within_low, within_high],
            "p_within_1pct_if_declared": _finite(float(if_declared.mean()))
            if if_declared.size
            else None,
            "opens": mean(bandit),
            "even_split_opens": even,
            "extra_opens_vs_even": mean(bandit - even),
            "extra_opens_vs_ab_test": mean(bandit - self.ab_test_opens),
            "regret": mean(result.regret),
            "ab_test_sends_per_arm": per_arm,
            "ab_test_sends_total": None if per_arm is None else per_arm * campaign.n_arms,
            "ab_test_fits": per_arm is not None and per_arm * campaign.n_arms < campaign.n_sends,
        }

    def verdict(self) -> str:
        """The plan in plain words: when a winner comes, what it earns, what a blast would do."""
        return _verdict(self, self.figures())

    def to_document(self) -> dict[str, Any]:
        """The plan as one JSON-ready object (what ``headliner plan --format json`` prints).

        Keys: ``name``, ``replications``, ``seed``, ``inputs`` (the validated
        :class:`PlanSpec`, which ``PlanSpec.model_validate`` reads back),
        ``campaign`` (the simulated campaign's resolved settings), the
        figures of :meth:`figures`, ``verdict``, ``recommendations`` (the
        target, how the candidates were searched, and each search's
        candidates and choice) and ``headlines`` (per headline: its rate,
        share of the sends and of the declarations).
        """
        campaign = self.campaign
        figures = self.figures()
        result = self.result
        return {
            "name": self.spec.name,
            "replications": result.n_replications,
            "seed": result.seed,
            "inputs": self.spec.model_dump(mode="json"),
            "campaign": _settings(campaign),
            **figures,
            "verdict": _verdict(self, figures),
            "recommendations": {
                "target_p_within_1pct": TARGET,
                "method": self.search_method(),
                **{search.kind: search.to_document() for search in self.searches},
            },
            "headlines": [
                {
                    "text": text,
                    "true_open_rate": rate,
                    "send_share": float(result.sends[:, k].mean() / campaign.n_sends),
                    "declared_share": float(np.mean(result.declared_arm == k)),
                }
                for k, (text, rate) in enumerate(
                    zip(self.spec.headlines, campaign.true_rates, strict=True)
                )
            ],
        }

    def search_method(self) -> str:
        """How the recommendations were searched, in a sentence."""
        if not self.searches:
            return "not searched"
        return (
            f"a bounded search: each candidate setting simulated {self.search_replications:,} "
            f"times with the plan's seed (the same random draws for every candidate), "
            f"everything else as planned; list sizes from 1/32 to 1/2 of the plan's "
            f"(up to 4x when it falls short), the number of waves (or the interval) halved "
            f"and doubled, burn-ins of none, half, twice and 4x the plan's. A candidate "
            f"reaches the target when at least {TARGET:.0%} of its campaigns declare a "
            f"headline within {WITHIN_BEST:.0%} of the best."
        )


def _settings(campaign: Campaign) -> dict[str, Any]:
    """The simulated campaign's resolved settings, in hours."""
    traffic: dict[str, Any]
    if campaign.wave_size is not None:
        traffic = {
            "waves": {
                "count": int(campaign.step_sends().shape[0]),
                "size": campaign.wave_size,
                "every_hours": campaign.interval_seconds / HOUR,
            }
        }
    else:
        traffic = {
            "per_send": {
                "rate_per_hour": campaign.sends_per_hour,
                "refresh_hours": campaign.interval_seconds / HOUR,
            }
        }
    delay = campaign.open_delay
    return {
        "list_size": campaign.n_sends,
        **traffic,
        "open_delay_hours": None
        if delay is None
        else {"median": delay.median_seconds / HOUR, "p95": delay.p95_seconds / HOUR},
        "attribution_window_hours": campaign.attribution_window_seconds / HOUR,
        "policy": campaign.policy.name,
        "burn_in_per_arm": campaign.burn_in_per_arm,
        "floor": campaign.floor,
        "stopping": campaign.stopping is not None,
    }


def _about(value: float) -> str:
    """A count rounded to two significant figures, with thousands separators."""
    magnitude = abs(value)
    if magnitude < 10:
        return f"{value:,.0f}"
    digits = 2 - int(math.floor(math.log10(magnitude))) - 1
    return f"{round(value, digits):,.0f}"


def _hour(value: float) -> str:
    return f"{value:,.0f}" if math.isclose(value, round(value)) else f"{value:,.1f}"


def describe_traffic(campaign: Campaign) -> str:
    """``"1,000,000 sends in 20 waves every 2h"`` or ``"100,000 sends at 4,000 an hour"``."""
    n = campaign.n_sends
    if campaign.wave_size is not None:
        count = int(campaign.step_sends().shape[0])
        every = _hour(campaign.interval_seconds / HOUR)
        if count == 1:
            return f"{n:,} sends in a single blast"
        return f"{n:,} sends in {count:,} waves every {every}h"
    assert campaign.sends_per_hour is not None
    return f"{n:,} sends at {campaign.sends_per_hour:,.0f} an hour"


def _verdict(plan: CampaignPlan, figures: Mapping[str, Any]) -> str:
    campaign = plan.campaign
    median = figures["hours_to_decision"]["median"]
    decided = 1.0 - figures["no_decision_share"]
    if median is not None:
        when = f"a winner is likely by hour {_hour(median)}"
    elif decided > 0:
        when = f"a winner is declared in only {decided:.0%} of campaigns before the list runs out"
    else:
        when = "no winner is declared before the list runs out"
    extra = figures["extra_opens_vs_even"]["mean"]
    gain = (
        f"expect about {_about(extra)} extra opens over an even split"
        if extra >= 0
        else f"expect about {_about(-extra)} fewer opens than an even split"
    )
    if figures["ab_test_fits"]:
        versus = figures["extra_opens_vs_ab_test"]["mean"]
        test = f"an A/B test of {figures['ab_test_sends_per_arm']:,} sends per headline"
        gain += (
            f" and {_about(versus)} over {test} then the winner"
            if versus >= 0
            else f" but {_about(-versus)} fewer than {test} then the winner"
        )
    elif figures["ab_test_sends_per_arm"] is not None:
        gain += (
            f"; a powered A/B test would need {figures['ab_test_sends_total']:,} sends, "
            "more than the list"
        )
    sentences = [f"With {describe_traffic(campaign)} {when}; {gain}."]
    if median is not None and figures["p_within_1pct"] < TARGET:
        sentences.append(
            f"The declared headline is within 1% of the best in only "
            f"{figures['p_within_1pct']:.0%} of campaigns."
        )
    if campaign.step_sends().shape[0] > 1:
        sentences.append(
            f"A single blast of {campaign.n_sends:,} would learn nothing before it is sent."
        )
    else:
        sentences.append("A single blast learns nothing before it is sent: send it in waves.")
    return " ".join(sentences)


def plan_campaign(
    spec: PlanSpec,
    *,
    replications: int | None = None,
    seed: int | None = None,
    recommend: bool = True,
    search_replications: int | None = None,
    n_threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> CampaignPlan:
    """Plan a campaign: simulate it as the service would run it, and search what changes it.

    Parameters
    ----------
    spec : PlanSpec
    replications : int, optional
        Overrides ``spec.replications``.
    seed : int, optional
        Overrides ``spec.seed`` (None in both: fresh entropy, echoed in
        ``plan.result.seed``).
    recommend : bool, default=True
        Run the list-size, cadence and burn-in searches.
    search_replications : int, optional
        Replications of each candidate (default: a tenth of the plan's, at
        least 100, at most the plan's).
    n_threads : int, optional
        Worker threads (default: every core); the result does not depend on it.
    progress : callable, optional
        Called as ``progress(done, total)``, counting replications of the
        plan and of every candidate.

    Returns
    -------
    CampaignPlan

    Raises
    ------
    InvalidParameterError
        For an invalid spec or override (one line naming the parameter).

    Examples
    --------
    >>> spec = PlanSpec(
    ...     headlines=["A", "B"], open_rates=[0.1, 0.2], list_size=20_000,
    ...     waves={"count": 10, "every": "1h"},
    ... )
    >>> plan = plan_campaign(spec, replications=20, seed=1, recommend=False)
    >>> plan.to_document()["p_within_1pct"] > 0.5
    True
    """
    if not isinstance(spec, PlanSpec):
        raise InvalidParameterError(
            f"The 'spec' parameter of plan_campaign must be a PlanSpec. Got {spec!r} instead."
        )
    n_reps = int(
        _RULES["replications"].check(
            replications if replications is not None else spec.replications,
            "replications",
            "plan_campaign",
        )
    )
    chosen_seed = seed if seed is not None else spec.seed
    if chosen_seed is not None:
        _RULES["seed"].check(chosen_seed, "seed", "plan_campaign")
    if search_replications is not None:
        n_search = int(
            _RULES["replications"].check(
                search_replications, "search_replications", "plan_campaign"
            )
        )
    else:
        n_search = min(n_reps, max(MIN_SEARCH_REPLICATIONS, n_reps // 10))
    campaign = spec.build_campaign()
    candidates = _plan_candidates(campaign) if recommend else {}
    # The larger lists are tried only when the plan falls short of the target: known later.
    total = n_reps + n_search * sum(len(c) for c in candidates.values())
    done = 0

    def report(finished: int, _: int) -> None:
        if progress is not None:
            progress(done + finished, total)

    result = simulate_campaign(
        campaign, n_reps, seed=chosen_seed, n_threads=n_threads, progress=report
    )
    done += n_reps
    root = result.seed
    per_arm = ab_test_sends_per_arm(campaign.true_rates)
    ab_opens = _ab_test_opens(campaign, per_arm, n_reps, root)

    def run(setting: dict[str, Any], candidate: Campaign) -> Candidate:
        nonlocal done
        simulated = simulate_campaign(
            candidate, n_search, seed=root, n_threads=n_threads, progress=report
        )
        done += n_search
        return _candidate(setting, simulated)

    searches = []
    for kind, tried in candidates.items():
        own = _candidate(_own_setting(kind, campaign), result, is_plan=True)
        found = [own] + [run(setting, c) for setting, c in tried]
        if kind == "list_size" and not own.meets_target:
            for factor in LIST_FACTORS_UP:
                n = round(campaign.n_sends * factor)
                steps = int(campaign.step_sends().shape[0])
                changes: dict[str, Any] = {"n_sends": n}
                if campaign.wave_size is not None:
                    changes["wave_size"] = math.ceil(n / steps)
                else:
                    assert campaign.sends_per_hour is not None
                    changes["sends_per_hour"] = campaign.sends_per_hour * factor
                total += n_search
                larger = run({"list_size": n}, replace(campaign, **changes))
                found.append(larger)
                if larger.meets_target:
                    break
        found.sort(key=_sort_key(kind))
        searches.append(Search(kind, _RULE_TEXT[kind], tuple(found), _choose(kind, found)))
    return CampaignPlan(spec, result, ab_opens, tuple(searches), n_search)


__all__ = [
    "PLAN_CONSTRAINTS",
    "CampaignPlan",
    "Candidate",
    "PlanSpec",
    "PlanWavesSpec",
    "Search",
    "censored_quantile",
    "load_plan",
    "parse_plan",
    "plan_campaign",
    "plan_of_scenario",
]
