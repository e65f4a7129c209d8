"""What the analyst's dashboard shows, built on the report.

Every figure the experiment page shows about a headline is the report's
(:meth:`ExperimentService.report`, the object ``GET /v1/experiments/{id}/report``
serialises), so the page and the API agree at any moment. Around it, the page
adds what the report leaves out, each cached per experiment for
:data:`CACHE_SECONDS` because each costs more than the report itself:

* the status in one plain sentence, with the forecast of when the stopping
  rule is likely to declare (:mod:`headliner.service.forecast`);
* what the logged propensities say (:mod:`headliner.core.diagnostics`): the
  opens gained over an even split and the sample-ratio check, from the store's
  scan of the decisions (:meth:`~headliner.storage.base.Store.propensity_groups`);
* for an experiment created from a plan, the plan's figures beside the actual
  ones (the plan is simulated once per process, in the background);
* the charts, as plain plotly.js traces (no figure objects are built here).

:func:`page_data` puts these together as one JSON-ready mapping: the live
page renders it, refreshes from it, and the HTML report inlines it.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from headliner.core.diagnostics import extra_opens_over_even_split, sample_ratio_mismatch
from headliner.service.experiments import HAND_PICKED, ExperimentService
from headliner.service.forecast import DecisionForecast, forecast_decision
from headliner.service.reporting import Report
from headliner.service.schemas import ReportPublic
from headliner.storage.base import ExperimentRecord, ExperimentStatus

logger = logging.getLogger("headliner.service")

#: Seconds a forecast, the diagnostics and the volume are reused per experiment.
CACHE_SECONDS = 60.0
#: How far back the current volume is measured.
VOLUME_SECONDS = 6 * 3600.0
#: Replications of a plan simulated for the plan-against-actual table.
PLAN_REPLICATIONS = 200
#: Below this p-value the sample-ratio check is flagged.
SRM_ALPHA = 0.001

#: Statuses the list can be filtered by (``burn_in`` is shown as running).
LIST_FILTERS = ("running", "winner_declared", "completed", "archived")

#: One colour per headline position, the same in every chart and table (Okabe-Ito
#: and Tableau hues, distinguishable with the common colour-vision deficiencies).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#7F7F7F",
    "#BCBD22",
    "#332288",
    "#AA4499",
)

_T = TypeVar("_T")


def colour(arm: int) -> str:
    """The colour of the headline at position ``arm``."""
    return PALETTE[arm % len(PALETTE)]


# --- formatting --------------------------------------------------------------------------
def fmt_int(value: float | None) -> str:
    """A count with thousands separators."""
    return "–" if value is None else f"{round(value):,}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals."""
    return "–" if value is None else f"{100.0 * value:.{digits}f}%"


def fmt_prob(value: float | None) -> str:
    """A probability as people read it: whole percent, one decimal near 0 and 100."""
    if value is None:
        return "–"
    percent = 100.0 * value
    if percent >= 99.95:
        return ">99.9%"
    if percent < 0.05:
        return "<0.1%"
    if percent < 1.0 or percent >= 99.0:
        return f"{percent:.1f}%"
    return f"{percent:.0f}%"


def fmt_points(value: float | None) -> str:
    """An open-rate difference in percentage points."""
    return "–" if value is None else f"{100.0 * value:.2f} pts"


def fmt_time(epoch: float | None, now: float | None = None) -> str:
    """A stored time in UTC: the clock time alone on the day of ``now``, else with the date."""
    if epoch is None:
        return "–"
    when = datetime.fromtimestamp(epoch, UTC)
    if now is not None and when.date() == datetime.fromtimestamp(now, UTC).date():
        return when.strftime("%H:%M UTC")
    return when.strftime("%d %b %Y %H:%M UTC").lstrip("0")


def fmt_duration(seconds: float | None) -> str:
    """A duration as a marketer says it: 45 minutes, 9 hours, 3 days."""
    if seconds is None:
        return "–"
    if seconds < 3600.0:
        minutes = max(round(seconds / 60.0), 1)
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = seconds / 3600.0
    if hours < 48.0:
        n = round(hours)
        return "1 hour" if n == 1 else f"{n} hours"
    return f"{round(hours / 24.0)} days"


