"""The delay-aware reads' building blocks, without a database: edges and the binning CASE."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from sqlalchemy.dialects import postgresql, sqlite

from headliner.core.errors import InvalidParameterError
from headliner.storage import OpenDelays, PendingSends
from headliner.storage._common import age_edges
from headliner.storage._queries import delay_queries

WINDOW = 72 * 3600.0
# The service's grid: 0, then 40 log-spaced edges up to the window.
EDGES = (0.0, *np.geomspace(60.0, WINDOW, 40).tolist())


def case_depth(sql: str) -> int:
    """The deepest nesting of CASE ... END in ``sql``."""
    depth = deepest = 0
    for token in re.findall(r"\b(?:CASE|END)\b", sql):
        depth += 1 if token == "CASE" else -1
        deepest = max(deepest, depth)
    return deepest


def test_age_edges_accepts_a_grid_and_returns_floats() -> None:
    edges = age_edges(np.array(EDGES), WINDOW)
    assert edges == EDGES
    assert all(type(edge) is float for edge in edges)


def test_age_edges_snaps_a_last_edge_within_rounding_to_the_window() -> None:
    edges = age_edges([0.0, 10.0, WINDOW * (1 + 1e-12)], WINDOW)
    assert edges[-1] == WINDOW


@pytest.mark.parametrize(
    "edges",
    [
        [],
        [0.0],
        [1.0, 10.0, WINDOW],  # not from 0
        [0.0, 10.0, WINDOW / 2],  # not to the window
        [0.0, 10.0, 10.0, WINDOW],  # not strictly rising
        [0.0, 20.0, 10.0, WINDOW],
        [0.0, math.nan, WINDOW],
    ],
    ids=["empty", "one", "not-from-0", "not-to-window", "repeated", "falling", "nan"],
)
def test_age_edges_refuses(edges: list[float]) -> None:
    with pytest.raises(InvalidParameterError, match="age_edges must rise strictly from 0"):
        age_edges(edges, WINDOW)


def test_delay_queries_are_made_once_per_edges() -> None:
    assert delay_queries(EDGES) is delay_queries(tuple(EDGES))
    assert delay_queries(EDGES) is not delay_queries((0.0, 1.0, WINDOW))


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_binning_is_a_balanced_case(dialect: object) -> None:
    """41 edges: 40 bins found in 6 comparisons, each inner edge compared once per CASE."""
    queries = delay_queries(EDGES)
    pending = str(queries.pending.compile(dialect=dialect))  # type: ignore[arg-type]
    delays = str(queries.delays.compile(dialect=dialect))  # type: ignore[arg-type]
    assert case_depth(pending) == 6
    assert pending.count("WHEN") == 39  # edges[1:-1]
    # Delays: the same 39 thresholds; ages: 40 (the window too), still 6 deep.
    assert case_depth(delays) == 6
    assert delays.count("WHEN") == 39 + 40
    for sql in (pending, delays):
        assert "floor" not in sql.lower() and "ln(" not in sql.lower()


def test_result_arrays_must_have_equal_lengths() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        PendingSends(np.zeros(2, np.int64), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="equal lengths"):
        OpenDelays(np.zeros(1), np.zeros(2), np.zeros(2))
    assert len(PendingSends(np.zeros(2, np.int64), np.zeros(2), np.ones(2))) == 2
