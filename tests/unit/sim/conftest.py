"""Fixtures of the simulator tests: the reference experiment and the per-send loop oracle."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

# The plain per-send loop lives in benchmarks/ (it is also the benchmark
# baseline); make it importable as `reference_loop`.
_BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
if str(_BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(_BENCHMARKS))

# the seed design, written out here so the shipped YAML is checked against the spec.
REFERENCE_HEADLINES = [
    "48 Hours Only: Save 25%",
    "Your Exclusive Spring Offer Is Here",
    "Don't Miss Your Member Discount",
    "Ending Tonight: Final Chance to Save",
    "A Little Something Just for You",
]
REFERENCE_RATES = [0.18, 0.21, 0.16, 0.24, 0.20]


@pytest.fixture
def headlines() -> list[str]:
    return list(REFERENCE_HEADLINES)


@pytest.fixture
def rates() -> list[float]:
    return list(REFERENCE_RATES)


@pytest.fixture(scope="session")
def reference_loop() -> ModuleType:
    import reference_loop

    return reference_loop
