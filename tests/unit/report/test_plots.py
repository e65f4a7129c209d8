"""Plots: what the study figures draw and say, read back from the matplotlib objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from headliner.core.policies import (
    UCB1,
    ABTestThenCommit,
    EpsilonGreedy,
    ThompsonSampling,
    TopTwoThompson,
    UniformRandom,
)
from headliner.report import plots
from headliner.report.plots import (
    current_shares,
    extra_opens_figure,
    p_best_figure,
    plain_policy_labels,
    posteriors_figure,
    probabilities_of_best,
    regret_figure,
    sample_points,
    send_share_figure,
    share_slices,
    write_study_plots,
)
from headliner.sim.plan import parse_plan, plan_campaign
from headliner.sim.scenarios import reference_scenario
from headliner.sim.study import StudyResult, run_study

HORIZONS = [100, 1_000, 20_000]
TEST_SENDS = 3_000
PLAIN = ["Thompson Sampling", "Even split", "A/B test then winner"]


@pytest.fixture(scope="module")
def study() -> StudyResult:
    # The reference headlines over 20,000 sends: long enough for Thompson Sampling to
    # settle, and an A/B test that ends inside the drawn range (100 to 20,000 sends).
    policies = [ThompsonSampling(), UniformRandom(), ABTestThenCommit(n_test_sends=TEST_SENDS)]
    return run_study(
        reference_scenario(),
        iterations=HORIZONS,
        policies=policies,
        replications=8,
        monte_carlo_seed=5,
    )


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    """Figures a test builds, closed after it."""
    made: list[Figure] = []
    yield made
    for fig in made:
        plt.close(fig)


def _keep(figures: list[Figure], fig: Figure) -> Figure:
    figures.append(fig)
    return fig


def _title(fig: Figure) -> str:
    return next(ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")).strip()


def _labelled_lines(ax: Any) -> dict[str, Any]:
    return {
        line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")
    }


@pytest.mark.parametrize("n_sends", [1, 10, 2_000, 2_001, 1_000_000], ids=str)
def test_sample_points_are_increasing_sends_ending_at_the_horizon(n_sends: int) -> None:
    points = sample_points(n_sends)
    assert points[0] == 1 and points[-1] == n_sends
    assert np.all(np.diff(points) > 0)
    assert len(points) <= 2_000


def test_policies_have_plain_names_with_settings_only_where_names_repeat() -> None:
    policies = [
        UniformRandom(),
        ThompsonSampling(),
        TopTwoThompson(),
        EpsilonGreedy(epsilon=0.1),
        UCB1(),
        ABTestThenCommit(n_test_sends=1_000),
        ABTestThenCommit(n_test_sends=25_000),
    ]
    assert plain_policy_labels(policies) == [
        "Even split",
        "Thompson Sampling",
        "Top-two Thompson Sampling",
        "Epsilon-greedy",
        "UCB1",
        "A/B test then winner (1,000 test sends)",
        "A/B test then winner (25,000 test sends)",
    ]


def test_extra_opens_title_states_the_gain_counted_from_the_traces(
    study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, extra_opens_figure(study))
    end = HORIZONS[-1]
    even = int(study.traces["uniform"].rewards[:end].sum())
    gains = {
        label: int(study.traces[key].rewards[:end].sum()) - even
        for key, label in (("thompson", PLAIN[0]), ("ab_test", PLAIN[2]))
    }
    leader = max(gains, key=lambda label: gains[label])
    assert gains[leader] > 0  # the reference's best headline is 4 points ahead
    assert _title(fig) == f"{leader}: {gains[leader]:+,} opens over an even split at 20,000 sends"
    ax = fig.axes[0]
    lines = _labelled_lines(ax)
    assert list(lines) == PLAIN
    # Each curve is that policy's opens minus the even split's, at every drawn send.
    x = lines[PLAIN[0]].get_xdata()
    assert x[0] == HORIZONS[0] and x[-1] == end
    expected = (
        np.cumsum(study.traces["thompson"].rewards)[x - 1]
        - np.cumsum(study.traces["uniform"].rewards)[x - 1]
    )
    np.testing.assert_array_equal(lines[PLAIN[0]].get_ydata(), expected)
    assert not np.any(lines["Even split"].get_ydata())


def test_a_curve_equal_to_the_even_split_still_shows(
    study: StudyResult, figures: list[Figure]
) -> None:
    lines = _labelled_lines(_keep(figures, extra_opens_figure(study)).axes[0])
    even, ab = lines["Even split"], lines["A/B test then winner"]
    # During its test phase the A/B test is the even split: the same zero line.
    testing = ab.get_xdata() <= TEST_SENDS
    assert testing.sum() > 100 and not np.any(ab.get_ydata()[testing])
    # So it is drawn dashed over a wider solid even split.
    assert ab.get_linestyle() != "-" and even.get_linestyle() == "-"
    assert even.get_linewidth() > ab.get_linewidth() and even.get_zorder() < ab.get_zorder()


@pytest.mark.parametrize("build", [extra_opens_figure, regret_figure], ids=["opens", "regret"])
def test_the_end_of_the_ab_test_is_marked_where_it_ends(
    build: Any, study: StudyResult, figures: list[Figure]
) -> None:
    ax = _keep(figures, build(study)).axes[0]
    (line,) = [line for line in ax.get_lines() if line.get_gid() == "ab_test_end"]
    assert list(line.get_xdata()) == [TEST_SENDS, TEST_SENDS]
    assert any(f"test ends at {TEST_SENDS:,} sends" in text.get_text() for text in ax.texts)


def test_p_best_curves_are_probabilities_summing_to_one(
    study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, p_best_figure(study))
    lines = _labelled_lines(fig.axes[0])
    scenario = study.scenario
    assert list(lines) == [
        f"{text} ({100 * rate:g}%)"
        for text, rate in zip(scenario.headline_texts, scenario.true_probabilities, strict=True)
    ]
    p_best = np.array([line.get_ydata() for line in lines.values()])
    assert np.all((p_best >= 0.0) & (p_best <= 1.0))
    np.testing.assert_allclose(p_best.sum(axis=0), 1.0, atol=1e-9)
    # "Ending Tonight" (24%) is the best and is far ahead after 20,000 sends.
    assert _title(fig).startswith('"Ending Tonight: Final Chance to Save" is 95% likely the best')


def test_p_best_agrees_with_posterior_draws(study: StudyResult) -> None:
    trace = study.traces["thompson"]
    n = 1_000
    (p_best,) = probabilities_of_best(trace, 5, np.array([n]))
    sends = np.bincount(trace.arms[:n], minlength=5)
    opens = np.bincount(trace.arms[:n], weights=trace.rewards[:n], minlength=5)
    draws = np.random.default_rng(0).beta(1 + opens, 1 + sends - opens, size=(200_000, 5))
    share = np.bincount(draws.argmax(axis=1), minlength=5) / len(draws)
    # 200,000 draws: a share's standard error is at most 0.0011; 5 of them is 0.0056.
    np.testing.assert_allclose(p_best, share, atol=0.0056)


def test_current_shares_count_each_slice_and_sum_to_one(study: StudyResult) -> None:
    trace = study.traces["thompson"]
    edges = share_slices(100, 20_000)
    assert edges[0] == 100 and edges[-1] == 20_000 and np.all(np.diff(edges) > 0)
    shares = current_shares(trace, 5, edges)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    for i in (0, len(edges) // 2, len(edges) - 2):
        sent = trace.arms[edges[i] : edges[i + 1]]
        np.testing.assert_allclose(shares[i], np.bincount(sent, minlength=5) / sent.size)
    # Not the share of all sends so far: the last slice is the settled split.
    so_far = np.bincount(trace.arms, minlength=5) / trace.arms.size
    assert shares[-1, 3] > so_far[3]
    linear = share_slices(1, 50)
    assert linear[0] == 0 and linear[-1] == 50 and len(linear) == 41


def test_send_share_stacks_every_headline_to_the_whole(
    study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, send_share_figure(study))
    ax = fig.axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [
        f"{text} ({100 * rate:g}%)"
        for text, rate in zip(
            study.scenario.headline_texts, study.scenario.true_probabilities, strict=True
        )
    ]
    # The stack's top edge is 100% at every send drawn.
    top = ax.collections[-1].get_paths()[0].vertices
    upper = top[(top[:, 0] > 100) & (top[:, 0] < 20_000), 1]
    assert upper.max() == pytest.approx(1.0) and np.sum(np.isclose(upper, 1.0)) > len(upper) / 3
    assert _title(fig).startswith('"Ending Tonight: Final Chance to Save" gets most of the sends')


def test_posteriors_mark_each_true_rate_in_its_headline_colour(
    study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, posteriors_figure(study))
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == len(HORIZONS)
    rates = study.scenario.true_probabilities
    for ax in panels:
        markers = [line for line in ax.get_lines() if line.get_gid() == "true_rate"]
        assert [line.get_xdata()[0] for line in markers] == list(rates)
        assert all(line.get_linestyle() == "--" for line in markers)
        curves = [line for line in ax.get_lines() if line.get_gid() != "true_rate"]
        assert [c.get_color() for c in curves] == [m.get_color() for m in markers]
        ticks = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
        assert ticks and all(tick.endswith("%") for tick in ticks)
    assert "(true: 24%)" in _title(fig)


def test_regret_plots_plain_names_bands_and_the_least_regret(
    study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, regret_figure(study))
    ax = fig.axes[0]
    assert list(_labelled_lines(ax)) == PLAIN
    assert len(ax.collections) == len(PLAIN)  # one 95% band per policy
    mc = study.monte_carlo
    assert mc is not None
    lost = {
        label: float(mc.regret[key][:, -1].mean())
        for key, label in zip(mc.labels, PLAIN, strict=True)
    }
    best = min(lost, key=lambda label: lost[label])
    assert _title(fig).startswith(f"{best} loses {lost[best]:,.0f} opens by 20,000 sends")


def test_regret_needs_monte_carlo(study: StudyResult) -> None:
    single = run_study(reference_scenario(), iterations=[100], policies=[UniformRandom()])
    with pytest.raises(ValueError, match="replications > 1"):
        regret_figure(single)


@pytest.mark.parametrize(
    "build",
    [extra_opens_figure, p_best_figure, send_share_figure, posteriors_figure, regret_figure],
    ids=["opens", "p_best", "share", "posteriors", "regret"],
)
def test_no_text_is_smaller_than_10_points(
    build: Any, study: StudyResult, figures: list[Figure]
) -> None:
    fig = _keep(figures, build(study))
    fig.canvas.draw()
    texts = [text for text in fig.findobj(Text) if text.get_text() and text.get_visible()]
    assert texts and min(text.get_fontsize() for text in texts) >= 10


def test_write_study_plots_writes_the_listed_files(study: StudyResult, tmp_path: Path) -> None:
    written = write_study_plots(study, tmp_path)
    assert [path.name for path in written] == [
        "extra_opens.png",
        "p_best.png",
        "send_share.png",
        "posteriors.png",
        "regret.png",
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []  # every figure is closed once written


def test_plan_list_size_curves_stay_visible_where_they_coincide(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = parse_plan(
        {
            "headlines": ["A", "B", "C"],
            "open_rates": [0.10, 0.15, 0.20],
            "list_size": 3_000,
            "waves": {"count": 6, "every": "1h"},
            "open_delay": {"median": "10m", "p95": "45m"},
            "attribution_window": "3h",
            "stopping": {"min_opens": 30},
            "replications": 10,
            "seed": 5,
        }
    )
    plan = plan_campaign(spec, search_replications=5, n_threads=1)
    drawn: list[Figure] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    plots.plot_plan_list_size(plan, tmp_path / "plan_list_size.png")
    (fig,) = drawn
    labels = [container.get_label() for container in fig.axes[0].containers]
    assert labels == ["declared the best headline", "declared one within 1% of the best"]
    best, within = (container.lines[0] for container in fig.axes[0].containers)
    # Where "the best" equals "within 1%", the first is drawn thin and dashed over the second.
    assert best.get_zorder() > within.get_zorder()
    assert best.get_linestyle() != within.get_linestyle()
    assert best.get_linewidth() < within.get_linewidth()
    assert best.get_markersize() < within.get_markersize()
    plt.close(fig)
