"""Boundary checks that raise :class:`InvalidParameterError` with one message form.

Every message reads "The 'name' parameter of Owner must be <rule>. Got <value> instead."
so a user learns the parameter, the allowed range and what they passed.

Each parameter's allowed values are declared once, next to what they
constrain, as an :class:`Interval` or :class:`Options` in a
``parameter_constraints`` mapping (scikit-learn's ``_parameter_constraints``
is the model). The library checks them with :func:`validate_params`; the
service's request schemas and the scenario loader read the same declarations
(:meth:`Interval.bounds`, :attr:`Options.values`), so a bound is changed in
one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    return Interval(float, low, high, closed).check(value, name, owner)


def check_int(
    value: object,
    name: str,
    owner: str,
    *,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Return ``value`` as an int inside ``[low, high]``, or raise."""
    return int(Interval(int, low, high).check(value, name, owner))


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


@dataclass(frozen=True)
class Interval:
    """The allowed range of a numeric parameter.

    Parameters
    ----------
    kind : {int, float}
        ``int`` admits integers only (never ``bool``); ``float`` admits any
        finite real number.
    low, high : float or None, default=None
        The bounds; None leaves that side open.
    closed : {"both", "left", "right", "neither"}, default="both"
        Which bounds belong to the range.
    optional : bool, default=False
        Whether None is allowed too (for a criterion that can be switched off).

    Examples
    --------
    >>> share = Interval(float, 0.0, 1.0, closed="left")
    >>> share.describe(), share.bounds()
    ('a float in the range [0, 1)', {'ge': 0.0, 'lt': 1.0})
    >>> share.check(0.25, "floor", "Experiment")
    0.25
    """

    kind: type[int] | type[float]
    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    optional: bool = False

    def describe(self) -> str:
        """The rule as the error message words it ("a float in the range [0, 1]")."""
        rule = f"a{'n' if self.kind is int else ''} {self.kind.__name__} "
        rule += _interval(self.low, self.high, self.closed)
        return rule + " or None" if self.optional else rule

    def check(self, value: object, name: str, owner: str) -> float:
        """Return ``value`` (as ``kind``) when it lies in the range, or raise.

        Raises
        ------
        InvalidParameterError
            Naming ``name``, ``owner``, the range and ``value``.
        """
        if value is None and self.optional:
            return value  # type: ignore[return-value]  # the caller asked for None to pass
        numeric = int | np.integer if self.kind is int else int | float | np.integer | np.floating
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise fail(name, owner, self.describe(), value)
        x = self.kind(value)
        if not math.isfinite(x) or not _inside(x, self.low, self.high, self.closed):
            raise fail(name, owner, self.describe(), value)
        return x

    def bounds(self) -> dict[str, float]:
        """The range as pydantic's ``Field`` (and annotated-types) keywords."""
        out: dict[str, float] = {}
        if self.low is not None:
            out["ge" if self.closed in ("both", "left") else "gt"] = self.low
        if self.high is not None:
            out["le" if self.closed in ("both", "right") else "lt"] = self.high
        return out


@dataclass(frozen=True)
class Options:
    """The allowed values of a named choice.

    Examples
    --------
    >>> Options(("any", "all")).describe()
    "one of 'any', 'all'"
    """

    values: tuple[str, ...]

    def describe(self) -> str:
        """The rule as the error message words it ("one of 'a', 'b'")."""
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: object, name: str, owner: str) -> str:
        """Return ``value`` when it is one of the options, or raise."""
        if not isinstance(value, str) or value not in self.values:
            raise fail(name, owner, self.describe(), value)
        return value


Constraint = Interval | Options


def validate_params(
    constraints: Mapping[str, Constraint], params: Mapping[str, object], owner: str
) -> None:
    """Check every parameter of ``params`` that ``constraints`` declares.

    Raises
    ------
    InvalidParameterError
        For the first parameter outside its declared range.

    Examples
    --------
    >>> validate_params({"epsilon": Interval(float, 0, 1)}, {"epsilon": 1.5}, "EpsilonGreedy")
    Traceback (most recent call last):
    ...
    headliner.core.errors.InvalidParameterError: The 'epsilon' parameter of EpsilonGreedy \
must be a float in the range [0, 1]. Got 1.5 instead.
    """
    for name, constraint in constraints.items():
        if name in params:
            constraint.check(params[name], name, owner)