FORMATS: dict[str, Callable[[Any], str]] = {
    "int": fmt_int,
    "pct1": fmt_pct,
    "pct0": lambda v: fmt_pct(v, 0),
    "prob": fmt_prob,
    "points": fmt_points,
}
"""The formats a page element can name in ``data-format``."""


# --- the list ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentRow:
    """An experiment as the list shows it."""

    id: str
    name: str
    status: str
    leader: str | None
    leader_p_best: float | None
    sends: int
    opens: int
    created_at: float
    winner: str | None


# --- the status sentence ---------------------------------------------------------------------
def _leader(report: Report) -> int:
    """Position of the active headline with the highest P(best), as the leaderboard shows it."""
    live = [a for a in report.arms if a.p_best is not None]
    return max(live, key=lambda a: a.p_best or 0.0).arm


def winner_reason_words(report: Report) -> str:
    """Why the winner was named, in plain words (from the reason recorded then)."""
    reason = report.experiment.winner_reason
    if reason is None:
        return "named"
    if reason == HAND_PICKED:
        return "named by hand"
    rule = report.stopping
    parts: list[str] = []
    if "P(best)" in reason:
        threshold = rule.p_best_threshold if rule is not None else None
        parts.append(
            "its chance of being best reached " + (f"{threshold:.0%}" if threshold else "the bar")
        )
    if "beats it by more than" in reason:
        threshold = rule.value_remaining_threshold if rule is not None else None
        parts.append(
            "value remaining fell below " + (f"{threshold:.0%}" if threshold else "the bar")
        )
    return " and ".join(parts) or reason


def status_sentence(report: Report, forecast: DecisionForecast | None, volume: float) -> str:
    """The experiment's state in one or two plain sentences.

    E.g. "Ending Tonight leads with a 93% chance of being best; at the current
    volume a winner is likely in about 9 hours." or "Winner declared at 14:02
    UTC: value remaining fell below 1%."
    """
    record = report.experiment
    arms = report.arms
    now = report.generated_at
    if record.winner_arm is not None:
        winner = arms[record.winner_arm].headline
        when = record.winner_declared_at
        at = f" at {fmt_time(when, now)}" if when is not None else ""
        why = winner_reason_words(report)
        if record.status is ExperimentStatus.WINNER_DECLARED:
            share = arms[record.winner_arm].allocation
            gets = f" It now gets {fmt_pct(share, 0)} of sends." if share is not None else ""
            return f"Winner declared{at}: {winner} ({why}).{gets}"
        done = "Archived" if record.status is ExperimentStatus.ARCHIVED else "Completed"
        return f"{done}. Winner: {winner}, {why}{at}."
    if record.status is ExperimentStatus.ARCHIVED:
        return "Archived without a winner."
    if record.status is ExperimentStatus.COMPLETED:
        return "Completed without a winner."
    leader = arms[_leader(report)]
    if report.stopping_status.in_burn_in:
        return (
            f"Burn-in: every headline gets an even share of sends until it has "
            f"{record.burn_in_per_arm:,} effective sends. {leader.headline} leads so far "
            f"({fmt_prob(leader.p_best)} chance of being best)."
        )
    lead = f"{leader.headline} leads with a {fmt_prob(leader.p_best)} chance of being best"
    if report.stopping is None:
        return lead + "; automatic stopping is off: complete the experiment by hand."
    if forecast is None:
        if volume <= 0.0:
            return lead + "; no sends in the last hours, so no forecast of a winner."
        return lead + "."
    if forecast.seconds is None:
        days = round(forecast.horizon_seconds / 86400.0)
        return lead + f"; at the current volume a winner is not likely within {days} days."
    if forecast.seconds < 3600.0:
        return lead + "; at the current volume a winner is likely within the hour."
    return (
        lead + f"; at the current volume a winner is likely in about "
        f"{fmt_duration(forecast.seconds)}."
    )


