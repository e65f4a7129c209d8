"""Tables for people: the seed's comparison display, Monte Carlo, campaign and plan summaries."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from headliner.core.policies import AB_TEST_ALPHA as AB_ALPHA
from headliner.core.policies import AB_TEST_POWER as AB_POWER
from headliner.core.policies import ab_test_sends_per_arm

if TYPE_CHECKING:
    from headliner.sim.campaign import Campaign
    from headliner.sim.plan import CampaignPlan, Candidate, Search
    from headliner.sim.study import CampaignStudy

_RATE_COLUMNS = ("random_open_rate", "bandit_open_rate")
_LIFT_COLUMNS = ("opens_lift_pct", "open_rate_lift_pct")


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}%"


def format_comparison(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as the seed design displays it.

    Open rates become percentages with 2 decimals (0.1908 → "19.08%"), lifts
    get a percent sign with 2 decimals; counts stay integers.
    """
    shown = comparison.copy()
    for column in shown.columns:
        if column in _RATE_COLUMNS:
            shown[column] = [_percent(100.0 * v) for v in shown[column]]
        elif column in _LIFT_COLUMNS or column.startswith("lift_vs_"):
            shown[column] = [_percent(v) for v in shown[column]]
    return shown


def as_fractions(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with one unit for rates, shares and lifts: fractions (``0.2427`` for +24.27%).

    The seed's comparison keeps its lifts in percent (``opens_lift_pct``);
    machine-readable output renames them without ``_pct`` and divides by 100,
    so every rate and lift in a CSV or JSON file reads the same way.
    """
    return frame.rename(
        columns={c: c.removesuffix("_pct") for c in frame.columns if c.endswith("_pct")}
    ).assign(
        **{
            c.removesuffix("_pct"): (frame[c] / 100.0).round(6)
            for c in frame.columns
            if c.endswith("_pct")
        }
    )


def format_monte_carlo(summary: pd.DataFrame, checkpoints: list[int] | None = None) -> pd.DataFrame:
    """Monte Carlo summary for display: open rate and regret with their 95% intervals.

    Parameters
    ----------
    summary : DataFrame
        ``MonteCarloResult.summary()``.
    checkpoints : list of int, optional
        Keep only these send counts.
    """
    rows = summary if checkpoints is None else summary[summary["n_sends"].isin(checkpoints)]
    n = rows["n_sends"].to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "policy": rows["policy"].to_numpy(),
            "sends": rows["n_sends"].to_numpy(),
            "open_rate": [f"{100 * v:.2f}%" for v in rows["mean_open_rate"]],
            "open_rate_95ci": [
                f"[{100 * lo / s:.2f}%, {100 * hi / s:.2f}%]"
                for lo, hi, s in zip(rows["opens_low"], rows["opens_high"], n, strict=True)
            ],
            "regret": [f"{v:.1f}" for v in rows["mean_regret"]],
            "regret_95ci": [
                f"[{lo:.1f}, {hi:.1f}]"
                for lo, hi in zip(rows["regret_low"], rows["regret_high"], strict=True)
            ],
            "best_arm_share": [f"{100 * v:.2f}%" for v in rows["mean_best_arm_share"]],
        }
    )


def render(table: pd.DataFrame) -> str:
    """Plain-text rendering of a display table, without the index."""
    return table.to_string(index=False)


# --- campaigns ------------------------------------------------------------------------
#: Width of the campaign table: it reads in an 80-column terminal.
TABLE_WIDTH = 80
#: A declared winner counts as right when its rate is within this share of the best's.
WITHIN_BEST = 0.01
_Z95_QUANTILE = 0.975
_POLICY_NAMES = {
    "thompson": "Thompson Sampling",
    "uniform": "an even random split",
    "top_two": "top-two Thompson Sampling",
}
_LABEL_WIDTH = 40
_VALUE_WIDTH = 10
_HEADLINE_WIDTH = 50


def _finite(value: float) -> float | None:
    """A float for JSON: None for NaN and infinities."""
    return float(value) if math.isfinite(value) else None


def quantile_and_ci(values: NDArray[Any], q: float) -> tuple[float, float, float]:
    """The ``q``-quantile of ``values`` with a distribution-free 95% interval.

    The interval runs between the order statistics whose ranks bound the
    number of values below the true quantile, a Binomial(n, q) count, at its
    2.5% and 97.5% points; it covers the quantile with probability >= 95%
    unless a bound is clipped to the smallest or largest value (few values).

    Returns
    -------
    tuple of float
        ``(estimate, low, high)``; NaNs without finite values.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan
    from scipy import stats

    low_rank = int(stats.binom.ppf(1.0 - _Z95_QUANTILE, n, q))
    high_rank = int(stats.binom.ppf(_Z95_QUANTILE, n, q)) + 1
    low = x[min(max(low_rank, 1), n) - 1]
    high = x[min(max(high_rank, 1), n) - 1]
    return float(np.quantile(x, q)), float(low), float(high)


def _duration(seconds: float) -> str:
    """``7200`` -> ``"2h"``, ``300`` -> ``"5m"``, ``90`` -> ``"90s"``."""
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and math.isclose(seconds / size, round(seconds / size)):
            return f"{round(seconds / size):,}{unit}"
    if seconds >= 3600.0:
        return f"{seconds / 3600.0:,.1f}h"
    return f"{seconds:g}s"


def _campaign_settings(campaign: Campaign) -> dict[str, Any]:
    """The campaign's settings, in the units of its scenario file."""
    traffic: dict[str, Any]
    if campaign.wave_size is not None:
        traffic = {
            "waves": {"size": campaign.wave_size, "every_hours": campaign.interval_seconds / 3600.0}
        }
    else:
        traffic = {
            "per_send": {
                "rate_per_hour": campaign.sends_per_hour,
                "refresh_hours": campaign.interval_seconds / 3600.0,
            }
        }
    delay = campaign.open_delay
    stopping = campaign.stopping
    return {
        "list_size": campaign.n_sends,
        **traffic,
        "open_delay_hours": None
        if delay is None
        else {"median": delay.median_seconds / 3600.0, "p95": delay.p95_seconds / 3600.0},
        "attribution_window_hours": campaign.attribution_window_seconds / 3600.0,
        "policy": campaign.policy.name,
        "stopping": None
        if stopping is None
        else {
            "p_best_threshold": stopping.p_best_threshold,
            "value_remaining_threshold": stopping.value_remaining_threshold,
            "require": stopping.require,
            "min_opens": stopping.min_opens,
            "check_interval_hours": stopping.check_interval_seconds / 3600.0,
        },
        "counting": campaign.counting,
    }


def _mean(values: NDArray[Any]) -> dict[str, Any]:
    from headliner.sim.campaign import mean_and_ci

    mean, half = mean_and_ci(values)
    return {"mean": _finite(mean), "ci95": [_finite(mean - half), _finite(mean + half)]}


def _share(hits: NDArray[np.bool_]) -> dict[str, Any]:
    from headliner.sim.campaign import proportion_and_ci

    value, low, high = proportion_and_ci(hits)
    return {"value": _finite(value), "ci95": [_finite(low), _finite(high)]}


def _quantiles(values: NDArray[Any]) -> dict[str, Any]:
    median, median_low, median_high = quantile_and_ci(values, 0.5)
    p90, p90_low, p90_high = quantile_and_ci(values, 0.9)
    return {
        "median": _finite(median),
        "median_ci95": [_finite(median_low), _finite(median_high)],
        "p90": _finite(p90),
        "p90_ci95": [_finite(p90_low), _finite(p90_high)],
    }


def campaign_summary(study: CampaignStudy) -> dict[str, Any]:
    """What a marketer reads off a simulated campaign, as a JSON-ready mapping.

    Means come with their 95% normal interval, shares with their 95% Wilson
    interval, medians and 90th percentiles with a distribution-free 95%
    interval (:func:`quantile_and_ci`); NaN becomes None.

    Keys
    ----
    scenario, replications, seed, campaign (the settings), opens,
    even_split_opens (expected: list size x mean true rate),
    extra_opens_vs_even, lift_vs_even (a fraction), regret (expected opens lost against
    always sending the best headline), decided_share (campaigns that declared
    a winner by the last send), within_1pct_share (of those declarations, the
    ones within 1% of the best rate), hours_to_decision and sends_to_decision
    (median and p90 over the campaigns that declared), ab_test_sends_per_arm
    (:func:`ab_test_sends_per_arm`), ab_test_sends_total, headlines (per
    headline: text, true_open_rate, send_share, declared_share).
    """
    result = study.result
    campaign = result.campaign
    rates = np.asarray(campaign.true_rates, dtype=np.float64)
    even = campaign.n_sends * float(rates.mean())
    extra = result.opens.astype(np.float64) - even
    decided = result.decided
    per_arm = ab_test_sends_per_arm(rates)
    share_of_sends = result.sends / campaign.n_sends
    return {
        "scenario": study.scenario.name,
        "replications": result.n_replications,
        "seed": result.seed,
        "campaign": _campaign_settings(campaign),
        "opens": _mean(result.opens),
        "even_split_opens": even,
        "extra_opens_vs_even": _mean(extra),
        "lift_vs_even": _mean(extra / even) if even > 0 else _mean(np.array([])),
        "regret": _mean(result.regret),
        "decided_share": _share(decided),
        "within_1pct_share": _share(result.within_best(WITHIN_BEST)[decided]),
        "hours_to_decision": _quantiles(result.decision_hours[decided]),
        "sends_to_decision": _quantiles(result.decision_sends[decided]),
        "ab_test_sends_per_arm": per_arm,
        "ab_test_sends_total": None if per_arm is None else per_arm * campaign.n_arms,
        "headlines": [
            {
                "text": text,
                "true_open_rate": float(rates[k]),
                "send_share": float(share_of_sends[:, k].mean()),
                "declared_share": float(np.mean(result.declared_arm == k)),
            }
            for k, text in enumerate(study.headlines)
        ],
    }


def _number(value: float | None, *, signed: bool = False, decimals: int | None = None) -> str:
    """``1234.5`` -> ``"1,234"`` (one decimal below 100), ``"n/a"`` for None."""
    if value is None:
        return "n/a"
    places = decimals if decimals is not None else (0 if abs(value) >= 100 else 1)
    return f"{value:{'+' if signed else ''},.{places}f}"


def _pct(
    value: float | None, *, signed: bool = False, scale: float = 100.0, decimals: int = 1
) -> str:
    """``0.2345`` -> ``"23.4%"``; ``"n/a"`` for None."""
    if value is None:
        return "n/a"
    return f"{scale * value:{'+' if signed else ''}.{decimals}f}%"


def _setting(share: float) -> str:
    """A threshold as a reader writes it: ``0.99`` -> ``"99%"``, ``0.995`` -> ``"99.5%"``."""
    return f"{100.0 * share:g}%"


def _row(label: str, estimate: str, interval: tuple[str, str] | None = None) -> str:
    """One figure: label, estimate, and its interval unless there is none (or no estimate)."""
    shown = f"[{interval[0]}, {interval[1]}]" if interval is not None and estimate != "n/a" else ""
    return f"{label:<{_LABEL_WIDTH}}{estimate:>{_VALUE_WIDTH}}  {shown}".rstrip()


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def _describe(summary: dict[str, Any]) -> str:
    settings = summary["campaign"]
    if "waves" in settings:
        waves = settings["waves"]
        traffic = (
            f"{settings['list_size']:,} sends in waves of {waves['size']:,} "
            f"every {_duration(3600.0 * waves['every_hours'])}"
        )
    else:
        per_send = settings["per_send"]
        traffic = (
            f"{settings['list_size']:,} sends at {per_send['rate_per_hour']:,.0f} an hour, "
            f"the split refreshed every {_duration(3600.0 * per_send['refresh_hours'])}"
        )
    window = _duration(3600.0 * settings["attribution_window_hours"])
    delay = settings["open_delay_hours"]
    if delay is None:
        opens = f"opens are known at the next step and count for {window}"
    else:
        opens = (
            f"opens arrive {_duration(3600.0 * delay['median'])} after the send (median), "
            f"95% of them within {_duration(3600.0 * delay['p95'])}, and count for {window}"
        )
    policy = _POLICY_NAMES.get(settings["policy"], settings["policy"])
    stopping = settings["stopping"]
    if stopping is None:
        rule = "never declares a winner (stopping off)"
    else:
        criteria = []
        if stopping["p_best_threshold"] is not None:
            criteria.append(f"P(best) reaches {_setting(stopping['p_best_threshold'])}")
        if stopping["value_remaining_threshold"] is not None:
            criteria.append(
                f"the value remaining falls below {_setting(stopping['value_remaining_threshold'])}"
            )
        joined = f" {'and' if stopping['require'] == 'all' else 'or'} ".join(criteria)
        every = stopping["check_interval_hours"]
        cadence = f"every {_duration(3600.0 * every)}" if every > 0 else "at every step"
        rule = (
            f"declares a winner when {joined} (checked {cadence}, "
            f"from {stopping['min_opens']:,} opens)"
        )
    return (
        f'Campaign "{summary["scenario"]}": {traffic}; {opens}. '
        f"{policy[0].upper()}{policy[1:]} {rule}."
    )


def format_campaign(study: CampaignStudy) -> str:
    """The campaign table: what a simulated campaign gets, for a marketer, in 80 columns.

    A description of the campaign, the replications and seed, then opens,
    extra opens and lift over an even split, opens lost against always sending
    the best headline, how often and how fast a winner is declared and how
    often it is right, the A/B test the same answer would need, and a line
    per headline. Every estimate has its 95% interval (see
    :func:`campaign_summary`).
    """
    s = campaign_summary(study)
    lines = textwrap.wrap(_describe(s), TABLE_WIDTH)
    # A seed drawn from fresh entropy has 39 digits: this line is wrapped too.
    seed = f"{s['replications']:,} simulated campaigns, seed {s['seed']}. Brackets: 95% intervals."
    lines += textwrap.wrap(seed, TABLE_WIDTH)
    lines.append("")
    lines.append(_row("", "estimate", None) + "  95% interval")

    def mean_row(label: str, key: str, *, signed: bool = False) -> str:
        item = s[key]
        low, high = item["ci95"]
        mean = item["mean"]
        # The interval is shown with the estimate's decimals.
        places = 0 if mean is None or abs(mean) >= 100 else 1
        return _row(
            label,
            _number(mean, signed=signed, decimals=places),
            (
                _number(low, signed=signed, decimals=places),
                _number(high, signed=signed, decimals=places),
            ),
        )

    def share_row(label: str, key: str) -> str:
        item = s[key]
        low, high = item["ci95"]
        return _row(label, _pct(item["value"]), (_pct(low), _pct(high)))

    def quantile_rows(label: str, key: str, decimals: int) -> list[str]:
        item = s[key]
        rows = []
        for name, what in (("median", "median"), ("p90", "90th percentile")):
            low, high = item[f"{name}_ci95"]
            rows.append(
                _row(
                    f"{label}: {what}",
                    _number(item[name], decimals=decimals),
                    (_number(low, decimals=decimals), _number(high, decimals=decimals)),
                )
            )
        return rows

    lift = s["lift_vs_even"]
    lines += [
        mean_row("Opens per campaign", "opens"),
        _row("Opens expected from an even split", _number(s["even_split_opens"])),
        mean_row("Extra opens vs an even split", "extra_opens_vs_even", signed=True),
        _row(
            "Lift over an even split",
            _pct(lift["mean"], signed=True),
            (
                _pct(lift["ci95"][0], signed=True),
                _pct(lift["ci95"][1], signed=True),
            ),
        ),
        mean_row("Opens lost vs always the best headline", "regret"),
        share_row("Campaigns that declared a winner", "decided_share"),
        share_row("Declared winners within 1% of the best", "within_1pct_share"),
        *quantile_rows("Hours to a decision", "hours_to_decision", 1),
        *quantile_rows("Sends to a decision", "sends_to_decision", 0),
        "",
    ]
    per_arm = s["ab_test_sends_per_arm"]
    if per_arm is None:
        ab = (
            "No A/B test is sized: there is one headline, or the best and the runner-up "
            "rates tie (or the runner-up's is 0)."
        )
    else:
        total = s["ab_test_sends_total"]
        share = total / s["campaign"]["list_size"]
        ab = (
            f"A powered A/B test (alpha {AB_ALPHA:g}, power {AB_POWER:.0%}) needs "
            f"{per_arm:,} sends per headline to tell the best from the runner-up: "
            f"{total:,} sends for {len(s['headlines'])} headlines, {share:.0%} of the list."
        )
    lines += textwrap.wrap(ab, TABLE_WIDTH)
    lines.append("")
    lines.append(f"{'':<{_HEADLINE_WIDTH}}{'true':>8}{'share of':>11}{'declared':>11}")
    lines.append(f"{'Headline':<{_HEADLINE_WIDTH}}{'rate':>8}{'sends':>11}{'winner':>11}")
    for item in s["headlines"]:
        lines.append(
            f"{shorten(item['text'], _HEADLINE_WIDTH - 2):<{_HEADLINE_WIDTH}}"
            f"{_pct(item['true_open_rate'], decimals=2):>8}"
            f"{_pct(item['send_share']):>11}"
            f"{_pct(item['declared_share']):>11}"
        )
    return "\n".join(lines)


def campaign_replications(study: CampaignStudy) -> pd.DataFrame:
    """One row per simulated campaign: what the CSV output holds.

    Columns: ``replication``, ``opens``, ``regret``, ``declared_arm`` (-1:
    none declared), ``declared_headline`` (empty: none), ``decision_hours`` and
    ``decision_sends`` (empty without a declaration).
    """
    result = study.result
    decided = result.decided
    texts = np.array(study.headlines, dtype=object)
    return pd.DataFrame(
        {
            "replication": np.arange(result.n_replications),
            "opens": result.opens,
            "regret": result.regret,
            "declared_arm": result.declared_arm,
            "declared_headline": np.where(decided, texts[np.maximum(result.declared_arm, 0)], ""),
            "decision_hours": result.decision_hours,
            "decision_sends": pd.Series(result.decision_sends, dtype="Int64").mask(~decided),
        }
    )


# --- plans ----------------------------------------------------------------------------
_SEARCH_LABELS = {"list_size": "Smallest list", "cadence": "Cadence", "burn_in": "Burn-in"}


def _setting_text(candidate: Candidate) -> str:
    """A candidate's setting as a reader says it."""
    setting = candidate.setting
    campaign = candidate.campaign
    if "burn_in_per_arm" in setting:
        return f"{setting['burn_in_per_arm']:,} sends per headline"
    if "refresh_hours" in setting:
        return f"the split refreshed every {_duration(3600.0 * setting['refresh_hours'])}"
    every = _duration(campaign.interval_seconds)
    if campaign.wave_size is None:
        return f"{campaign.n_sends:,} sends at {campaign.sends_per_hour:,.0f} an hour"
    waves = int(campaign.step_sends().shape[0])
    traffic = f"{waves:,} waves of {campaign.wave_size:,} every {every}"
    if "list_size" in setting:
        return f"{campaign.n_sends:,} ({traffic})"
    return traffic


def _candidate_text(candidate: Candidate) -> str:
    hours = candidate.hours_to_decision
    when = "no decision in most" if hours is None else f"decided by hour {_hours_text(hours)}"
    return (
        f"{_setting_text(candidate)}: {_pct(candidate.p_within_1pct, decimals=0)} within 1%, "
        f"{when}, {_number(candidate.extra_opens_vs_even, signed=True, decimals=0)} opens vs even"
    )


def _hours_text(value: float) -> str:
    return f"{value:,.0f}" if math.isclose(value, round(value)) else f"{value:,.1f}"


def _search_lines(search: Search) -> list[str]:
    label = f"{_SEARCH_LABELS[search.kind]}:"
    chosen = search.recommended
    if chosen is None:
        closest = max(search.candidates, key=lambda c: c.p_within_1pct)
        text = f"none tried reaches the target; the closest: {_candidate_text(closest)}"
    elif chosen.is_plan:
        text = f"the plan's own, {_candidate_text(chosen)}"
    else:
        text = _candidate_text(chosen)
    return textwrap.wrap(
        f"{label:<15}{text}.", TABLE_WIDTH, subsequent_indent=" " * 15, break_on_hyphens=False
    )


def format_plan(plan: CampaignPlan) -> str:
    """The plan for a marketer, in 80 columns: campaign, verdict, figures, recommendations.

    Every figure has its 95% interval; hours and sends to a decision are over
    every simulated campaign ("not by the end" when too few declare).
    """
    from headliner.sim.plan import TARGET

    document = plan.to_document()
    campaign = plan.campaign
    summary = {"scenario": plan.spec.name, "campaign": _campaign_settings(campaign)}
    lines = textwrap.wrap("Plan" + _describe(summary).removeprefix("Campaign"), TABLE_WIDTH)
    seed = (
        f"{document['replications']:,} simulated campaigns, seed {document['seed']}. "
        "Brackets: 95% intervals."
    )
    lines += textwrap.wrap(seed, TABLE_WIDTH)
    lines.append("")
    lines += textwrap.wrap(document["verdict"], TABLE_WIDTH)
    lines.append("")
    lines.append(_row("", "estimate", None) + "  95% interval")

    def never(value: float | None, decimals: int) -> str:
        return "after end" if value is None else _number(value, decimals=decimals)

    for label, key, decimals in (
        ("Hours to a decision", "hours_to_decision", 1),
        ("Sends to a decision", "sends_to_decision", 0),
    ):
        item = document[key]
        for name, what in (("median", "median"), ("p90", "90th percentile")):
            low, high = item[f"{name}_ci95"]
            lines.append(
                _row(
                    f"{label}: {what}",
                    never(item[name], decimals),
                    (never(low, decimals), never(high, decimals)),
                )
            )

    def share_row(label: str, key: str) -> str:
        low, high = document[f"{key}_ci95"]
        return _row(label, _pct(document[key]), (_pct(low), _pct(high)))

    def mean_row(label: str, key: str, *, signed: bool = True) -> str:
        item = document[key]
        low, high = item["ci95"]
        return _row(
            label,
            _number(item["mean"], signed=signed, decimals=0),
            (_number(low, signed=signed, decimals=0), _number(high, signed=signed, decimals=0)),
        )

    if any(
        value is None or (isinstance(value, list) and None in value)
        for key in ("hours_to_decision", "sends_to_decision")
        for value in document[key].values()
    ):
        lines.append(
            f"{'':<4}(after end: some campaigns never declare, so later than the last send)"
        )
    lines += [
        share_row("Campaigns with no decision by the end", "no_decision_share"),
        share_row("Declared the best headline", "p_best"),
        share_row("Declared one within 1% of the best", "p_within_1pct"),
        mean_row("Extra opens vs an even split", "extra_opens_vs_even"),
        mean_row("Extra opens vs A/B test, then winner", "extra_opens_vs_ab_test"),
        mean_row("Opens lost vs always the best headline", "regret", signed=False),
        "",
    ]
    per_arm = document["ab_test_sends_per_arm"]
    if per_arm is None:
        ab = "No A/B test is sized: the best and the runner-up rates tie."
    else:
        total = document["ab_test_sends_total"]
        fits = "" if document["ab_test_fits"] else ", more than the list: it would be all test"
        ab = (
            f"The A/B test (alpha {AB_ALPHA:g}, power {AB_POWER:.0%}, as Evan Miller's "
            f"calculator sizes it): {per_arm:,} sends per headline, {total:,} in all{fits}; "
            "its winner, picked once all its opens are in, gets the rest of the list."
        )
    lines += textwrap.wrap(ab, TABLE_WIDTH)
    if plan.searches:
        lines.append("")
        lines += textwrap.wrap(
            f"To keep the pick within 1% of the best in {TARGET:.0%} of campaigns:", TABLE_WIDTH
        )
        for search in plan.searches:
            lines += _search_lines(search)
        lines += textwrap.wrap(f"Searched: {plan.search_method()}", TABLE_WIDTH)
    return "\n".join(lines)


def plan_rows(plan: CampaignPlan) -> pd.DataFrame:
    """The plan's figures, one row each: ``figure``, ``value``, ``ci95_low``, ``ci95_high``.

    Recommended settings follow as ``recommended_<search>_<key>`` rows
    without an interval.
    """
    document = plan.to_document()
    rows: list[tuple[str, Any, Any, Any]] = [
        ("replications", document["replications"], None, None),
        ("seed", str(document["seed"]), None, None),
    ]
    for key in ("hours_to_decision", "sends_to_decision"):
        for name in ("median", "p90"):
            low, high = document[key][f"{name}_ci95"]
            rows.append((f"{key}_{name}", document[key][name], low, high))
    for key in ("no_decision_share", "p_best", "p_within_1pct"):
        low, high = document[f"{key}_ci95"]
        rows.append((key, document[key], low, high))
    for key in ("extra_opens_vs_even", "extra_opens_vs_ab_test", "regret"):
        low, high = document[key]["ci95"]
        rows.append((key, document[key]["mean"], low, high))
    rows.append(("ab_test_sends_per_arm", document["ab_test_sends_per_arm"], None, None))
    for search in plan.searches:
        if search.recommended is not None:
            for key, value in search.recommended.setting.items():
                rows.append((f"recommended_{search.kind}_{key}", value, None, None))
    rows.append(("verdict", document["verdict"], None, None))
    return pd.DataFrame(rows, columns=["figure", "value", "ci95_low", "ci95_high"])
