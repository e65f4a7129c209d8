"""The examples in the simulator's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "headliner.sim.comparison",
        "headliner.sim.engine",
        "headliner.sim.montecarlo",
        "headliner.sim.scenarios",
        "headliner.sim.seed",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
