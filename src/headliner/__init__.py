"""Headliner: adaptive experimentation for email headlines and any yes/no KPI.

The seed design's simulation API is here unchanged::

    from headliner import BanditSimulation, RandomSimulation, run_comparison_experiment

Names are imported on first use (PEP 562), so ``import headliner`` stays cheap
for the service, which never needs the compiled simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headliner.core.errors import (
        ConflictError,
        HeadlinerError,
        InvalidParameterError,
        NotFoundError,
    )
    from headliner.core.policies import (
        UCB1,
        ABTestThenCommit,
        EpsilonGreedy,
        Policy,
        ThompsonSampling,
        TopTwoThompson,
        UniformRandom,
        make_policy,
    )
    from headliner.core.posterior import (
        BetaPosterior,
        expected_loss,
        probability_of_best,
        value_remaining,
    )
    from headliner.sim.comparison import run_comparison_experiment
    from headliner.sim.montecarlo import MonteCarloResult, run_monte_carlo
    from headliner.sim.scenarios import Scenario, ScenarioError, load_scenario, reference_scenario
    from headliner.sim.seed import BanditSimulation, BaseEmailSimulation, RandomSimulation

__version__ = "0.1.0"

_EXPORTS = {
    "ABTestThenCommit": "headliner.core.policies",
    "BanditSimulation": "headliner.sim.seed",
    "BaseEmailSimulation": "headliner.sim.seed",
    "BetaPosterior": "headliner.core.posterior",
    "ConflictError": "headliner.core.errors",
    "EpsilonGreedy": "headliner.core.policies",
    "HeadlinerError": "headliner.core.errors",
    "InvalidParameterError": "headliner.core.errors",
    "MonteCarloResult": "headliner.sim.montecarlo",
    "NotFoundError": "headliner.core.errors",
    "Policy": "headliner.core.policies",
    "RandomSimulation": "headliner.sim.seed",
    "Scenario": "headliner.sim.scenarios",
    "ScenarioError": "headliner.sim.scenarios",
    "ThompsonSampling": "headliner.core.policies",
    "TopTwoThompson": "headliner.core.policies",
    "UCB1": "headliner.core.policies",
    "UniformRandom": "headliner.core.policies",
    "expected_loss": "headliner.core.posterior",
    "load_scenario": "headliner.sim.scenarios",
    "make_policy": "headliner.core.policies",
    "probability_of_best": "headliner.core.posterior",
    "reference_scenario": "headliner.sim.scenarios",
    "run_comparison_experiment": "headliner.sim.comparison",
    "run_monte_carlo": "headliner.sim.montecarlo",
    "value_remaining": "headliner.core.posterior",
}

__all__ = [
    "ABTestThenCommit",
    "BanditSimulation",
    "BaseEmailSimulation",
    "BetaPosterior",
    "ConflictError",
    "EpsilonGreedy",
    "HeadlinerError",
    "InvalidParameterError",
    "MonteCarloResult",
    "NotFoundError",
    "Policy",
    "RandomSimulation",
    "Scenario",
    "ScenarioError",
    "ThompsonSampling",
    "TopTwoThompson",
    "UCB1",
    "UniformRandom",
    "__version__",
    "expected_loss",
    "load_scenario",
    "make_policy",
    "probability_of_best",
    "reference_scenario",
    "run_comparison_experiment",
    "run_monte_carlo",
    "value_remaining",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headliner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
