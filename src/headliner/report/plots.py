"""PNG plots of simulations; matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

if TYPE_CHECKING:
    from headliner.sim.plan import CampaignPlan
    from headliner.sim.study import CampaignStudy, StudyResult

# Posterior panels drawn at most.
_MAX_PANELS = 4
# A curve over a million sends is drawn from this many points at most.
_MAX_POINTS = 2_000
FloatArray = NDArray[np.float64]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def sample_points(n_sends: int) -> NDArray[np.int64]:
    """Send counts 1..n_sends at which a curve is drawn: all of them, or a log-spaced subset."""
    if n_sends <= _MAX_POINTS:
        return np.arange(1, n_sends + 1, dtype=np.int64)
    return np.unique(np.geomspace(1, n_sends, _MAX_POINTS).astype(np.int64))


def plot_cumulative_opens(policy_to_rewards: Mapping[str, NDArray[np.int8]], path: Path) -> Path:
    """Cumulative opens of each policy against sends (one seeded run each).

    Parameters
    ----------
    policy_to_rewards : mapping of str to ndarray of shape (n_sends,)
        Per-send 0/1 outcomes of each policy's run.
    path : Path
        Where to write the PNG.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, rewards in policy_to_rewards.items():
        x = sample_points(len(rewards))
        ax.plot(x, np.cumsum(rewards, dtype=np.int64)[x - 1], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("sends")
    ax.set_ylabel("cumulative opens")
    ax.set_title("Cumulative opens per policy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_send_share(
    arms: NDArray[np.signedinteger[Any]], headlines: Sequence[str], path: Path, *, title: str
) -> Path:
    """Share of sends so far that each headline received, against sends.

    Parameters
    ----------
    arms : ndarray of shape (n_sends,)
        Arm index sent at each round.
    headlines : sequence of str
    path : Path
    title : str
    """
    plt = _pyplot()
    x = sample_points(len(arms))
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, headline in enumerate(headlines):
        sent = np.cumsum(arms == k, dtype=np.int64)[x - 1]
        ax.plot(x, sent / x, label=headline)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("sends")
    ax.set_ylabel("share of sends so far")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_posteriors(
    arms: NDArray[np.signedinteger[Any]],
    rewards: NDArray[np.int8],
    headlines: Sequence[str],
    checkpoints: Sequence[int],
    path: Path,
    *,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
) -> Path:
    """Beta posterior density of each headline after each checkpoint's sends.

    Exploration turning into exploitation: early densities overlap and are
    wide; later the leader's is narrow and the others' stop narrowing because
    they get few sends.
    """
    plt = _pyplot()
    n_arms = len(headlines)
    fig, axes = plt.subplots(1, len(checkpoints), figsize=(4.2 * len(checkpoints), 4), sharey=False)
    for ax, n in zip(np.atleast_1d(axes), checkpoints, strict=True):
        sends = np.bincount(arms[:n], minlength=n_arms)
        opens = np.bincount(arms[:n], weights=rewards[:n], minlength=n_arms)
        a = alpha_prior + opens
        b = beta_prior + sends - opens
        lo = float(np.min(stats.beta.ppf(1e-4, a, b)))
        hi = float(np.max(stats.beta.isf(1e-4, a, b)))
        x = np.linspace(lo, hi, 600)
        for k, headline in enumerate(headlines):
            ax.plot(x, stats.beta.pdf(x, a[k], b[k]), label=f"{headline} ({sends[k]:,})")
        ax.set_title(f"after {n:,} sends")
        ax.set_xlabel("open rate")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small", title="headline (sends)", title_fontsize="x-small")
    np.atleast_1d(axes)[0].set_ylabel("posterior density")
    fig.suptitle("Beta posteriors under Thompson Sampling")
    return _save(fig, path)


def plot_regret(summary: pd.DataFrame, path: Path) -> Path:
    """Mean cumulative regret per policy with its 95% band, from ``MonteCarloResult.summary()``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, rows in summary.groupby("policy", sort=False):
        x = rows["n_sends"].to_numpy()
        ax.plot(x, rows["mean_regret"].to_numpy(), label=str(label))
        ax.fill_between(x, rows["regret_low"].to_numpy(), rows["regret_high"].to_numpy(), alpha=0.2)
    ax.set_xlabel("sends")
    ax.set_ylabel("cumulative regret (expected opens lost)")
    ax.set_title("Mean regret with 95% band")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _panel_checkpoints(iterations: Sequence[int]) -> list[int]:
    if len(iterations) <= _MAX_PANELS:
        return list(iterations)
    return [*iterations[: _MAX_PANELS - 1], iterations[-1]]


def write_study_plots(result: StudyResult, out: Path) -> list[Path]:
    """Write every plot of a study into ``out`` and return the paths.

    ``cumulative_opens.png`` and, for the Thompson Sampling trace (or the
    first policy's when Thompson Sampling was not run), ``send_share.png`` and
    ``posteriors.png``; ``regret.png`` when the study has Monte Carlo results.
    """
    headlines = result.scenario.headline_texts
    priors = result.scenario.priors
    paths = [
        plot_cumulative_opens(
            {label: trace.rewards for label, trace in result.traces.items()},
            out / "cumulative_opens.png",
        )
    ]
    label = "thompson" if "thompson" in result.traces else next(iter(result.traces))
    trace = result.traces[label]
    paths.append(
        plot_send_share(
            trace.arms,
            headlines,
            out / "send_share.png",
            title=f"Share of sends per headline ({label})",
        )
    )
    paths.append(
        plot_posteriors(
            trace.arms,
            trace.rewards,
            headlines,
            _panel_checkpoints(result.iterations),
            out / "posteriors.png",
            alpha_prior=priors.alpha_prior,
            beta_prior=priors.beta_prior,
        )
    )
    if result.monte_carlo is not None:
        paths.append(plot_regret(result.monte_carlo.summary(), out / "regret.png"))
    return paths


# --- campaigns ------------------------------------------------------------------------
# Headline texts are shortened to this many characters in legends.
_LEGEND_WIDTH = 40
# Median trajectory with this band (percentiles across replications).
_BAND = (10.0, 50.0, 90.0)
# P(best) a finding is stated at when the campaign has no P(best) stopping threshold.
_DEFAULT_P_BEST = 0.95
# A decision-time histogram has at most this many bars.
_MAX_BARS = 60


def _colour(k: int) -> Any:
    return _pyplot().get_cmap("tab10")(k % 10)


def _headline_labels(study: CampaignStudy) -> list[str]:
    """Legend labels: each headline, shortened, with its true open rate."""
    from headliner.report.tables import shorten

    rates = study.result.campaign.true_rates
    return [
        f"{shorten(text, _LEGEND_WIDTH)} ({100.0 * rate:g}%)"
        for text, rate in zip(study.headlines, rates, strict=True)
    ]


def _short(study: CampaignStudy, k: int) -> str:
    from headliner.report.tables import shorten

    return shorten(study.headlines[k], _LEGEND_WIDTH)


def _style(ax: Any, *, percent_y: bool) -> None:
    """Thousands separators on x, percent (or thousands) on y, a light grid."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    ax.xaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _hours(value)))
    if percent_y:
        # Ticks at whole percents (steps of 1, 2, 5 or 10 points), so none is rounded.
        ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _titles(fig: Any, ax: Any, finding: str, detail: str) -> None:
    """The finding as the figure's title, what is drawn as a grey line under it."""
    ax.set_title(f"{finding}\n", loc="left", fontsize=13, fontweight="bold")
    ax.text(0.0, 1.02, detail, transform=ax.transAxes, fontsize="small", color="0.35", va="bottom")


def _legend_outside(ax: Any) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")


def _median_decision_hours(study: CampaignStudy) -> float | None:
    result = study.result
    hours = result.decision_hours[result.decided]
    return float(np.median(hours)) if hours.size else None


def _hours(value: float) -> str:
    """Hours with thousands separators, and a decimal only when there is one."""
    return f"{value:,.0f}" if math.isclose(value, round(value)) else f"{value:,.1f}"


def _note(ax: Any, text: str, xy: tuple[float, float], coords: Any, **where: Any) -> None:
    """A small grey label on a white background, so that it stays legible over bands."""
    ax.annotate(
        text,
        xy=xy,
        xycoords=coords,
        xytext=(4, -4),
        textcoords="offset points",
        va="top",
        fontsize="small",
        color="0.25",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        **where,
    )


def _mark_decision(ax: Any, study: CampaignStudy) -> None:
    """A dashed line at the median decision time, labelled halfway up."""
    decision = _median_decision_hours(study)
    if decision is None:
        return
    ax.axvline(decision, color="0.3", linestyle="--", linewidth=1)
    _note(
        ax, f"median decision: hour {_hours(decision)}", (decision, 0.5), ("data", "axes fraction")
    )


def _settled_hours(hours: FloatArray, *curves: FloatArray) -> float:
    """The first recorded hour after which none of ``curves`` (steps x arms) changes."""
    stacked = np.stack(curves)
    moving = np.any(np.abs(stacked - stacked[:, -1:, :]) > 1e-9, axis=(0, 2))
    changing = np.flatnonzero(moving)
    if changing.size == 0:
        return float(hours[0])
    return float(hours[min(int(changing[-1]) + 1, hours.size - 1)])


def _median_bands(study: CampaignStudy, values: NDArray[np.float64]) -> tuple[Any, Any, Any]:
    """A figure with each headline's median over campaign hours and its 10-90% band.

    ``values`` has shape (n_replications, n_recorded, n_arms); returns the
    figure, its axes and the (low, median, high) percentiles.
    """
    hours = study.result.recorded_hours
    bands = np.percentile(values, _BAND, axis=0)
    low, mid, high = bands
    fig, ax = _pyplot().subplots(figsize=(11, 5.5))
    for k, label in enumerate(_headline_labels(study)):
        ax.fill_between(hours, low[:, k], high[:, k], color=_colour(k), alpha=0.15, linewidth=0)
        ax.plot(hours, mid[:, k], color=_colour(k), linewidth=2, label=label)
    return fig, ax, bands


def plot_campaign_allocation(study: CampaignStudy, path: Path) -> Path:
    """Share of each wave's sends per headline over campaign hours.

    The median across replications with a 10-90% band per headline, and a
    dashed line at the median decision time.
    """
    result = study.result
    fig, ax, (low, mid, high) = _median_bands(study, result.allocation)
    hours = result.recorded_hours
    _mark_decision(ax, study)
    # After every replication's split has settled (all declared), the curves are flat
    # to the end: show the settling and say so rather than squeeze it to the left.
    step = result.campaign.interval_seconds / 3600.0
    right = float(hours[-1]) if hours[-1] > hours[0] else float(hours[0]) + step
    settled = _settled_hours(hours, low, mid, high)
    if settled * 1.25 + 2 * step < right:
        right = settled * 1.25 + 2 * step
        _note(
            ax,
            f"unchanged from here to the last send, hour {_hours(float(hours[-1]))}",
            (1.0, 0.12),
            "axes fraction",
            ha="right",
        )
    per_send = result.campaign.wave_size is None
    unit = "the sends" if per_send else "each wave"
    leader = int(np.argmax(mid[-1]))
    majority = np.flatnonzero(mid[:, leader] > 0.5)
    if majority.size:
        finding = (
            f'"{_short(study, leader)}" gets most of {unit} from hour '
            f"{_hours(hours[majority[0]])} ({mid[-1, leader]:.0%} at the end)"
        )
    else:
        finding = f'No headline gets most of the sends; "{_short(study, leader)}" ends with ' + (
            f"{mid[-1, leader]:.0%}"
        )
    what = "sends per refresh" if per_send else "each wave's sends"
    _titles(
        fig,
        ax,
        finding,
        f"Share of {what} per headline: median of {result.n_replications:,} "
        "simulated campaigns, band 10-90%",
    )
    return _finish_over_hours(fig, ax, path, (hours[0], right), 1.0, "share of sends")


def plot_campaign_p_best(study: CampaignStudy, path: Path) -> Path:
    """P(best) of each headline over campaign hours: median with a 10-90% band."""
    result = study.result
    fig, ax, (low, mid, high) = _median_bands(study, result.p_best)
    hours = result.recorded_hours
    stopping = result.campaign.stopping
    threshold = _DEFAULT_P_BEST
    if stopping is not None and stopping.p_best_threshold is not None:
        threshold = stopping.p_best_threshold
        ax.axhline(threshold, color="0.3", linestyle=":", linewidth=1)
        _note(
            ax,
            f"P(best) criterion of the stopping rule, {100 * threshold:g}%",
            (1.0, threshold - 0.02),
            ("axes fraction", "data"),
            ha="right",
        )
    _mark_decision(ax, study)
    leader = int(np.argmax(mid[-1]))
    reached = np.flatnonzero(mid[:, leader] >= threshold)
    name = _short(study, leader)
    if reached.size:
        finding = (
            f'"{name}" is {100 * threshold:g}% likely the best by hour '
            f"{_hours(hours[reached[0]])} in the median campaign"
        )
    else:
        finding = (
            f'After {_hours(hours[-1])} hours, "{name}" is the best with probability '
            f"{mid[-1, leader]:.0%} in the median campaign"
        )
    _titles(
        fig,
        ax,
        finding,
        f"Probability of being the best headline, as the split sees it: median of "
        f"{result.n_replications:,} simulated campaigns, band 10-90%. The rule also declares "
        "on value remaining, often first.",
    )
    right = hours[-1] if hours[-1] > hours[0] else hours[0] + 1.0
    return _finish_over_hours(
        fig, ax, path, (hours[0], right), 1.02, "probability of being the best"
    )


def _finish_over_hours(
    fig: Any, ax: Any, path: Path, x_range: tuple[float, float], top: float, ylabel: str
) -> Path:
    """Axes of a share plotted over campaign hours: limits, labels, style, legend; save."""
    ax.set_ylim(0.0, top)
    ax.set_xlim(*x_range)
    ax.set_xlabel("hours since the first send")
    ax.set_ylabel(ylabel)
    _style(ax, percent_y=True)
    _legend_outside(ax)
    return _save(fig, path)


def plot_campaign_decision_time(study: CampaignStudy, path: Path) -> Path:
    """Histogram of the hours to a decision, with the share that never declared."""
    result = study.result
    plt = _pyplot()
    n = result.n_replications
    hours = result.decision_hours[result.decided]
    never = 1.0 - hours.size / n
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if hours.size:
        # Decisions happen only at the stopping rule's checks: one bar per check at least.
        stopping = result.campaign.stopping
        check = stopping.check_interval_seconds if stopping is not None else 0.0
        step = max(result.campaign.interval_seconds, check) / 3600.0
        span = float(hours.max() - hours.min())
        width = max(step, step * math.ceil(span / step / _MAX_BARS)) if span > 0 else step
        edges = np.arange(hours.min() - width / 2.0, hours.max() + width, width)
        ax.hist(
            hours,
            bins=edges,
            weights=np.full(hours.size, 1.0 / n),
            color=_colour(0),
            edgecolor="white",
        )
        median = float(np.median(hours))
        ax.axvline(median, color="0.3", linestyle="--", linewidth=1)
        _note(ax, f"median: hour {_hours(median)}", (median, 1.0), ("data", "axes fraction"))
    all_hours = np.where(result.decided, result.decision_hours, np.inf)
    half = float(np.quantile(all_hours, 0.5, method="inverted_cdf"))
    if math.isfinite(half):
        finding = f"Half of the campaigns declare a winner within {_hours(half)} hours"
    elif hours.size:
        finding = f"{never:.0%} of the campaigns never declare a winner"
    else:
        finding = "No campaign declared a winner by the last send"
    _titles(
        fig,
        ax,
        finding,
        f"Hours from the first send to the declaration, {n:,} simulated campaigns",
    )
    ax.text(
        0.98,
        0.95,
        f"{never:.0%} never declared a winner",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize="medium",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"},
    )
    ax.set_xlabel("hours to a decision")
    ax.set_ylabel("share of campaigns")
    _style(ax, percent_y=True)
    return _save(fig, path)


def write_campaign_plots(study: CampaignStudy, out: Path) -> list[Path]:
    """Write the campaign's plots into ``out`` and return the paths.

    ``campaign_allocation.png`` (share of each wave per headline),
    ``campaign_p_best.png`` (P(best) per headline) and
    ``campaign_decision_time.png`` (hours to a decision).
    """
    return [
        plot_campaign_allocation(study, out / "campaign_allocation.png"),
        plot_campaign_p_best(study, out / "campaign_p_best.png"),
        plot_campaign_decision_time(study, out / "campaign_decision_time.png"),
    ]


# --- plans ----------------------------------------------------------------------------
def plot_plan_list_size(plan: CampaignPlan, path: Path) -> Path:
    """P(correct pick) against list size: the list-size search's candidates and the plan.

    Each list keeps the plan's waves and interval (each wave scaled). Two
    curves, P(declared the best headline) and P(declared one within 1% of
    the best), with 95% intervals, and the target line.
    """
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    from headliner.sim.plan import TARGET

    search = plan.search("list_size")
    candidates = list(search.candidates) if search is not None else []
    if not candidates:
        candidates = [plan.own_candidate("list_size")]
    sizes = np.array([c.campaign.n_sends for c in candidates], dtype=np.float64)
    fig, ax = _pyplot().subplots(figsize=(10, 5.5))
    for k, (label, value, interval) in enumerate(
        (
            ("declared the best headline", "p_best", "p_best_ci95"),
            ("declared one within 1% of the best", "p_within_1pct", "p_within_1pct_ci95"),
        )
    ):
        y = np.array([getattr(c, value) for c in candidates])
        bounds = np.array([getattr(c, interval) for c in candidates])
        errors = np.clip(np.vstack([y - bounds[:, 0], bounds[:, 1] - y]), 0.0, None)
        ax.errorbar(
            sizes, y, yerr=errors, marker="o", capsize=3, color=_colour(k), linewidth=2, label=label
        )
    ax.axhline(TARGET, color="0.3", linestyle=":", linewidth=1)
    _note(ax, f"target, {TARGET:.0%}", (0.0, TARGET - 0.02), ("axes fraction", "data"))
    own = plan.campaign.n_sends
    ax.axvline(own, color="0.3", linestyle="--", linewidth=1)
    _note(ax, f"the plan: {own:,}", (own, 0.35), ("data", "axes fraction"))
    chosen = search.recommended if search is not None else None
    if chosen is not None:
        finding = (
            f"A list of {chosen.campaign.n_sends:,} is enough to pick a headline within 1% "
            f"of the best in {TARGET:.0%} of campaigns"
        )
    else:
        finding = (
            f"No list tried, up to {int(sizes.max()):,}, picks that well {TARGET:.0%} of the time"
        )
    replications = min(c.replications for c in candidates)
    _titles(
        fig,
        ax,
        finding,
        f"Share of simulated campaigns ({replications:,} or more per list) whose declared "
        "headline is right, with 95% intervals; same waves and interval, each wave scaled",
    )
    ax.set_xscale("log")
    ax.set_xlabel("list size (sends over the campaign)")
    ax.set_ylabel("share of campaigns")
    ax.set_ylim(0.0, 1.02)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    return _save(fig, path)


def write_plan_plots(plan: CampaignPlan, out: Path) -> list[Path]:
    """Write a plan's plots into ``out`` and return the paths.

    ``plan_decision_time.png`` (hours to a decision over the simulated
    campaigns), ``plan_allocation.png`` (median share of each wave per
    headline over campaign hours, with its 10-90% band) and
    ``plan_list_size.png`` (P(correct pick) against list size).
    """
    from headliner.sim.study import CampaignStudy

    study = CampaignStudy(plan.spec.to_scenario(), plan.result)
    return [
        plot_campaign_decision_time(study, out / "plan_decision_time.png"),
        plot_campaign_allocation(study, out / "plan_allocation.png"),
        plot_plan_list_size(plan, out / "plan_list_size.png"),
    ]
