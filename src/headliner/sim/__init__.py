"""Simulation: compiled engine, the seed-compatible classes, comparison, Monte Carlo, scenarios.

Names are imported on first use (PEP 562): the service uses the compiled
engine and the campaign simulator without pandas, which only the seed's
tables (the ``sim`` extra) need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headliner.sim.comparison import ComparisonDetail, run_comparison_experiment
    from headliner.sim.montecarlo import MonteCarloResult, policy_labels, run_monte_carlo
    from headliner.sim.scenarios import (
        Scenario,
        ScenarioError,
        load_scenario,
        parse_scenario,
        reference_scenario,
    )
    from headliner.sim.seed import BanditSimulation, BaseEmailSimulation, RandomSimulation

_EXPORTS = {
    "BanditSimulation": "headliner.sim.seed",
    "BaseEmailSimulation": "headliner.sim.seed",
    "ComparisonDetail": "headliner.sim.comparison",
    "MonteCarloResult": "headliner.sim.montecarlo",
    "RandomSimulation": "headliner.sim.seed",
    "Scenario": "headliner.sim.scenarios",
    "ScenarioError": "headliner.sim.scenarios",
    "load_scenario": "headliner.sim.scenarios",
    "parse_scenario": "headliner.sim.scenarios",
    "policy_labels": "headliner.sim.montecarlo",
    "reference_scenario": "headliner.sim.scenarios",
    "run_comparison_experiment": "headliner.sim.comparison",
    "run_monte_carlo": "headliner.sim.montecarlo",
}

__all__ = [
    "BanditSimulation",
    "BaseEmailSimulation",
    "ComparisonDetail",
    "MonteCarloResult",
    "RandomSimulation",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "policy_labels",
    "reference_scenario",
    "run_comparison_experiment",
    "run_monte_carlo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headliner.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