# --- charts ---------------------------------------------------------------------------------
def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _markers(report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vertical lines and labels where burn-in ended and where the winner was named."""
    marks: list[tuple[float, str]] = []
    previous: bool | None = None
    for shot in report.snapshots:
        if previous is True and shot.burn_in is False:
            marks.append((shot.at, "burn-in ended"))
            break
        if shot.burn_in is not None:
            previous = shot.burn_in
    declared = report.experiment.winner_declared_at
    if declared is not None:
        marks.append((declared, "winner declared"))
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": _iso(at),
            "x1": _iso(at),
            "y0": 0,
            "y1": 1,
            "line": {"color": "#444", "width": 1, "dash": "dot"},
        }
        for at, _ in marks
    ]
    notes = [
        {
            "x": _iso(at),
            "y": 1,
            "xref": "x",
            "yref": "paper",
            "text": label,
            "showarrow": False,
            "xanchor": "left",
            "yanchor": "top",
            "font": {"size": 11, "color": "#444"},
            "bgcolor": "rgba(255,255,255,0.8)",
        }
        for at, label in marks
    ]
    return shapes, notes


def _layout(
    y_title: str, tickformat: str, y_range: list[float] | None = None, **extra: Any
) -> dict[str, Any]:
    yaxis: dict[str, Any] = {
        "title": {"text": y_title},
        "tickformat": tickformat,
        "rangemode": "tozero",
    }
    if y_range is not None:
        yaxis["range"] = y_range
    return {
        "margin": {"l": 56, "r": 12, "t": 8, "b": 36},
        "height": 300,
        "hovermode": "x unified",
        "showlegend": False,
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
        "yaxis": yaxis,
        "xaxis": {"type": "date"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        **extra,
    }


def charts(report: Report) -> dict[str, dict[str, Any]]:
    """The page's charts as plotly.js ``{"data": traces, "layout": layout}``, by name.

    ``p_best``, ``allocation`` and ``rate`` (posterior mean with its 95%
    band) over campaign time from the snapshots, with markers where burn-in
    ended and the winner was named; ``density``: each headline's posterior
    density now, over the open rate in percent.
    """
    shots = report.snapshots
    arms = report.arms
    shapes, notes = _markers(report)
    p_best: list[dict[str, Any]] = []
    allocation: list[dict[str, Any]] = []
    rate: list[dict[str, Any]] = []
    for arm in arms:
        k = arm.arm
        mine = [s for s in shots if k in s.arm_to_p_best]
        x = [_iso(s.at) for s in mine]
        line = {"color": colour(k), "width": 2}
        common = {"name": arm.headline, "legendgroup": str(k), "x": x}
        p_best.append(
            {
                **common,
                "y": [s.arm_to_p_best[k] for s in mine],
                "type": "scatter",
                "mode": "lines",
                "line": line,
                "hovertemplate": "%{y:.1%}",
            }
        )
        allocation.append(
            {
                **common,
                "y": [s.arm_to_allocation.get(k, 0.0) for s in mine],
                "type": "scatter",
                "mode": "lines",
                "stackgroup": "share",
                "line": {"color": colour(k), "width": 0.5},
                "fillcolor": _rgba(colour(k), 0.55),
                "hovertemplate": "%{y:.1%}",
            }
        )
        # From the headline's first sends on: before them its interval is the prior's.
        estimated = [
            s
            for s in mine
            if s.arm_to_estimate and k in s.arm_to_estimate and (s.arm_to_sends or {}).get(k)
        ]
        if estimated:
            ex = [_iso(s.at) for s in estimated]
            values = [s.arm_to_estimate[k] for s in estimated if s.arm_to_estimate]
            band = {"legendgroup": str(k), "x": ex, "type": "scatter", "mode": "lines"}
            rate.append(
                {
                    **band,
                    "name": arm.headline + " (97.5%)",
                    "y": [v[2] for v in values],
                    "line": {"width": 0, "color": colour(k)},
                    "hoverinfo": "skip",
                }
            )
            rate.append(
                {
                    **band,
                    "name": arm.headline + " (2.5%)",
                    "y": [v[1] for v in values],
                    "line": {"width": 0, "color": colour(k)},
                    "fill": "tonexty",
                    "fillcolor": _rgba(colour(k), 0.07),
                    "hoverinfo": "skip",
                }
            )
            rate.append(
                {
                    **band,
                    "name": arm.headline,
                    "y": [v[0] for v in values],
                    "line": line,
                    "hovertemplate": "%{y:.1%}",
                }
            )
    marked = {"shapes": shapes, "annotations": notes}
    # The first snapshots' intervals span almost 0 to 100%: the axis follows the estimates
    # of now (bands reaching above it are cut), so that the rates stay readable.
    top = interval_axis([a.credible_interval[1] for a in arms]) * 1.25
    return {
        "p_best": {"data": p_best, "layout": _layout("P(best)", ".0%", [0.0, 1.0], **marked)},
        "allocation": {
            "data": allocation,
            "layout": _layout("share of sends", ".0%", [0.0, 1.0], **marked),
        },
        "rate": {
            "data": rate,
            "layout": _layout("open rate", ".0%", [0.0, min(top, 1.0)], **marked),
        },
        "density": density_chart(report),
    }


def density_chart(report: Report) -> dict[str, Any]:
    """Each headline's posterior density of its open rate (percent on x), from the report."""
    from scipy import stats

    arms = report.arms
    a = np.array([arm.posterior_parameters[0] for arm in arms])
    b = np.array([arm.posterior_parameters[1] for arm in arms])
    low = float(np.min(stats.beta.ppf(0.0005, a, b)))
    high = float(np.max(stats.beta.ppf(0.9995, a, b)))
    x = np.linspace(low, high, 241)
    traces = []
    for arm, alpha, beta in zip(arms, a, b, strict=True):
        traces.append(
            {
                "name": arm.headline,
                "x": np.round(100.0 * x, 4).tolist(),
                # Density per percentage point, so that the area is 1 on this axis.
                "y": np.round(stats.beta.pdf(x, alpha, beta) / 100.0, 6).tolist(),
                "type": "scatter",
                "mode": "lines",
                "fill": "tozeroy",
                "fillcolor": _rgba(colour(arm.arm), 0.12),
                "line": {
                    "color": colour(arm.arm),
                    "width": 2,
                    "dash": "solid" if arm.active else "dot",
                },
                "hovertemplate": "%{y:.3f}",
            }
        )
    layout = _layout("density", "", hovermode="closest")
    layout["xaxis"] = {"title": {"text": "open rate (%)"}, "ticksuffix": "%"}
    layout["yaxis"] = {"title": {"text": "density"}, "showticklabels": False}
    return {"data": traces, "layout": layout}


# --- diagnostics ------------------------------------------------------------------------
def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def diagnostics(service: ExperimentService, report: Report) -> dict[str, Any]:
    """The propensity checks and the health figures of ``report``'s experiment (JSON-ready)."""
    record = report.experiment
    groups = service.store.propensity_groups(record.id)
    extra = extra_opens_over_even_split(
        groups.propensity, groups.n_arms, groups.sends, groups.opens
    )
    decided = ~groups.wave
    decisions = int(groups.sends[decided].sum())
    # The test leaves out sends that had no choice (propensity 1: a declared winner).
    tested = decided & (groups.propensity < 1.0)
    srm: dict[str, Any] | None = None
    if tested.any():
        test = sample_ratio_mismatch(
            groups.arm[tested],
            groups.propensity[tested],
            groups.sends[tested],
            len(report.arms),
            stratum=groups.n_arms[tested],  # a headline added mid-run: a new set of chances
        )
        p_value = _finite(test.p_value)
        srm = {
            "observed": test.observed.tolist(),
            "expected": [float(e) for e in test.expected],
            "statistic": _finite(test.statistic),
            "dof": test.dof,
            "p_value": p_value,
            "flagged": p_value is not None and p_value < SRM_ALPHA,
        }
    opened = int(groups.opens[decided].sum())
    return {
        "extra_opens": {"value": extra.value, "low": extra.low, "high": extra.high},
        "sample_ratio": srm,
        "srm_alpha": SRM_ALPHA,
        "pending": sum(a.pending for a in report.arms),
        "late_opens": sum(a.late_opens for a in report.arms),
        "decisions": decisions,
        "decisions_without_open": decisions - opened,
        "attribution_window_seconds": record.attribution_window_seconds,
        "opens_seen": report.delay.opens_seen,
        "delay_median_seconds": report.delay.median_seconds,
    }


# --- plan against actual -----------------------------------------------------------------
def plan_figures(plan: Mapping[str, Any], replications: int = PLAN_REPLICATIONS) -> dict[str, Any]:
    """Simulate a stored plan (its inputs) once: the figures to compare the experiment with."""
    from headliner.sim.plan import PlanSpec, plan_campaign

    spec = PlanSpec.model_validate(dict(plan))
    planned = plan_campaign(
        spec,
        replications=min(replications, spec.replications),
        seed=spec.seed if spec.seed is not None else 0,
        recommend=False,
        n_threads=1,
    )
    figures = planned.figures()
    campaign = planned.campaign
    if campaign.wave_size is not None:
        per_hour = campaign.wave_size * 3600.0 / campaign.interval_seconds
    else:
        per_hour = float(campaign.sends_per_hour or 0.0)
    return {
        "replications": planned.result.n_replications,
        "hours_to_decision": figures["hours_to_decision"],
        "sends_to_decision": figures["sends_to_decision"],
        "no_decision_share": figures["no_decision_share"],
        "p_best": figures["p_best"],
        "extra_opens_vs_even": figures["extra_opens_vs_even"],
        "list_size": campaign.n_sends,
        "sends_per_hour": per_hour,
        "open_rates": list(campaign.true_rates),
        "headlines": list(spec.headlines),
    }


def plan_comparison(
    figures: Mapping[str, Any],
    report: Report,
    forecast: DecisionForecast | None,
    volume: float,
    extra_opens: float,
) -> list[dict[str, Any]]:
    """Rows of (what, planned, actual) text, the plan's figures against the experiment's."""
    record = report.experiment
    now = report.generated_at
    arms = report.arms
    sends = sum(a.sends for a in arms)
    elapsed_hours = (now - record.created_at) / 3600.0
    hours = figures["hours_to_decision"]
    planned_hours = (
        f"about {hours['median']:.0f} h (9 in 10 by {hours['p90']:.0f} h)"
        if hours["median"] is not None
        else "no decision in most runs"
    )
    declared = record.winner_declared_at
    if declared is not None:
        actual_hours = f"{(declared - record.created_at) / 3600.0:.1f} h"
    elif forecast is not None and forecast.seconds is not None:
        total = elapsed_hours + forecast.seconds / 3600.0
        actual_hours = f"not yet ({elapsed_hours:.0f} h in; about {total:.0f} h forecast)"
    else:
        actual_hours = f"not yet ({elapsed_hours:.0f} h in)"
    rows = [{"what": "Time to a winner", "planned": planned_hours, "actual": actual_hours}]
    at_decision = figures["sends_to_decision"]["median"]
    if declared is not None:
        before = [s for s in report.snapshots if s.at <= declared and s.arm_to_sends]
        counted = sum(before[-1].arm_to_sends.values()) if before and before[-1].arm_to_sends else 0
        actual_sends = f"{counted:,} (at the last snapshot before it)" if counted else "–"
    else:
        actual_sends = f"not yet ({sends:,} so far)"
    rows.append(
        {
            "what": "Sends to a winner",
            "planned": fmt_int(at_decision) if at_decision is not None else "–",
            "actual": actual_sends,
        }
    )
    rows.append(
        {
            "what": "Sends so far / planned list",
            "planned": fmt_int(figures["list_size"]),
            "actual": f"{sends:,} ({sends / max(figures['list_size'], 1):.0%})",
        }
    )
    rows.append(
        {
            "what": "Sends per hour",
            "planned": fmt_int(figures["sends_per_hour"]),
            "actual": fmt_int(volume),
        }
    )
    leader = arms[record.winner_arm if record.winner_arm is not None else _leader(report)]
    rows.append(
        {
            "what": "Chance the pick is the best",
            "planned": fmt_prob(figures["p_best"]),
            "actual": f"{fmt_prob(leader.p_best)} ({leader.headline} now)",
        }
    )
    extra = figures["extra_opens_vs_even"]["mean"]
    rows.append(
        {
            "what": "Extra opens over an even split",
            "planned": f"{fmt_int(extra)} over the campaign" if extra is not None else "–",
            "actual": f"{fmt_int(extra_opens)} so far",
        }
    )
    rates = dict(zip(figures["headlines"], figures["open_rates"], strict=False))
    for arm in arms:
        if arm.headline in rates:
            rows.append(
                {
                    "what": f"Open rate: {arm.headline}",
                    "planned": fmt_pct(rates[arm.headline]),
                    "actual": f"{fmt_pct(arm.posterior_mean)} "
                    f"({fmt_pct(arm.credible_interval[0])}–{fmt_pct(arm.credible_interval[1])})",
                }
            )
    return rows


# --- the dashboard -------------------------------------------------------------------------
class _Cache:
    """Values per experiment, reused for ``seconds`` of the service's clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float, build: Callable[[], _T]) -> _T:
        entry = self._entries.get(key)
        if entry is not None and 0.0 <= now - entry[0] < self.seconds:
            value: _T = entry[1]
            return value
        value = build()
        with self._lock:
            self._entries[key] = (now, value)
        return value


class Dashboard:
    """The data of the dashboard's pages, with the per-experiment caches.

    Parameters
    ----------
    service : ExperimentService
    cache_seconds : float, default=CACHE_SECONDS
        How long a forecast, the diagnostics and the volume are reused.
    plan_replications : int, default=PLAN_REPLICATIONS
    plans_in_background : bool, default=True
        Simulate a stored plan in a background thread (the page shows the
        table once it is done); False simulates it in the request.
    """

    def __init__(
        self,
        service: ExperimentService,
        *,
        cache_seconds: float = CACHE_SECONDS,
        plan_replications: int = PLAN_REPLICATIONS,
        plans_in_background: bool = True,
    ) -> None:
        self.service = service
        self._forecasts = _Cache(cache_seconds)
        self._diagnostics = _Cache(cache_seconds)
        self._volumes = _Cache(cache_seconds)
        self._plan_replications = plan_replications
        self._plans_in_background = plans_in_background
        self._plans: dict[str, dict[str, Any]] = {}
        self._planning: set[str] = set()
        self._plan_lock = threading.Lock()

    # --- the list ---------------------------------------------------------------------
    def rows(self, status: str | None = None) -> list[ExperimentRow]:
        """Experiments, newest first, optionally of one status (``running`` includes burn-in)."""
        records = self.service.list_experiments(include_archived=status == "archived")
        if status is not None:
            records = [r for r in records if r.status.value == status]
        return [self._row(record) for record in records]

    def _row(self, record: ExperimentRecord) -> ExperimentRow:
        state = self.service.state(record.id)
        arms = state.arms
        leader: int | None = None
        if state.n_active:
            leader = int(state.active[int(np.argmax(state.p_best))])
        by_arm = {int(a): float(p) for a, p in zip(state.active, state.p_best, strict=True)}
        winner = state.record.winner_arm
        return ExperimentRow(
            id=record.id,
            name=record.name,
            status=state.status,
            leader=None if leader is None else arms[leader].headline,
            leader_p_best=None if leader is None else by_arm[leader],
            sends=sum(c.sends for c in state.counts),
            opens=sum(c.opens for c in state.counts),
            created_at=record.created_at,
            winner=None if winner is None else arms[winner].headline,
        )

    # --- the experiment page -------------------------------------------------------
    def volume(self, record: ExperimentRecord, now: float) -> float:
        """Sends per hour over the last :data:`VOLUME_SECONDS` (or since the start; >= 1 h)."""

        def measure() -> float:
            since = max(now - VOLUME_SECONDS, record.created_at)
            hours = max(now - since, 3600.0) / 3600.0
            return self.service.store.sends_since(record.id, since) / hours

        return self._volumes.get(record.id, now, measure)

    def forecast(self, report: Report, volume: float) -> DecisionForecast | None:
        """When the stopping rule is likely to declare, cached per experiment."""
        record = report.experiment
        now = report.generated_at

        def run() -> DecisionForecast | None:
            # The state the report was built from (the report refreshed it).
            state = self.service.cache.get(record.id, max_age=math.inf)
            seed = zlib.crc32(record.id.encode("utf-8"))
            return forecast_decision(state, volume, now=now, seed=seed)

        if record.status is not ExperimentStatus.RUNNING or report.stopping is None:
            return None
        return self._forecasts.get(record.id, now, run)

    def diagnostics(self, report: Report) -> dict[str, Any]:
        """:func:`diagnostics`, cached per experiment (it scans the decisions)."""
        record = report.experiment
        return self._diagnostics.get(
            record.id, report.generated_at, lambda: diagnostics(self.service, report)
        )

    def plan(self, record: ExperimentRecord, *, wait: bool = False) -> dict[str, Any] | None:
        """The simulated figures of the experiment's plan; None without a plan.

        ``{"pending": True}`` while the simulation runs in the background,
        ``{"error": ...}`` if the stored plan cannot be simulated.
        """
        if record.plan is None:
            return None
        done = self._plans.get(record.id)
        if done is not None:
            return done
        if wait or not self._plans_in_background:
            self._simulate(record)
            return self._plans[record.id]
        with self._plan_lock:
            if record.id not in self._planning:
                self._planning.add(record.id)
                threading.Thread(
                    target=self._simulate,
                    args=(record,),
                    name=f"headliner-plan-{record.id}",
                    daemon=True,
                ).start()
        return self._plans.get(record.id, {"pending": True})

    def _simulate(self, record: ExperimentRecord) -> None:
        assert record.plan is not None
        try:
            result = plan_figures(record.plan, self._plan_replications)
        except Exception as exc:  # an unreadable plan must not break the page
            logger.warning("plan simulation failed", exc_info=True)
            result = {"error": f"the stored plan could not be simulated ({type(exc).__name__})"}
        with self._plan_lock:
            self._plans[record.id] = result
            self._planning.discard(record.id)

    def page(self, experiment_id: str, *, wait_for_plan: bool = False) -> dict[str, Any]:
        """Everything the experiment page shows, JSON-ready (see :func:`page_data`)."""
        report = self.service.report(experiment_id)
        record = report.experiment
        volume = self.volume(record, report.generated_at)
        forecast = self.forecast(report, volume)
        checks = self.diagnostics(report)
        plan = self.plan(record, wait=wait_for_plan)
        return page_data(report, forecast, volume, checks, plan)


#: How the page names each KPI's successes: a count and a rate.
KPI_WORDS = {
    "opens": {"count": "Opens", "rate": "Open rate", "one": "opens"},
    "clicks": {"count": "Clicks", "rate": "Click rate", "one": "clicks"},
    "conversions": {"count": "Conversions", "rate": "Conversion rate", "one": "conversions"},
}


def page_data(
    report: Report,
    forecast: DecisionForecast | None,
    volume: float,
    checks: Mapping[str, Any],
    plan: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The experiment page's data: the report as the API serialises it, and what it adds.

    Keys: ``report`` (:class:`ReportPublic`, as ``GET /v1/.../report``
    returns it), ``sentence``, ``forecast``, ``volume`` (sends per hour),
    ``diagnostics``, ``plan`` (``None``, ``{"pending": true}``,
    ``{"error": ...}`` or ``{"rows": [...], "replications": n}``), ``charts``,
    ``colours`` (per headline position) and ``interval_axis`` (the right end
    of the leaderboard's interval bars, as a share).
    """
    public = ReportPublic.of(report).model_dump(mode="json")
    plan_block: dict[str, Any] | None = None
    if plan is not None:
        if "hours_to_decision" in plan:
            rows = plan_comparison(
                plan, report, forecast, volume, float(checks["extra_opens"]["value"])
            )
            plan_block = {"rows": rows, "replications": plan["replications"]}
        else:
            plan_block = dict(plan)
    return {
        "report": public,
        "kpi": KPI_WORDS[report.experiment.kpi],
        "sentence": status_sentence(report, forecast, volume),
        "forecast": None
        if forecast is None
        else {
            "seconds": forecast.seconds,
            "declared_share": forecast.declared_share,
            "draws": forecast.draws,
            "horizon_seconds": forecast.horizon_seconds,
        },
        "volume": volume,
        "diagnostics": dict(checks),
        "plan": plan_block,
        "charts": charts(report),
        "leader": _leader(report),
        "started": report.experiment.created_at,
        "policy": report.experiment.policy,
        "colours": [colour(a.arm) for a in report.arms],
        "interval_axis": interval_axis([a.credible_interval[1] for a in report.arms]),
    }


def interval_axis(highs: Sequence[float]) -> float:
    """The right end of the interval bars: the highest upper bound, rounded up to 5 points."""
    top = max(highs, default=0.0)
    # Less a rounding error's worth, so that 0.25 stays 0.25 rather than going to 0.3.
    return min(max(math.ceil(top * 20.0 - 1e-9) / 20.0, 0.05), 1.0)
