"""The curated top-level API of the package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import headliner


def test_all_is_sorted_and_complete() -> None:
    assert headliner.__all__ == sorted(headliner.__all__)
    assert len(set(headliner.__all__)) == len(headliner.__all__)


@pytest.mark.parametrize("name", headliner.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(headliner, name) is not None


def test_seed_names_import_from_the_package() -> None:
    from headliner import (
        BanditSimulation,
        BaseEmailSimulation,
        RandomSimulation,
        run_comparison_experiment,
    )

    assert issubclass(BanditSimulation, BaseEmailSimulation)
    assert issubclass(RandomSimulation, BaseEmailSimulation)
    assert callable(run_comparison_experiment)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        headliner.nope  # noqa: B018


def test_importing_the_package_does_not_load_the_simulator() -> None:
    # The service imports headliner; it must not pay for numba or pandas.
    code = "import sys, headliner; print(sorted({'numba', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
