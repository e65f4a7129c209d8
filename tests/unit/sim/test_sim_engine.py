"""The compiled engine's own primitives against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headliner.core import policies, posterior
from headliner.sim import engine

# Shapes on every branch of numpy's Beta routine: both at or below 1 (Jöhnk),
# exactly 1 (an exponential Gamma), one below 1, both above 1 (two
# Marsaglia-Tsang Gammas, the compiled path), and posterior-sized counts.
PARAMETER_PAIRS = [
    (0.3, 0.7),
    (1.0, 1.0),
    (1.0, 5.0),
    (5.0, 1.0),
    (0.5, 40.0),
    (1.0000001, 1.0000001),
    (2.0, 3.0),
    (19.0, 83.0),
    (2_401.0, 7_602.0),
    (240_300.0, 759_702.0),
]


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_compiled_beta_draw_is_numpys_beta_bit_for_bit(seed: int) -> None:
    rs = np.random.default_rng(seed + 100)
    a = np.concatenate([np.array(PARAMETER_PAIRS)[:, 0], rs.uniform(0.05, 3.0, 300)])
    b = np.concatenate([np.array(PARAMETER_PAIRS)[:, 1], rs.uniform(0.05, 3.0, 300)])
    a = np.concatenate([a, 1.0 + rs.integers(0, 5_000, 300)])
    b = np.concatenate([b, 1.0 + rs.integers(0, 20_000, 300)])
    ours = np.random.default_rng(seed)
    theirs = np.random.default_rng(seed)

    drawn = np.array([engine.compiled_beta_draw(x, y, ours) for x, y in zip(a, b, strict=True)])

    np.testing.assert_array_equal(drawn, theirs.beta(a, b))
    # Same number of draws taken from the stream: the next value agrees too.
    assert ours.random() == theirs.random()


def test_python_beta_draw_is_numpys_beta() -> None:
    ours = np.random.default_rng(3)
    theirs = np.random.default_rng(3)
    assert [policies.beta_draw(2.0, 9.0, ours) for _ in range(5)] == list(
        theirs.beta(2.0, 9.0, size=5)
    )


def test_thompson_rule_compiles_with_the_fast_draw() -> None:
    # The compiled rule draws through compiled_beta_draw, not policies.beta_draw.
    assert engine.kernels.beta_draw is engine.compiled_beta_draw
    assert engine.kernels.thompson_winner.py_func.__globals__["beta_draw"] is (
        engine.compiled_beta_draw
    )


def test_posterior_integrals_compile_with_their_helpers_bound() -> None:
    # The compiled integral calls the compiled helpers, not the Python ones.
    twin = engine.kernels.within_probabilities
    assert twin.py_func.__globals__["_logistic"] is engine._TWINS[posterior._logistic]
    assert engine.kernels.best_probabilities.py_func.__globals__["within_probabilities"] is twin
    # ... and so does every rule that uses it, across modules.
    uses = engine.kernels.selection_probabilities_rule.py_func.__globals__
    assert uses["within_probabilities"] is twin


def test_kernel_fingerprint_follows_every_compiled_core_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Cached kernels embed the compiled core functions: editing posterior.py
    # (not only policies.py) must change the number their cache files are named by.
    before = engine._fingerprint()
    read_bytes = Path.read_bytes

    def edited(path: Path) -> bytes:
        return read_bytes(path) + (b"\n# edited\n" if path.name == "posterior.py" else b"")

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert engine._fingerprint() != before
    assert engine.kernels.choose_arm.py_func.__qualname__.endswith(f"_{engine._FINGERPRINT:x}")
