"""PNG plots of simulations; matplotlib is imported only when a plot is drawn.

Every figure states its finding in its title, computed from the data, with a
grey line under it saying what is drawn. The study plots are built by
``*_figure`` functions that return the matplotlib Figure (so tests can read
back what is drawn) and written by :func:`write_study_plots`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from headliner.core.policies import THOMPSON, UNIFORM, ABTestThenCommit, Policy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from headliner.sim.plan import CampaignPlan
    from headliner.sim.study import CampaignStudy, StudyResult, Trace

# Posterior panels drawn at most.
_MAX_PANELS = 4
# A curve over a million sends is drawn from this many points at most.
_MAX_POINTS = 2_000
FloatArray = NDArray[np.float64]
_P = ParamSpec("_P")


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


# --- studies --------------------------------------------------------------------------
# Plain names of the policies, by registry name: the one place the plots name them.
POLICY_NAMES: Mapping[str, str] = {
    "uniform": "Even split",
    "ab_test": "A/B test then winner",
    "thompson": "Thompson Sampling",
    "top_two": "Top-two Thompson Sampling",
    "epsilon_greedy": "Epsilon-greedy",
    "ucb1": "UCB1",
}
# How a setting reads when two policies of one name need telling apart.
_SETTING_TEXT: Mapping[str, str] = {
    "n_test_sends": "{:,} test sends",
    "epsilon": "explores {:.0%}",
    "leader_probability": "leader {:.0%}",
}
# Colour, dash and width of each policy's curve. The even split is a wide light line
# drawn under the others, so that a curve equal to it (an A/B test's test phase is the
# even split itself) still shows on top of it.
_POLICY_STYLES: Mapping[str, Mapping[str, Any]] = {
    "uniform": {"color": "0.65", "linestyle": "-", "linewidth": 5.0, "zorder": 2},
    "thompson": {"color": "tab:blue", "linestyle": "-", "linewidth": 2.2, "zorder": 4},
    "ab_test": {"color": "tab:orange", "linestyle": (0, (6, 2)), "linewidth": 2.2, "zorder": 3},
    "top_two": {"color": "tab:green", "linestyle": (0, (6, 2, 1, 2)), "linewidth": 2.2},
    "epsilon_greedy": {"color": "tab:purple", "linestyle": (0, (1, 1.5)), "linewidth": 2.2},
    "ucb1": {"color": "tab:brown", "linestyle": (0, (3, 1, 1, 1, 1, 1)), "linewidth": 2.2},
}
# Dashes of the headlines' curves where they can coincide (P(best) near 0 or 1).
_HEADLINE_DASHES = ("-", (0, (5, 2)), (0, (1, 1.5)), (0, (5, 2, 1, 2)), (0, (3, 1, 1, 1, 1, 1)))
# Horizons spanning this factor or more are drawn on a log scale of sends.
_LOG_SPAN = 100
# Slices of sends in which the current share of sends is counted, of this many sends
# at least.
_SHARE_SLICES = 40
_MIN_SLICE = 25
# A posterior peak this many times taller than the next is cut off at the top.
_PEAK_RATIO = 4.0
# Text sizes: the helpers' "small" is 10.4 pt at a 12.5 pt base.
_STUDY_RC = {"font.size": 12.5}
_TICK_PT = 11.0


def _readable(build: Callable[_P, Figure]) -> Callable[_P, Figure]:
    """Build the figure at a 12.5 pt base font, with 11 pt ticks, so no text is under 10 pt."""

    @functools.wraps(build)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Figure:
        with _pyplot().rc_context(_STUDY_RC):
            fig = build(*args, **kwargs)
        for ax in fig.axes:
            # A number, not "medium": tick labels are made when drawn, outside this context.
            ax.tick_params(labelsize=_TICK_PT)
        return fig

    return wrapper


def _figure(width: float) -> tuple[Figure, Any]:
    """A figure of one axes, ``width`` inches wide and 5.6 high."""
    fig, ax = _pyplot().subplots(figsize=(width, 5.6))
    return fig, ax


def plain_policy_labels(policies: Sequence[Policy]) -> list[str]:
    """The policies' plain names, with their settings where two share a name.

    Examples
    --------
    >>> from headliner.core.policies import ABTestThenCommit, ThompsonSampling
    >>> plain_policy_labels([ThompsonSampling(), ABTestThenCommit(500), ABTestThenCommit(900)])[1:]
    ['A/B test then winner (500 test sends)', 'A/B test then winner (900 test sends)']
    """
    names = [POLICY_NAMES.get(policy.name, policy.name) for policy in policies]
    labels = []
    for policy, name in zip(policies, names, strict=True):
        if names.count(name) > 1:
            settings = ", ".join(
                _SETTING_TEXT.get(key, key.replace("_", " ") + " {}").format(value)
                for key, value in vars(policy).items()
            )
            name = f"{name} ({settings})"
        labels.append(name)
    return labels


def _policy_style(policies: Sequence[Policy], index: int) -> dict[str, Any]:
    """Line style of ``policies[index]``; a repeated policy gets another colour."""
    policy = policies[index]
    style = dict(_POLICY_STYLES.get(policy.name, {"linewidth": 2.2}))
    repeat = sum(p.name == policy.name for p in policies[:index])
    if repeat or "color" not in style:
        style["color"] = _colour(5 + index)
    return style


def _rate_labels(headlines: Sequence[str], rates: Sequence[float] | FloatArray) -> list[str]:
    """Legend labels: each headline, shortened, with its true open rate."""
    from headliner.report.tables import shorten

    return [
        f"{shorten(text, _LEGEND_WIDTH)} ({100.0 * rate:g}%)"
        for text, rate in zip(headlines, rates, strict=True)
    ]


def _quoted(headline: str) -> str:
    from headliner.report.tables import shorten

    return f'"{shorten(headline, _LEGEND_WIDTH)}"'


def _sends_range(result: StudyResult) -> tuple[int, int]:
    """First and last send drawn: from the first horizon when the horizons span 100x."""
    first, last = result.iterations[0], result.iterations[-1]
    return (first if first * _LOG_SPAN <= last else 1), last


def _log_sends(start: int, end: int) -> bool:
    return end >= _LOG_SPAN * start


def _sends_axis(ax: Any, start: int, end: int) -> None:
    """Sends on x with thousands separators, on a log scale when they span 100x."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if _log_sends(start, end):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10.0))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(start, end)
        ax.set_xlabel("sends so far (log scale)")
    else:
        ax.set_xlim(0, end)
        ax.set_xlabel("sends so far")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))


