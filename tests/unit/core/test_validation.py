"""Boundary checks and the error tree (headliner.core.validation, headliner.core.errors).

Every rule is checked against its whole message, in the house form
"The 'name' parameter of Owner must be <rule>. Got <value> instead."
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from headliner.core.errors import (
    AuthError,
    ConflictError,
    HeadlinerError,
    InvalidParameterError,
    NotFoundError,
    StoreUnavailableError,
)
from headliner.core.policies import (
    ABTestThenCommit,
    EpsilonGreedy,
    TopTwoThompson,
    ab_test_sample_size,
    make_policy,
)
from headliner.core.posterior import BetaPosterior, value_remaining
from headliner.core.validation import check_float, check_int, check_probabilities, fail


def message(name: str, owner: str, rule: str, got: str) -> str:
    """The exact message, escaped for ``pytest.raises(match=...)``."""
    return re.escape(f"The '{name}' parameter of {owner} must be {rule}. Got {got} instead.")


def test_message_form_matches_the_house_style() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        BetaPosterior.from_prior(3, alpha_prior=-1)
    assert str(caught.value) == (
        "The 'alpha_prior' parameter of BetaPosterior must be a float in the range "
        "[0.001, 1000000]. Got -1 instead."
    )


# --- every rule of the posterior and the policies ---------------------------

TWO_ARMS = BetaPosterior.from_prior(2)

RULES: dict[str, tuple[Callable[[], Any], str]] = {
    # BetaPosterior
    "posterior-shape-mismatch": (
        lambda: BetaPosterior(np.ones(2), np.ones(3)),
        message("alpha", "BetaPosterior", "a non-empty 1-d array shaped like beta", "(2,)"),
    ),
    "posterior-empty": (
        lambda: BetaPosterior(np.ones(0), np.ones(0)),
        message("alpha", "BetaPosterior", "a non-empty 1-d array shaped like beta", "(0,)"),
    ),
    "posterior-2d": (
        lambda: BetaPosterior(np.ones((1, 2)), np.ones((1, 2))),
        message("alpha", "BetaPosterior", "a non-empty 1-d array shaped like beta", "(1, 2)"),
    ),
    "posterior-alpha-zero": (
        lambda: BetaPosterior(np.array([1.0, 0.0]), np.ones(2)),
        message("alpha", "BetaPosterior", "an array of finite floats > 0", "[1.0, 0.0]"),
    ),
    "posterior-beta-nan": (
        lambda: BetaPosterior(np.ones(2), np.array([1.0, np.nan])),
        message("beta", "BetaPosterior", "an array of finite floats > 0", "[1.0, nan]"),
    ),
    "posterior-beta-inf": (
        lambda: BetaPosterior(np.ones(2), np.array([np.inf, 1.0])),
        message("beta", "BetaPosterior", "an array of finite floats > 0", "[inf, 1.0]"),
    ),
    "from-prior-no-arms": (
        lambda: BetaPosterior.from_prior(0),
        message("n_arms", "BetaPosterior", "an int >= 1", "0"),
    ),
    "from-prior-float-arms": (
        lambda: BetaPosterior.from_prior(2.5),  # type: ignore[arg-type]
        message("n_arms", "BetaPosterior", "an int >= 1", "2.5"),
    ),
    "from-prior-alpha-negative": (
        lambda: BetaPosterior.from_prior(2, alpha_prior=-1),
        message("alpha_prior", "BetaPosterior", "a float in the range [0.001, 1000000]", "-1"),
    ),
    "from-prior-beta-zero": (
        lambda: BetaPosterior.from_prior(2, beta_prior=0.0),
        message("beta_prior", "BetaPosterior", "a float in the range [0.001, 1000000]", "0.0"),
    ),
    "from-counts-alpha-zero": (
        lambda: BetaPosterior.from_counts([1], [1], alpha_prior=0),
        message("alpha_prior", "BetaPosterior", "a float in the range [0.001, 1000000]", "0"),
    ),
    "from-counts-beta-nan": (
        lambda: BetaPosterior.from_counts([1], [1], beta_prior=float("nan")),
        message("beta_prior", "BetaPosterior", "a float in the range [0.001, 1000000]", "nan"),
    ),
    "from-counts-opens-negative": (
        lambda: BetaPosterior.from_counts([1, -1], [1, 1]),
        message("opens", "BetaPosterior", "counts >= 0", "[1.0, -1.0]"),
    ),
    "from-counts-non-opens-nan": (
        lambda: BetaPosterior.from_counts([1, 1], [np.nan, 1]),
        message("non_opens", "BetaPosterior", "counts >= 0", "[nan, 1.0]"),
    ),
    "updated-arm-out-of-range": (
        lambda: TWO_ARMS.updated(2, 1),
        message("arm", "BetaPosterior.updated", "an int in the range [0, 1]", "2"),
    ),
    "updated-arm-negative": (
        lambda: TWO_ARMS.updated(-1, 1),
        message("arm", "BetaPosterior.updated", "an int in the range [0, 1]", "-1"),
    ),
    "updated-reward-two": (
        lambda: TWO_ARMS.updated(0, 2),
        message("reward", "BetaPosterior.updated", "an int in the range [0, 1]", "2"),
    ),
    "updated-reward-bool": (
        lambda: TWO_ARMS.updated(0, True),
        message("reward", "BetaPosterior.updated", "an int in the range [0, 1]", "True"),
    ),
    "interval-level-one": (
        lambda: TWO_ARMS.credible_interval(1.0),
        message("level", "credible_interval", "a float in the range (0, 1)", "1.0"),
    ),
    "interval-level-zero": (
        lambda: TWO_ARMS.credible_interval(0),
        message("level", "credible_interval", "a float in the range (0, 1)", "0"),
    ),
    "sample-no-draws": (
        lambda: TWO_ARMS.sample(np.random.default_rng(0), 0),
        message("n_draws", "BetaPosterior.sample", "an int >= 1", "0"),
    ),
    "value-remaining-no-draws": (
        lambda: value_remaining(TWO_ARMS, np.random.default_rng(0), n_draws=0),
        message("n_draws", "value_remaining", "an int >= 1", "0"),
    ),
    "value-remaining-quantile": (
        lambda: value_remaining(TWO_ARMS, np.random.default_rng(0), quantile=1.5),
        message("quantile", "value_remaining", "a float in the range [0, 1]", "1.5"),
    ),
    "value-remaining-champion": (
        lambda: value_remaining(TWO_ARMS, np.random.default_rng(0), champion=2),
        message("champion", "value_remaining", "an int in the range [0, 1]", "2"),
    ),
    # A/B test sizing
    "sample-size-baseline-zero": (
        lambda: ab_test_sample_size(0.0, 0.1),
        message("baseline_rate", "ab_test_sample_size", "a float in the range (0, 1)", "0.0"),
    ),
    "sample-size-baseline-one": (
        lambda: ab_test_sample_size(1, 0.1),
        message("baseline_rate", "ab_test_sample_size", "a float in the range (0, 1)", "1"),
    ),
    "sample-size-lift-zero": (
        lambda: ab_test_sample_size(0.2, 0.0),
        message("min_detectable_lift", "ab_test_sample_size", "a float > 0", "0.0"),
    ),
    "sample-size-lift-past-one": (
        lambda: ab_test_sample_size(0.2, 5.0),
        message("min_detectable_lift", "ab_test_sample_size", "< 4 for this baseline", "5.0"),
    ),
    "sample-size-alpha": (
        lambda: ab_test_sample_size(0.2, 0.1, alpha=0.0),
        message("alpha", "ab_test_sample_size", "a float in the range (0, 1)", "0.0"),
    ),
    "sample-size-power": (
        lambda: ab_test_sample_size(0.2, 0.1, power=1.0),
        message("power", "ab_test_sample_size", "a float in the range (0, 1)", "1.0"),
    ),
    # Policies
    "ab-test-negative-sends": (
        lambda: ABTestThenCommit(n_test_sends=-1),
        message("n_test_sends", "ABTestThenCommit", "an int >= 0", "-1"),
    ),
    "ab-test-float-sends": (
        lambda: ABTestThenCommit(n_test_sends=1.5),  # type: ignore[arg-type]
        message("n_test_sends", "ABTestThenCommit", "an int >= 0", "1.5"),
    ),
    "ab-test-planned-no-arms": (
        lambda: ABTestThenCommit.planned(0, 0.2, 0.1),
        message("n_arms", "ABTestThenCommit.planned", "an int >= 1", "0"),
    ),
    "epsilon-above-one": (
        lambda: EpsilonGreedy(epsilon=1.5),
        message("epsilon", "EpsilonGreedy", "a float in the range [0, 1]", "1.5"),
    ),
    "epsilon-string": (
        lambda: EpsilonGreedy(epsilon="0.1"),  # type: ignore[arg-type]
        message("epsilon", "EpsilonGreedy", "a float in the range [0, 1]", "'0.1'"),
    ),
    "top-two-negative": (
        lambda: TopTwoThompson(leader_probability=-0.1),
        message("leader_probability", "TopTwoThompson", "a float in the range [0, 1]", "-0.1"),
    ),
    "make-policy-unknown": (
        lambda: make_policy("greedy"),
        message(
            "policy",
            "make_policy",
            "one of ab_test, epsilon_greedy, thompson, top_two, ucb1, uniform",
            "'greedy'",
        ),
    ),
    "make-policy-foreign-setting": (
        lambda: make_policy("ucb1", epsilon=0.1),
        message("settings", "policy 'ucb1'", "the policy's own settings", "{'epsilon': 0.1}"),
    ),
    "make-policy-missing-setting": (
        lambda: make_policy("ab_test"),
        message("settings", "policy 'ab_test'", "the policy's own settings", "{}"),
    ),
}


@pytest.mark.parametrize(("call", "pattern"), RULES.values(), ids=RULES.keys())
def test_every_rule_raises_its_message(call: Callable[[], Any], pattern: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"^{pattern}$"):
        call()


# --- check_float, check_int: the interval wording ---------------------------


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        ({"low": 0.0, "high": 1.0, "closed": "both"}, "in the range [0, 1]"),
        ({"low": 0.0, "high": 1.0, "closed": "left"}, "in the range [0, 1)"),
        ({"low": 0.0, "high": 1.0, "closed": "right"}, "in the range (0, 1]"),
        ({"low": 0.0, "high": 1.0, "closed": "neither"}, "in the range (0, 1)"),
        ({"low": 0.5, "high": 2.5}, "in the range [0.5, 2.5]"),
        ({"low": 0.0}, ">= 0"),
        ({"low": 0.0, "closed": "left"}, ">= 0"),
        ({"low": 0.0, "closed": "right"}, "> 0"),
        ({"low": 0.0, "closed": "neither"}, "> 0"),
        ({"high": 1.0}, "<= 1"),
        ({"high": 1.0, "closed": "right"}, "<= 1"),
        ({"high": 1.0, "closed": "left"}, "< 1"),
        ({"high": 1.0, "closed": "neither"}, "< 1"),
        ({}, "finite"),
    ],
    ids=[
        "closed",
        "left-closed",
        "right-closed",
        "open",
        "fractional-bounds",
        "low-only",
        "low-only-left",
        "low-only-right",
        "low-only-open",
        "high-only",
        "high-only-right",
        "high-only-left",
        "high-only-open",
        "unbounded",
    ],
)
def test_check_float_states_the_interval(kwargs: dict[str, Any], rule: str) -> None:
    with pytest.raises(
        InvalidParameterError, match=message("x", "Owner", f"a float {rule}", "inf")
    ):
        check_float(float("inf"), "x", "Owner", **kwargs)


@pytest.mark.parametrize(
    ("value", "kwargs", "inside"),
    [
        (0.0, {"low": 0.0, "high": 1.0, "closed": "both"}, True),
        (1.0, {"low": 0.0, "high": 1.0, "closed": "both"}, True),
        (0.0, {"low": 0.0, "high": 1.0, "closed": "left"}, True),
        (1.0, {"low": 0.0, "high": 1.0, "closed": "left"}, False),
        (0.0, {"low": 0.0, "high": 1.0, "closed": "right"}, False),
        (1.0, {"low": 0.0, "high": 1.0, "closed": "right"}, True),
        (0.0, {"low": 0.0, "high": 1.0, "closed": "neither"}, False),
        (1.0, {"low": 0.0, "high": 1.0, "closed": "neither"}, False),
        (0.5, {"low": 0.0, "high": 1.0, "closed": "neither"}, True),
        (-0.1, {"low": 0.0}, False),
        (1.1, {"high": 1.0}, False),
        (-1e300, {}, True),
    ],
    ids=[
        "both-low-edge",
        "both-high-edge",
        "left-low-edge",
        "left-high-edge",
        "right-low-edge",
        "right-high-edge",
        "open-low-edge",
        "open-high-edge",
        "open-inside",
        "below-low",
        "above-high",
        "unbounded",
    ],
)
def test_check_float_edges(value: float, kwargs: dict[str, Any], inside: bool) -> None:
    if inside:
        assert check_float(value, "x", "Owner", **kwargs) == value
    else:
        with pytest.raises(InvalidParameterError, match=r"^The 'x' parameter of Owner must be"):
            check_float(value, "x", "Owner", **kwargs)


@pytest.mark.parametrize(
    "value",
    [3, 3.0, np.float32(3.0), np.int64(3), np.float64(3.0)],
    ids=["int", "float", "float32", "int64", "float64"],
)
def test_check_float_accepts_numbers_and_returns_a_python_float(value: object) -> None:
    result = check_float(value, "x", "Owner")
    assert result == 3.0
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "True"), ("1", "'1'"), (None, "None"), (float("nan"), "nan"), ([1.0], "[1.0]")],
    ids=["bool", "string", "none", "nan", "list"],
)
def test_check_float_rejects_non_numbers(value: object, shown: str) -> None:
    with pytest.raises(InvalidParameterError, match=message("x", "Owner", "a float finite", shown)):
        check_float(value, "x", "Owner")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1.0, "1.0"), (False, "False"), ("2", "'2'"), (np.float64(2.0), "np.float64(2.0)")],
    ids=["float", "bool", "string", "numpy-float"],
)
def test_check_int_rejects_non_ints(value: object, shown: str) -> None:
    with pytest.raises(InvalidParameterError, match=message("k", "Owner", "an int >= 0", shown)):
        check_int(value, "k", "Owner", low=0)


@pytest.mark.parametrize(
    ("value", "kwargs", "rule"),
    [
        (-1, {"low": 0}, "an int >= 0"),
        (6, {"low": 0, "high": 5}, "an int in the range [0, 5]"),
        (6, {"high": 5}, "an int <= 5"),
    ],
    ids=["below-low", "above-high", "above-high-only"],
)
def test_check_int_rejects_out_of_range(value: int, kwargs: dict[str, int], rule: str) -> None:
    with pytest.raises(InvalidParameterError, match=message("k", "Owner", rule, str(value))):
        check_int(value, "k", "Owner", **kwargs)


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [(np.int64(4), {"low": 0, "high": 4}), (0, {"low": 0}), (-(10**30), {})],
    ids=["numpy-int-at-high", "at-low", "unbounded-huge"],
)
def test_check_int_accepts_and_returns_a_python_int(value: object, kwargs: dict[str, int]) -> None:
    result = check_int(value, "k", "Owner", **kwargs)
    assert result == value
    assert type(result) is int


# --- check_probabilities ----------------------------------------------------


@pytest.mark.parametrize(
    "values", [[0.0, 0.5, 1.0], (0.2,), np.array([0.18, 0.24])], ids=["list", "tuple", "array"]
)
def test_check_probabilities_returns_a_float_array(values: Any) -> None:
    result = check_probabilities(values, "p", "Owner")
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize(
    ("values", "rule", "shown"),
    [
        (["a", "b"], "a sequence of floats in the range [0, 1]", "['a', 'b']"),
        ([[0.1], [0.2, 0.3]], "a sequence of floats in the range [0, 1]", "[[0.1], [0.2, 0.3]]"),
        ([[0.1, 0.2]], "a 1-d sequence of floats in the range [0, 1]", "[[0.1, 0.2]]"),
        ([0.1, float("nan")], "a 1-d sequence of floats in the range [0, 1]", "[0.1, nan]"),
        ([0.1, -0.1, 2.0], "a sequence of floats in the range [0, 1]", "-0.1"),
        ([0.1, 1.5], "a sequence of floats in the range [0, 1]", "1.5"),
    ],
    ids=["strings", "ragged", "2-d", "nan", "negative", "above-one"],
)
def test_check_probabilities_rejects(values: Any, rule: str, shown: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"^{message('p', 'Owner', rule, shown)}$"):
        check_probabilities(values, "p", "Owner")


# --- the error tree ---------------------------------------------------------


def test_fail_builds_but_does_not_raise() -> None:
    error = fail("x", "Owner", "a float > 0", -1)
    assert isinstance(error, InvalidParameterError)
    assert str(error) == "The 'x' parameter of Owner must be a float > 0. Got -1 instead."


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (InvalidParameterError, (HeadlinerError, ValueError)),
        (NotFoundError, (HeadlinerError, LookupError)),
        (ConflictError, (HeadlinerError,)),
        (AuthError, (HeadlinerError,)),
        (StoreUnavailableError, (HeadlinerError,)),
    ],
    ids=["invalid-parameter", "not-found", "conflict", "auth", "store-unavailable"],
)
def test_error_tree(error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    assert all(issubclass(error, base) for base in bases)
    assert issubclass(HeadlinerError, Exception)
    assert not issubclass(ConflictError, ValueError)


@pytest.mark.parametrize("revoked", [False, True], ids=["unknown-key", "revoked-key"])
def test_auth_error_tells_revoked_keys_apart(revoked: bool) -> None:
    error = AuthError("API key rejected", revoked=revoked)
    assert error.revoked is revoked
    assert str(error) == "API key rejected"
    assert AuthError("no key").revoked is False


def test_store_unavailable_error_suggests_when_to_retry() -> None:
    assert StoreUnavailableError("down").retry_after == StoreUnavailableError.retry_after == 1
    error = StoreUnavailableError("restarting", retry_after=5)
    assert (error.retry_after, str(error)) == (5, "restarting")
