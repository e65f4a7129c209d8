"""The KPI counting rule: only the KPI's own event type counts, and never a machine's."""

from __future__ import annotations

from typing import get_args

import pytest

from headliner.core.errors import InvalidParameterError
from headliner.core.kpi import EVENT_TYPES, KPI_EVENT, KPIS, EventType, Kpi, counts_toward


@pytest.mark.parametrize(
    ("kpi", "event_type", "machine", "reason"),
    [
        ("opens", "open", False, None),
        ("opens", "open", True, "machine open: stored, not counted"),
        ("opens", "click", False, "open experiment: clicks are stored, not counted"),
        ("opens", "conversion", False, "open experiment: conversions are stored, not counted"),
        ("clicks", "click", False, None),
        ("clicks", "click", True, "machine click: stored, not counted"),
        ("clicks", "open", False, "click experiment: opens are stored, not counted"),
        # The type is said first: a machine open is no click either way.
        ("clicks", "open", True, "click experiment: opens are stored, not counted"),
        ("conversions", "conversion", False, None),
        ("conversions", "conversion", True, "machine conversion: stored, not counted"),
        ("conversions", "click", False, "conversion experiment: clicks are stored, not counted"),
    ],
)
def test_only_the_kpis_own_events_made_by_people_count(
    kpi: str, event_type: str, machine: bool, reason: str | None
) -> None:
    verdict = counts_toward(kpi, event_type, machine)

    assert verdict.counts is (reason is None)
    assert verdict.reason == reason


def test_every_kpi_has_one_event_type_and_each_counts_for_exactly_one_kpi() -> None:
    assert KPIS.values == get_args(Kpi) == ("opens", "clicks", "conversions")
    assert EVENT_TYPES.values == get_args(EventType)
    assert sorted(KPI_EVENT) == sorted(KPIS.values)
    assert sorted(KPI_EVENT.values()) == sorted(EVENT_TYPES.values)
    for event_type in EVENT_TYPES.values:
        counting = [kpi for kpi in KPIS.values if counts_toward(kpi, event_type, False).counts]
        assert len(counting) == 1


@pytest.mark.parametrize(
    ("kpi", "event_type", "message"),
    [
        ("revenue", "open", "The 'kpi' parameter of Experiment must be one of 'opens', "),
        ("opens", "bounce", "The 'type' parameter of Event must be one of 'open', "),
        ("Opens", "open", "Got 'Opens' instead"),
    ],
)
def test_unknown_kpis_and_event_types_are_refused_naming_the_choices(
    kpi: str, event_type: str, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        counts_toward(kpi, event_type, machine=False)


def test_the_docstring_examples_run() -> None:
    import doctest

    import headliner.core.kpi as module

    assert doctest.testmod(module).failed == 0