def _mark_ab_tests(
    ax: Any, policies: Sequence[Policy], labels: Sequence[str], start: int, end: int
) -> None:
    """A dotted line where each A/B test's test phase ends and its winner takes the sends.

    An A/B test still testing at the last send is said so under the legend.
    """
    marked = 0
    testing = [
        f"{label}:\nstill testing at the last send\n(its test: {policy.n_test_sends:,} sends)"
        for policy, label in zip(policies, labels, strict=True)
        if isinstance(policy, ABTestThenCommit) and policy.n_test_sends >= end
    ]
    if testing:
        ax.text(
            1.02,
            0.5,
            "\n".join(testing),
            transform=ax.transAxes,
            va="top",
            fontsize="small",
            color="0.25",
        )
    for index, (policy, label) in enumerate(zip(policies, labels, strict=True)):
        if not isinstance(policy, ABTestThenCommit) or not start < policy.n_test_sends < end:
            continue
        n = policy.n_test_sends
        colour = _policy_style(policies, index)["color"]
        ax.axvline(n, color=colour, linestyle=":", linewidth=1.5, gid="ab_test_end")
        # Left of the line, where the curves are still low (the test phase), unless
        # the line is too far left for the text.
        if _log_sends(start, end):
            where = math.log(n / start) / math.log(end / start)
        else:
            where = n / end
        left = where > 0.4
        ax.annotate(
            f"{label}:\nthe test ends at {n:,} sends,\nthe winner gets the rest",
            xy=(n, 0.97 - 0.2 * marked),
            xycoords=("data", "axes fraction"),
            xytext=(-6 if left else 6, 0),
            textcoords="offset points",
            ha="right" if left else "left",
            va="top",
            fontsize="small",
            color="0.25",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
        )
        marked += 1


