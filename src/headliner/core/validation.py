"""Boundary checks that raise :class:`InvalidParameterError` with one message form.

Every message reads "The 'name' parameter of Owner must be <rule>. Got <value> instead."
so a user learns the parameter, the allowed range and what they passed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from headliner.core.errors import InvalidParameterError

Closed = Literal["both", "left", "right", "neither"]


def fail(name: str, owner: str, rule: str, got: object) -> InvalidParameterError:
    """Build the standard error for parameter ``name`` of ``owner``."""
    return InvalidParameterError(
        f"The '{name}' parameter of {owner} must be {rule}. Got {got!r} instead.", parameter=name
    )


def _number(x: float) -> str:
    """A bound as a reader writes it: "0", not "0.0"."""
    return str(int(x)) if float(x).is_integer() else str(x)


def _interval(low: float | None, high: float | None, closed: Closed) -> str:
    left = ">=" if closed in ("both", "left") else ">"
    right = "<=" if closed in ("both", "right") else "<"
    if low is not None and high is not None:
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        return f"in the range {lb}{_number(low)}, {_number(high)}{rb}"
    if low is not None:
        return f"{left} {_number(low)}"
    if high is not None:
        return f"{right} {_number(high)}"
    return "finite"


def _inside(x: float, low: float | None, high: float | None, closed: Closed) -> bool:
    if low is not None:
        if closed in ("both", "left") and x < low:
            return False
        if closed in ("right", "neither") and x <= low:
            return False
    if high is not None:
        if closed in ("both", "right") and x > high:
            return False
        if closed in ("left", "neither") and x >= high:
            return False
    return True


def check_float(
    value: object,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    closed: Closed = "both",
) -> float:
    """Return ``value`` as a finite float inside the interval, or raise."""
    rule = f"a float {_interval(low, high, closed)}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise fail(name, owner, rule, value)
    x = float(value)
    if not math.isfinite(x) or not _inside(x, low, high, closed):
        raise fail(name, owner, rule, value)
    return x


def check_int(
    value: object,
    name: str,
    owner: str,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Return ``value`` as an int inside ``[low, high]``, or raise."""
    rule = f"an int {_interval(low, high, 'both')}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise fail(name, owner, rule, value)
    x = int(value)
    if not _inside(x, low, high, "both"):
        raise fail(name, owner, rule, value)
    return x


def check_probabilities(
    values: Sequence[float] | NDArray[np.float64], name: str, owner: str
) -> NDArray[np.float64]:
    """Return a float array whose every entry lies in [0, 1], or raise."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(name, owner, "a sequence of floats in the range [0, 1]", values) from None
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise fail(name, owner, "a 1-d sequence of floats in the range [0, 1]", values)
    bad = (array < 0.0) | (array > 1.0)
    if np.any(bad):
        raise fail(name, owner, "a sequence of floats in the range [0, 1]", float(array[bad][0]))
    return array
