"""A whole simulation study of a scenario: the seed's comparison, baselines, Monte Carlo.

A scenario with a ``campaign:`` section is also simulated as a campaign served
by the decision service (:func:`run_campaign_study`).

This is what ``headliner simulate`` runs. Each policy also gets one seeded run
over the longest horizon (its *trace*), used for the baseline columns of the
comparison table and for the plots. A policy's first ``n`` sends do not
depend on the horizon, so the opens of a run of ``n`` sends are the first
``n`` entries of the trace.

Seeds: Thompson Sampling's trace uses ``bandit_seed`` and every other
policy's uses ``random_seed``, so the traces of ``thompson`` and ``uniform``
are exactly the seed API's runs, and an A/B test's test phase sees the same
recipients as the random split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from headliner.core.policies import THOMPSON, UNIFORM, Policy
from headliner.core.validation import check_int, fail
from headliner.sim import engine
from headliner.sim.campaign import CampaignResult, ProgressCallback, simulate_campaign
from headliner.sim.comparison import lift_pct, run_comparison_experiment
from headliner.sim.montecarlo import MonteCarloResult, policy_labels, run_monte_carlo
from headliner.sim.scenarios import Scenario, ScenarioError

# progress(stage, done, total): stage is "comparison", "traces" or "monte carlo".
StudyProgress = Callable[[str, int, int], None]

# Policies the seed's table already shows: the random split and Thompson Sampling.
_IN_SEED_TABLE = (UNIFORM, THOMPSON)
# Monte Carlo checkpoints between 0 and the horizon, besides the horizons.
_REGRET_POINTS = 50


@dataclass(frozen=True)
class Trace:
    """One seeded run of a policy over the longest horizon.

    Attributes
    ----------
    policy : Policy
    seed : int or None
    arms : ndarray of shape (n_sends,)
        Arm sent each round.
    rewards : int8 ndarray of shape (n_sends,)
        1 for an open.
    """

    policy: Policy
    seed: int | None
    arms: NDArray[np.signedinteger[Any]]
    rewards: NDArray[np.int8]

    def opens_at(self, n_sends: int) -> int:
        """Opens among the first ``n_sends`` sends."""
        return int(np.sum(self.rewards[:n_sends], dtype=np.int64))


@dataclass(frozen=True)
class StudyResult:
    """Everything ``headliner simulate`` shows.

    Attributes
    ----------
    scenario : Scenario
    iterations : list of int
    comparison : DataFrame
        ``run_comparison_experiment``'s table plus, for every other policy
        ``p``, ``{p}_opens`` and ``lift_vs_{p}_pct`` (Thompson Sampling's lift).
    traces : mapping of label to Trace
    monte_carlo : MonteCarloResult or None
        Present when more than one replication was asked for.
    """

    scenario: Scenario
    iterations: list[int]
    comparison: pd.DataFrame
    traces: Mapping[str, Trace]
    monte_carlo: MonteCarloResult | None


def _baseline_columns(
    comparison: pd.DataFrame, label: str, trace: Trace, iterations: Sequence[int]
) -> None:
    opens = [trace.opens_at(n) for n in iterations]
    comparison[f"{label}_opens"] = np.asarray(opens, dtype=np.int64)
    comparison[f"lift_vs_{label}_pct"] = [
        lift_pct(float(b), float(a)) for b, a in zip(comparison["bandit_opens"], opens, strict=True)
    ]


def _checkpoints(horizons: Sequence[int]) -> list[int]:
    # The horizons for the table, plus an even grid so that regret plots as a curve.
    grid = np.linspace(0, horizons[-1], _REGRET_POINTS + 1)[1:].astype(np.int64)
    return sorted({*horizons, *(int(n) for n in grid if n >= 1)})


def run_study(
    scenario: Scenario,
    *,
    iterations: Sequence[int] | None = None,
    policies: Sequence[Policy] | None = None,
    replications: int | None = None,
    monte_carlo_seed: int | None = None,
    progress: StudyProgress | None = None,
) -> StudyResult:
    """Run the comparison, one trace per policy and, if asked, the Monte Carlo study.

    Parameters
    ----------
    scenario : Scenario
    iterations : sequence of int, optional
        Horizons, overriding ``scenario.iterations``.
    policies : sequence of Policy, optional
        Overrides ``scenario.build_policies()``.
    replications : int, optional
        Overrides ``scenario.replications``; Monte Carlo runs when > 1.
    monte_carlo_seed : int, optional
        Overrides ``scenario.seeds.monte_carlo_seed``.
    progress : callable, optional
        Called as ``progress(stage, done, total)``.
    """
    if iterations is None and scenario.iterations is None:
        raise ScenarioError(
            "iterations: the scenario has none (it is a campaign only); pass iterations"
        )
    chosen_horizons = iterations if iterations is not None else scenario.iterations
    assert chosen_horizons is not None
    horizons = sorted(chosen_horizons)
    for n in horizons:
        check_int(n, "iterations", "run_study", low=1)
    chosen = list(policies) if policies is not None else scenario.build_policies()
    if not chosen:
        raise fail("policies", "run_study", "a non-empty list", chosen)
    n_replications = replications if replications is not None else scenario.replications
    check_int(n_replications, "replications", "run_study", low=1)
    report = progress or (lambda stage, done, total: None)
    rates = scenario.true_probabilities
    seeds, priors = scenario.seeds, scenario.priors

    frames = []
    for done, n in enumerate(horizons):
        report("comparison", done, len(horizons))
        frame, _ = run_comparison_experiment(
            scenario.headline_texts,
            rates,
            iteration_list=[n],
            random_seed=seeds.random_seed,
            bandit_seed=seeds.bandit_seed,
            alpha_prior=priors.alpha_prior,
            beta_prior=priors.beta_prior,
        )
        frames.append(frame)
    report("comparison", len(horizons), len(horizons))
    comparison = pd.concat(frames, ignore_index=True)

    traces: dict[str, Trace] = {}
    labels = policy_labels(chosen)
    for done, (label, policy) in enumerate(zip(labels, chosen, strict=True)):
        report("traces", done, len(chosen))
        seed = seeds.bandit_seed if policy.code == THOMPSON else seeds.random_seed
        arms, rewards, _, _ = engine.simulate_trace(
            policy.code,
            policy.params(priors.alpha_prior, priors.beta_prior),
            rates,
            horizons[-1],
            np.random.default_rng(seed),
        )
        traces[label] = Trace(policy, seed, arms, rewards)
        if policy.code not in _IN_SEED_TABLE:
            _baseline_columns(comparison, label, traces[label], horizons)
    report("traces", len(chosen), len(chosen))

    monte_carlo = None
    if n_replications > 1:
        monte_carlo = run_monte_carlo(
            chosen,
            rates,
            horizons[-1],
            n_replications,
            seed=monte_carlo_seed if monte_carlo_seed is not None else seeds.monte_carlo_seed,
            checkpoints=_checkpoints(horizons),
            alpha_prior=priors.alpha_prior,
            beta_prior=priors.beta_prior,
            progress=lambda done, total: report("monte carlo", done, total),
        )
    return StudyResult(scenario, horizons, comparison, traces, monte_carlo)


@dataclass(frozen=True)
class CampaignStudy:
    """A scenario's campaign, simulated: what ``headliner simulate`` shows for it.

    Attributes
    ----------
    scenario : Scenario
        Its headline texts label the tables and plots.
    result : CampaignResult
    """

    scenario: Scenario
    result: CampaignResult

    @property
    def headlines(self) -> list[str]:
        """The headline texts, in the order of the result's arms."""
        return self.scenario.headline_texts


def run_campaign_study(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    n_threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> CampaignStudy:
    """Simulate the scenario's ``campaign:`` section.

    Parameters
    ----------
    scenario : Scenario
        With a ``campaign`` section.
    replications : int, optional
        Overrides ``scenario.campaign.replications``.
    seed : int, optional
        Overrides ``scenario.seeds.monte_carlo_seed`` (None in both: fresh
        entropy, echoed in ``result.seed``).
    n_threads : int, optional
        Worker threads (default: every core); the result does not depend on it.
    progress : callable, optional
        Called as ``progress(done, total)`` as replications finish.

    Returns
    -------
    CampaignStudy
        Its ``result`` is exactly ``simulate_campaign(scenario.build_campaign(),
        replications, seed=seed)``.

    Raises
    ------
    ScenarioError
        If the scenario has no campaign section.
    """
    campaign = scenario.build_campaign()
    assert scenario.campaign is not None
    n_replications = replications if replications is not None else scenario.campaign.replications
    chosen_seed = seed if seed is not None else scenario.seeds.monte_carlo_seed
    result = simulate_campaign(
        campaign, n_replications, seed=chosen_seed, n_threads=n_threads, progress=progress
    )
    return CampaignStudy(scenario, result)