def _featured_trace(result: StudyResult) -> tuple[str, Trace]:
    """Thompson Sampling's trace, or the first policy's when it was not run; its plain name."""
    traces = list(result.traces.values())
    index = next((i for i, t in enumerate(traces) if t.policy.code == THOMPSON), 0)
    return plain_policy_labels([t.policy for t in traces])[index], traces[index]


def _counts_at(
    trace: Trace, n_arms: int, points: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sends and opens of each headline in the first ``points`` sends, shape (len, n_arms)."""
    sends = np.empty((points.size, n_arms), dtype=np.int64)
    opens = np.empty((points.size, n_arms), dtype=np.int64)
    opened = trace.rewards == 1
    for k in range(n_arms):
        sent = trace.arms == k
        sends[:, k] = np.cumsum(sent, dtype=np.int64)[points - 1]
        opens[:, k] = np.cumsum(sent & opened, dtype=np.int64)[points - 1]
    return sends, opens


@_readable
def extra_opens_figure(result: StudyResult) -> Figure:
    """Opens of each policy minus the even split's, over sends (the seeded traces).

    The even split is the ``uniform`` trace, or an even split's expected opens
    when it was not run. Dotted lines mark where A/B tests end.
    """
    start, end = _sends_range(result)
    traces = list(result.traces.values())
    policies = [trace.policy for trace in traces]
    labels = plain_policy_labels(policies)
    x = sample_points(end)
    x = x[x >= start]
    even_trace = next((t for t in traces if t.policy.code == UNIFORM), None)
    mean_rate = float(np.mean(result.scenario.true_probabilities))

    def even_opens(points: NDArray[np.int64]) -> FloatArray:
        if even_trace is None:
            return (points * mean_rate).astype(np.float64)
        return np.cumsum(even_trace.rewards, dtype=np.int64)[points - 1].astype(np.float64)

    baseline = even_opens(x)
    fig, ax = _figure(10)
    if even_trace is None:
        ax.axhline(0.0, **{**_POLICY_STYLES["uniform"], "label": "Even split (expected)"})
    even_at_end = float(even_opens(np.array([end]))[0])
    gains = []
    for index, (trace, label) in enumerate(zip(traces, labels, strict=True)):
        opens = np.cumsum(trace.rewards, dtype=np.int64)[x - 1]
        ax.plot(x, opens - baseline, label=label, **_policy_style(policies, index))
        if trace.policy.code != UNIFORM:
            gains.append((trace.opens_at(end) - even_at_end, label))
    _mark_ab_tests(ax, policies, labels, start, end)
    over = "an even split" if even_trace is not None else "an even split's expected opens"
    if even_trace is not None:
        minus = "the even split's, as the sends go out (one seeded run each, as in the table)"
    else:
        minus = "an even split's expected opens, as the sends go out (one seeded run each)"
    gain, leader = max(gains) if gains else (0.0, "")
    if gains:
        # The leader's gain at each horizon, so that the early gap reads as a number too.
        index = labels.index(leader)
        horizons = np.array([n for n in result.iterations if n >= start], dtype=np.int64)
        ahead = traces[index].rewards
        values = np.cumsum(ahead, dtype=np.int64)[horizons - 1] - even_opens(horizons)
        style = _policy_style(policies, index)
        ax.plot(
            horizons, values, "o", color=style["color"], zorder=5, clip_on=False, gid="horizon_gain"
        )
        for n, value in zip(horizons, values, strict=True):
            last = n == horizons[-1]
            ax.annotate(
                f"{value:+,.0f}",
                (n, value),
                xytext=(-8, 0) if last else (0, 8),
                textcoords="offset points",
                ha="right" if last else "center",
                va="center" if last else "bottom",
                fontsize="small",
                color=style["color"],
                fontweight="bold",
            )
    if gain > 0:
        finding = f"{leader}: {gain:+,.0f} opens over {over} at {end:,} sends"
    else:
        finding = f"No policy gets more opens than {over} by {end:,} sends"
    _titles(
        fig,
        ax,
        finding,
        f"Cumulative opens of each policy minus {minus}",
    )
    ax.set_ylabel("extra opens over an even split")
    _style(ax, percent_y=False)
    _sends_axis(ax, start, end)
    _legend_outside(ax)
    return fig


@_readable
def p_best_figure(result: StudyResult) -> Figure:
    """P(best) of each headline over sends, from the featured trace's Beta posterior."""
    scenario = result.scenario
    headlines, rates = scenario.headline_texts, scenario.true_probabilities
    policy, trace = _featured_trace(result)
    start, end = _sends_range(result)
    x = sample_points(end)
    x = x[x >= start]
    priors = scenario.priors
    p_best = probabilities_of_best(trace, len(headlines), x, priors.alpha_prior, priors.beta_prior)
    leader = int(np.argmax(p_best[-1]))
    # The final leader solid and on top; the others dashed, so that the ones that
    # sit together near 0 all show.
    dashes = iter(_HEADLINE_DASHES[1:] * len(headlines))
    fig, ax = _figure(11)
    for k, label in enumerate(_rate_labels(headlines, rates)):
        ax.plot(
            x,
            p_best[:, k],
            color=_colour(k),
            linestyle="-" if k == leader else next(dashes),
            linewidth=2.4 if k == leader else 1.8,
            zorder=3 if k == leader else 2,
            label=label,
        )
    threshold = _DEFAULT_P_BEST
    ax.axhline(threshold, color="0.3", linestyle=":", linewidth=1)
    _note(ax, f"{threshold:.0%}", (0.0, threshold - 0.02), ("axes fraction", "data"))
    below = np.flatnonzero(p_best[:, leader] < threshold)
    name = _quoted(headlines[leader])
    if below.size == 0 or below[-1] < x.size - 1:
        first = x[0] if below.size == 0 else x[below[-1] + 1]
        finding = f"{name} is {threshold:.0%} likely the best from send {first:,} on"
    else:
        finding = (
            f"After {end:,} sends, {name} is the best with probability {p_best[-1, leader]:.0%}"
        )
    _titles(
        fig,
        ax,
        finding,
        f"Probability that each headline is the best, from {policy}'s posterior after each "
        "send (one seeded run)",
    )
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("probability of being the best")
    _style(ax, percent_y=True)
    _sends_axis(ax, start, end)
    _legend_outside(ax)
    return fig


def probabilities_of_best(
    trace: Trace,
    n_arms: int,
    points: NDArray[np.int64],
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
) -> FloatArray:
    """P(best) of each headline after each of ``points`` sends of ``trace``, shape (len, n_arms).

    From the Beta posterior of the counts so far and the scenario's prior,
    by :func:`headliner.core.posterior.best_probabilities` (its compiled
    twin); each row sums to 1.
    """
    from headliner.sim.engine import kernels

    sends, opens = _counts_at(trace, n_arms, points)
    alpha = alpha_prior + opens.astype(np.float64)
    beta = beta_prior + (sends - opens).astype(np.float64)
    out = np.empty((points.size, n_arms), dtype=np.float64)
    for i in range(points.size):
        kernels.best_probabilities(alpha[i], beta[i], out[i])
    return out


def share_slices(start: int, end: int) -> NDArray[np.int64]:
    """Edges of the slices of sends in which the current share is counted.

    Slice ``i`` holds the sends after ``edges[i]`` up to ``edges[i + 1]``;
    they widen evenly on a log scale (from ``start``), each of
    ``_MIN_SLICE`` sends at least, or are equal (from 0).
    """
    if not _log_sends(start, end):
        edges = np.linspace(0, end, min(_SHARE_SLICES, end) + 1)
        return np.unique(np.round(edges).astype(np.int64))
    kept = [start]
    for edge in np.round(np.geomspace(start, end, _SHARE_SLICES + 1)).astype(np.int64)[1:]:
        # A share of a handful of sends is all or nothing: merge the narrowest slices.
        if edge - kept[-1] >= _MIN_SLICE:
            kept.append(int(edge))
    if kept[-1] != end:
        # The short tail joins the last slice (or is the only one).
        if len(kept) > 1:
            kept[-1] = end
        else:
            kept.append(end)
    return np.array(kept, dtype=np.int64)


def current_shares(trace: Trace, n_arms: int, edges: NDArray[np.int64]) -> FloatArray:
    """Share of each slice's sends that went to each headline, shape (len(edges) - 1, n_arms)."""
    counts = np.empty((edges.size, n_arms), dtype=np.float64)
    for k in range(n_arms):
        counts[:, k] = np.concatenate(([0], np.cumsum(trace.arms == k, dtype=np.int64)))[edges]
    shares: FloatArray = np.diff(counts, axis=0) / np.diff(edges)[:, None]
    return shares


@_readable
def send_share_figure(result: StudyResult) -> Figure:
    """Current share of sends per headline: within slices of sends, stacked to 100%."""
    headlines = result.scenario.headline_texts
    labels = _rate_labels(headlines, result.scenario.true_probabilities)
    policy, trace = _featured_trace(result)
    start, end = _sends_range(result)
    edges = share_slices(start, end)
    shares = current_shares(trace, len(headlines), edges)
    leader = int(np.argmax(shares[-1]))
    # The final leader at the bottom of the stack: its top edge reads as its share.
    order = [leader, *(k for k in range(len(headlines)) if k != leader)]
    steps = np.vstack([shares, shares[-1:]])
    fig, ax = _figure(11)
    areas = ax.stackplot(
        edges,
        *(steps[:, k] for k in order),
        step="post",
        colors=[_colour(k) for k in order],
        labels=[labels[k] for k in order],
        edgecolor="white",
        linewidth=0.5,
    )
    majority = np.flatnonzero(shares[:, leader] <= 0.5)
    name = _quoted(headlines[leader])
    if majority.size == 0 or majority[-1] < shares.shape[0] - 1:
        first = int(edges[0] if majority.size == 0 else edges[majority[-1] + 1])
        finding = f"{name} gets most of the sends from send {first:,} on"
    else:
        finding = f"No headline gets most of the sends; {name} ends with {shares[-1, leader]:.0%}"
    slices = (
        "slices widen with the log scale"
        if _log_sends(start, end)
        else f"slices of {int(edges[1] - edges[0]):,} sends"
    )
    _titles(
        fig,
        ax,
        finding,
        f"{policy}: each headline's share of the sends in each slice of sends, not of all "
        f"sends so far ({slices})",
    )
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("share of the sends in the slice")
    _style(ax, percent_y=True)
    _sends_axis(ax, start, end)
    # Legend in headline order, whatever the stack's.
    handles = sorted(zip(order, areas, strict=True))
    ax.legend(
        [area for _, area in handles],
        [labels[k] for k, _ in handles],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize="small",
    )
    return fig


@_readable
def posteriors_figure(result: StudyResult) -> Figure:
    """Beta posterior of each headline at up to four horizons, true rates dashed.

    Exploration turning into exploitation: early densities overlap and are
    wide; later the leader's is narrow and the others' stop narrowing because
    they get few sends.
    """
    scenario = result.scenario
    headlines, rates = scenario.headline_texts, scenario.true_probabilities
    priors = scenario.priors
    policy, trace = _featured_trace(result)
    checkpoints = _panel_checkpoints(result.iterations)
    n_arms = len(headlines)
    rows = 1 if len(checkpoints) <= 2 else 2
    cols = math.ceil(len(checkpoints) / rows)
    fig: Figure = _pyplot().figure(figsize=(11, 1.4 + 3.2 * rows))
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[0.02] + [1.0] * rows)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    labels = _rate_labels(headlines, rates)
    for index, n in enumerate(checkpoints):
        ax = fig.add_subplot(grid[1 + index // cols, index % cols])
        a, b = _posterior_at(trace, n_arms, n, priors.alpha_prior, priors.beta_prior)
        _draw_posteriors(ax, a, b, rates, labels)
        ax.set_title(f"after {n:,} sends", loc="left", fontsize="medium")
        if index % cols == 0:
            ax.set_ylabel("belief (density)")
        if index // cols == rows - 1:
            ax.set_xlabel("open rate")
    n = checkpoints[-1]
    a, b = _posterior_at(trace, n_arms, n, priors.alpha_prior, priors.beta_prior)
    leader = int(np.argmax(a / (a + b)))
    low, high = stats.beta.ppf([0.025, 0.975], a[leader], b[leader])
    _titles(
        fig,
        head,
        f"After {n:,} sends, {_quoted(headlines[leader])} opens at {low:.1%}-{high:.1%} "
        f"(true: {100 * rates[leader]:g}%)",
        f"{policy}'s Beta posterior of each headline's open rate (the narrower, the surer; "
        "95% interval in the title); dashed lines: the true rates",
    )
    _legend_outside(fig.axes[cols])
    return fig


def _posterior_at(
    trace: Trace, n_arms: int, n_sends: int, alpha_prior: float, beta_prior: float
) -> tuple[FloatArray, FloatArray]:
    """Beta posterior parameters of each headline after the first ``n_sends`` sends."""
    sends = np.bincount(trace.arms[:n_sends], minlength=n_arms).astype(np.float64)
    opens = np.bincount(trace.arms[:n_sends], weights=trace.rewards[:n_sends], minlength=n_arms)
    return alpha_prior + opens.astype(np.float64), beta_prior + sends - opens.astype(np.float64)


def _draw_posteriors(
    ax: Any, a: FloatArray, b: FloatArray, rates: FloatArray, labels: Sequence[str]
) -> None:
    """One panel: each headline's density, its true rate dashed, the x axis in percent."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    low = float(min(np.min(stats.beta.ppf(1e-4, a, b)), np.min(rates)))
    high = float(max(np.max(stats.beta.isf(1e-4, a, b)), np.max(rates)))
    pad = 0.03 * (high - low)
    low, high = max(0.0, low - pad), min(1.0, high + pad)
    # Points dense where each density is, so that a narrow peak is drawn whole.
    x = np.unique(
        np.concatenate(
            [
                np.linspace(low, high, 600),
                *(
                    np.linspace(
                        stats.beta.ppf(1e-4, a[k], b[k]), stats.beta.isf(1e-4, a[k], b[k]), 200
                    )
                    for k in range(a.size)
                ),
            ]
        )
    )
    peaks = []
    for k, label in enumerate(labels):
        density = stats.beta.pdf(x, a[k], b[k])
        peaks.append(float(np.max(density)))
        ax.plot(x, density, color=_colour(k), linewidth=2, label=label)
        ax.fill_between(x, density, color=_colour(k), alpha=0.12, linewidth=0)
        ax.axvline(rates[k], color=_colour(k), linestyle="--", linewidth=1.2, gid="true_rate")
    ranked = sorted(peaks)
    if len(ranked) > 1 and ranked[-1] > _PEAK_RATIO * ranked[-2]:
        # One headline's posterior is far narrower than the rest: cut its peak off
        # rather than flatten every other curve.
        ax.set_ylim(0.0, 1.6 * ranked[-2])
        tallest = int(np.argmax(peaks))
        mode = (a[tallest] - 1) / (a[tallest] + b[tallest] - 2) if a[tallest] > 1 else 0.0
        _note(ax, "peak cut off", (mode, 1.0), ("data", "axes fraction"), ha="right")
    else:
        ax.set_ylim(0.0, 1.1 * ranked[-1])
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{100 * value:.4g}%"))
    ax.set_yticks([])
    ax.grid(True, axis="x", alpha=0.3)
    ax.spines[["top", "right", "left"]].set_visible(False)


@_readable
def regret_figure(result: StudyResult) -> Figure:
    """Mean cumulative regret of each policy with its 95% band, from the Monte Carlo study."""
    mc = result.monte_carlo
    if mc is None:
        raise ValueError("regret_figure needs a study with Monte Carlo results (replications > 1)")
    policies = list(mc.policies)
    labels = plain_policy_labels(policies)
    start, end = _sends_range(result)
    # Regret is recorded at the Monte Carlo checkpoints only: start at the first drawn.
    start = max(start, int(mc.checkpoints[0]))
    summary = mc.summary()
    fig, ax = _figure(10)
    final = []
    floor = math.inf
    for index, (key, label) in enumerate(zip(mc.labels, labels, strict=True)):
        rows = summary[(summary["policy"] == key) & (summary["n_sends"] >= start)]
        x = rows["n_sends"].to_numpy()
        style = _policy_style(policies, index)
        mean = rows["mean_regret"].to_numpy()
        # A log scale, so that a policy losing a hundredth of another's still shows;
        # a band's lower end below zero (few runs, few sends) is drawn at the mean's floor.
        floor = min(floor, float(np.min(mean[mean > 0], initial=np.inf)))
        ax.fill_between(
            x,
            np.maximum(rows["regret_low"].to_numpy(), floor / 2),
            rows["regret_high"].to_numpy(),
            color=style["color"],
            alpha=0.2,
            linewidth=0,
        )
        ax.plot(x, mean, label=label, **style)
        final.append((float(mean[-1]), label, policies[index]))
    _mark_ab_tests(ax, policies, labels, start, end)
    lost, best, best_policy = min(final, key=lambda item: item[0])
    finding = f"{best} loses the fewest opens: {lost:,.0f} by {end:,} sends"
    even = [item for item in final if item[2].code == UNIFORM]
    if even and best_policy.code != UNIFORM:
        finding = (
            f"{best} loses {lost:,.0f} opens by {end:,} sends; an even split, {even[0][0]:,.0f}"
        )
    _titles(
        fig,
        ax,
        finding,
        "Expected opens lost against always sending the best headline: mean of "
        f"{mc.n_replications:,} simulated runs per policy, band 95%",
    )
    ax.set_ylabel("opens lost (log scale)")
    _style(ax, percent_y=False)
    _sends_axis(ax, start, end)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    if math.isfinite(floor):
        ax.set_ylim(bottom=10 ** math.floor(math.log10(floor)))
    ax.yaxis.set_major_locator(LogLocator(base=10.0))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    _legend_outside(ax)
    return fig


def _panel_checkpoints(iterations: Sequence[int]) -> list[int]:
    if len(iterations) <= _MAX_PANELS:
        return list(iterations)
    return [*iterations[: _MAX_PANELS - 1], iterations[-1]]


def write_study_plots(result: StudyResult, out: Path) -> list[Path]:
    """Write every plot of a study into ``out`` and return the paths.

    ``extra_opens.png`` (opens of each policy minus the even split's, over
    sends) and, for the Thompson Sampling trace (or the first policy's when
    Thompson Sampling was not run), ``p_best.png`` (P(best) per headline),
    ``send_share.png`` (the current share of sends per headline) and
    ``posteriors.png`` (Beta posteriors with the true rates);
    ``regret.png`` (mean regret with its 95% band) when the study has Monte
    Carlo results.
    """
    figures: list[tuple[Callable[[StudyResult], Figure], str]] = [
        (extra_opens_figure, "extra_opens.png"),
        (p_best_figure, "p_best.png"),
        (send_share_figure, "send_share.png"),
        (posteriors_figure, "posteriors.png"),
    ]
    if result.monte_carlo is not None:
        figures.append((regret_figure, "regret.png"))
    return [_save(build(result), out / name) for build, name in figures]


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
    return _rate_labels(study.headlines, study.result.campaign.true_rates)


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
    # The two curves coincide when every pick within 1% is the best itself: "within 1%"
    # is drawn wide with large circles, "the best" on top of it thin, dashed, with small
    # diamonds, so that both show.
    for k, (label, value, interval, look) in enumerate(
        (
            (
                "declared the best headline",
                "p_best",
                "p_best_ci95",
                {"marker": "D", "markersize": 5, "linestyle": "--", "linewidth": 1.8, "zorder": 4},
            ),
            (
                "declared one within 1% of the best",
                "p_within_1pct",
                "p_within_1pct_ci95",
                {"marker": "o", "markersize": 10, "linestyle": "-", "linewidth": 4, "zorder": 3},
            ),
        )
    ):
        y = np.array([getattr(c, value) for c in candidates])
        bounds = np.array([getattr(c, interval) for c in candidates])
        errors = np.clip(np.vstack([y - bounds[:, 0], bounds[:, 1] - y]), 0.0, None)
        ax.errorbar(
            sizes,
            y,
            yerr=errors,
            capsize=3 + 2 * k,
            elinewidth=1.5,
            color=_colour(k),
            label=label,
            **look,
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
