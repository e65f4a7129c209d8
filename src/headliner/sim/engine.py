"""Compiled simulation kernels.

The policy rules are compiled from :mod:`headliner.core.policies` itself (see
:func:`_compile_rules`), so the simulator and the service run one rule.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numba

from headliner.core import policies


def _compile_rules() -> dict[str, Any]:
    """Compile every function of ``policies.RULE_FUNCTIONS`` with numba.

    numba resolves the names a function calls through its globals at compile
    time, so each rule is compiled from a copy of itself whose globals bind
    the rules compiled before it (``RULE_FUNCTIONS`` is in dependency order).
    """
    compiled: dict[str, Any] = {}
    for rule in policies.RULE_FUNCTIONS:
        namespace = {**rule.__globals__, **compiled}
        twin = types.FunctionType(rule.__code__, namespace, rule.__name__, rule.__defaults__)
        twin.__qualname__ = rule.__qualname__
        twin.__module__ = rule.__module__
        twin.__doc__ = rule.__doc__
        compiled[rule.__name__] = numba.njit(cache=True, nogil=True)(twin)
    return compiled


_RULES = _compile_rules()
choose_arm: Callable[..., int] = _RULES["choose_arm"]
