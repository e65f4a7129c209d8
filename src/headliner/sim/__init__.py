"""Simulation: compiled engine, the seed-compatible classes, comparison, Monte Carlo, scenarios."""

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
