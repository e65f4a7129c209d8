"""What an experiment optimizes (its KPI), and which reported events count toward it.

An experiment's KPI is a yes/no outcome per send: opened, clicked, or
converted (any yes/no event the caller defines, such as a purchase). The
posterior, the stopping rule and the report count *successes* of that KPI;
everything else a sender reports is kept as evidence but moves nothing.

Opens are no longer a clean signal: Apple Mail Privacy Protection fetches
every tracking pixel on delivery, so many "opens" are made by a machine, not
by a reader. An email service provider that can tell says so with the event's
``machine`` flag, and a machine event never counts. Events of another type
than the KPI's (opens in a click experiment) are stored and not counted.

The allowed values are declared once here, as the ``Literal`` types
:data:`Kpi` and :data:`EventType` and their
:class:`~headliner.core.validation.Options`, which the service's request
schemas, its experiment files and its own checks all read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from headliner.core.validation import Options

__all__ = [
    "DEFAULT_KPI",
    "EVENT_TYPES",
    "KPIS",
    "KPI_EVENT",
    "EventType",
    "Kpi",
    "Verdict",
    "counts_toward",
]

#: What an experiment optimizes: a send opened, clicked or converted.
Kpi = Literal["opens", "clicks", "conversions"]
#: What a reported event is: an open, a click, or a conversion (defined by the caller).
EventType = Literal["open", "click", "conversion"]

KPIS = Options(get_args(Kpi))
EVENT_TYPES = Options(get_args(EventType))
DEFAULT_KPI: Kpi = "opens"

#: The event type that is a success of each KPI.
KPI_EVENT: dict[str, str] = {"opens": "open", "clicks": "click", "conversions": "conversion"}


@dataclass(frozen=True)
class Verdict:
    """Whether an event counts toward its experiment's KPI, and if not, why.

    ``reason`` is None when it counts, else a sentence for the caller
    ("machine open: stored, not counted").
    """

    counts: bool
    reason: str | None = None


def counts_toward(kpi: str, event_type: str, machine: bool) -> Verdict:
    """Whether an event of ``event_type`` counts toward an experiment whose KPI is ``kpi``.

    It counts only when its type is the KPI's (opens: ``open``, clicks:
    ``click``, conversions: ``conversion``) and it was not made by a machine.
    A counted event is then recorded as the send's success, idempotently and
    with the attribution window's late rule, by the caller.

    Parameters
    ----------
    kpi : {"opens", "clicks", "conversions"}
    event_type : {"open", "click", "conversion"}
    machine : bool
        The sender says a machine made the event (a privacy proxy fetching
        the pixel, a link scanner following the links).

    Returns
    -------
    Verdict

    Raises
    ------
    InvalidParameterError
        For a ``kpi`` or ``event_type`` outside the declared values.

    Examples
    --------
    >>> counts_toward("opens", "open", machine=False)
    Verdict(counts=True, reason=None)
    >>> counts_toward("opens", "open", machine=True).reason
    'machine open: stored, not counted'
    >>> counts_toward("clicks", "open", machine=False).reason
    'click experiment: opens are stored, not counted'
    """
    wanted = KPI_EVENT[KPIS.check(kpi, "kpi", "Experiment")]
    kind = EVENT_TYPES.check(event_type, "type", "Event")
    # The type first: a machine open in a click experiment is first of all not a click.
    if kind != wanted:
        return Verdict(False, f"{wanted} experiment: {kind}s are stored, not counted")
    if machine:
        return Verdict(False, f"machine {kind}: stored, not counted")
    return Verdict(True)
