"""Campaign tables and plots: the figures a marketer reads, checked against the raw result."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from headliner.core.policies import ab_test_sample_size
from headliner.report.plots import write_campaign_plots
from headliner.report.tables import (
    TABLE_WIDTH,
    ab_test_sends_per_arm,
    campaign_replications,
    campaign_summary,
    format_campaign,
    quantile_and_ci,
    shorten,
)
from headliner.sim.campaign import mean_and_ci, proportion_and_ci
from headliner.sim.scenarios import parse_scenario
from headliner.sim.study import CampaignStudy, run_campaign_study

# 3 headlines, 5 waves of 200: opens seen within the hour (and a prior delay curve
# that knows it), a light burn-in and a stopping rule looked at every wave, so
# that most replications declare a winner.
TINY = {
    "name": "tiny",
    "headlines": [
        {"text": "Ten percent", "true_open_rate": 0.1},
        {"text": "Twenty percent", "true_open_rate": 0.2},
        {"text": "Forty percent", "true_open_rate": 0.4},
    ],
    "seeds": {"monte_carlo_seed": 11},
    "campaign": {
        "list_size": 1000,
        "waves": {"size": 200, "every": "1h"},
        "open_delay": {"median": "30m", "p95": "2h"},
        "delay_prior": {"median": "30m", "p95": "2h"},
        "attribution_window": "6h",
        "burn_in_per_arm": 20,
        "stopping": {"min_opens": 20, "check_interval": 0},
        "replications": 10,
    },
}


def _study(**campaign: object) -> CampaignStudy:
    data = {**TINY, "campaign": {**TINY["campaign"], **campaign}}  # type: ignore[dict-item]
    return run_campaign_study(parse_scenario(data, "tiny"), n_threads=1)


@pytest.fixture(scope="module")
def study() -> CampaignStudy:
    return _study()


@pytest.fixture(scope="module")
def undecided() -> CampaignStudy:
    """Stopping off: no replication declares."""
    return _study(stopping="off", replications=3)


def test_summary_figures_are_the_results(study: CampaignStudy) -> None:
    result = study.result
    summary = campaign_summary(study)
    assert (summary["scenario"], summary["replications"], summary["seed"]) == ("tiny", 10, 11)

    mean, half = mean_and_ci(result.opens)
    assert summary["opens"]["mean"] == pytest.approx(result.opens.mean())
    assert summary["opens"]["ci95"] == pytest.approx([mean - half, mean + half])
    even = 1000 * (0.1 + 0.2 + 0.4) / 3
    assert summary["even_split_opens"] == pytest.approx(even)
    assert summary["extra_opens_vs_even"]["mean"] == pytest.approx(result.opens.mean() - even)
    # The even split is a constant, so the extra opens' interval is the opens' shifted.
    assert summary["extra_opens_vs_even"]["ci95"] == pytest.approx(
        [mean - half - even, mean + half - even]
    )
    assert summary["lift_vs_even"]["mean"] == pytest.approx((result.opens.mean() - even) / even)
    assert summary["regret"]["mean"] == pytest.approx(result.regret.mean())

    decided = result.decided
    assert decided.sum() >= 5, "the tiny campaign should mostly declare"
    share, low, high = proportion_and_ci(decided)
    assert summary["decided_share"] == {"value": share, "ci95": [low, high]}
    within = result.within_best(0.01)[decided]
    assert summary["within_1pct_share"]["value"] == pytest.approx(within.mean())
    hours = result.decision_hours[decided]
    assert summary["hours_to_decision"]["median"] == pytest.approx(np.median(hours))
    assert summary["hours_to_decision"]["p90"] == pytest.approx(np.quantile(hours, 0.9))
    sends = result.decision_sends[decided]
    assert summary["sends_to_decision"]["median"] == pytest.approx(np.median(sends))

    assert summary["ab_test_sends_per_arm"] == ab_test_sample_size(0.2, 1.0)
    assert summary["ab_test_sends_total"] == 3 * ab_test_sample_size(0.2, 1.0)
    per_headline = summary["headlines"]
    assert [item["text"] for item in per_headline] == study.headlines
    assert sum(item["send_share"] for item in per_headline) == pytest.approx(1.0)
    assert sum(item["declared_share"] for item in per_headline) == pytest.approx(share)


def test_a_campaign_that_never_declares_reports_none_not_nan(undecided: CampaignStudy) -> None:
    summary = campaign_summary(undecided)
    assert summary["decided_share"]["value"] == 0.0
    assert summary["within_1pct_share"] == {"value": None, "ci95": [None, None]}
    assert summary["hours_to_decision"]["median"] is None
    assert summary["sends_to_decision"]["p90_ci95"] == [None, None]
    assert summary["campaign"]["stopping"] is None
    table = format_campaign(undecided)
    assert "never declares a winner (stopping off)" in " ".join(table.split())
    assert "Hours to a decision: median" in table and "n/a" in table


def test_table_shows_the_headline_figures(study: CampaignStudy) -> None:
    table = format_campaign(study)
    summary = campaign_summary(study)
    flat = " ".join(table.split())
    assert 'Campaign "tiny": 1,000 sends in waves of 200 every 1h' in flat
    assert "opens arrive 30m after the send (median), 95% of them within 2h" in flat
    assert "count for 6h" in flat
    assert "10 simulated campaigns, seed 11" in flat
    opens = next(line for line in table.splitlines() if line.startswith("Opens per campaign"))
    assert f"{summary['opens']['mean']:,.0f}" in opens
    low, high = summary["opens"]["ci95"]
    assert f"[{low:,.0f}, {high:,.0f}]" in opens
    for label in (
        "Extra opens vs an even split",
        "Opens lost vs always the best headline",
        "Campaigns that declared a winner",
        "Declared winners within 1% of the best",
        "Hours to a decision: 90th percentile",
        "Sends to a decision: median",
    ):
        assert label in table
    assert f"needs {ab_test_sample_size(0.2, 1.0):,} sends per headline" in flat
    for text in study.headlines:
        assert any(line.startswith(text) for line in table.splitlines())


def test_table_fits_in_80_columns() -> None:
    long_text = "An extremely long subject line that no inbox would ever show in full, really"
    data = {
        **TINY,
        "name": "a-scenario-name-long-enough-to-push-the-description-past-the-edge-of-the-screen",
        "headlines": [
            {"text": long_text, "true_open_rate": 0.1},
            {"text": "Ending Tonight: Final Chance to Save", "true_open_rate": 0.4},
        ],
        "seeds": {"monte_carlo_seed": None},  # fresh entropy: a 39-digit seed
        "campaign": {**TINY["campaign"], "replications": 2},  # type: ignore[dict-item]
    }
    study = run_campaign_study(parse_scenario(data, "long"), n_threads=1)
    assert len(str(study.result.seed)) > 30
    table = format_campaign(study)
    widths = [len(line) for line in table.splitlines()]
    assert max(widths) <= TABLE_WIDTH, table
    assert shorten(long_text, 48) in table
    assert str(study.result.seed) in table


def test_replication_rows(study: CampaignStudy, undecided: CampaignStudy) -> None:
    rows = campaign_replications(study)
    result = study.result
    assert list(rows.columns) == [
        "replication",
        "opens",
        "regret",
        "declared_arm",
        "declared_headline",
        "decision_hours",
        "decision_sends",
    ]
    assert len(rows) == result.n_replications
    np.testing.assert_array_equal(rows["opens"], result.opens)
    np.testing.assert_array_equal(rows["declared_arm"], result.declared_arm)
    none = campaign_replications(undecided)
    assert none["decision_sends"].isna().all() and none["decision_hours"].isna().all()
    assert (none["declared_headline"] == "").all()


def test_quantile_interval_covers_the_true_quantile_at_least_95_percent() -> None:
    # Exponential(1): median log 2, 90th percentile log 10. The order-statistic
    # interval covers with probability >= 95% (exactly, not asymptotically), so
    # over 400 samples the share covered is at least 0.95 less 3 binomial
    # standard deviations, 3 * sqrt(0.95 * 0.05 / 400) = 0.033.
    rng = np.random.default_rng(2024)
    n_samples = 400
    for q, truth in ((0.5, math.log(2.0)), (0.9, math.log(10.0))):
        covered = 0
        for _ in range(n_samples):
            _, low, high = quantile_and_ci(rng.exponential(size=60), q)
            covered += low <= truth <= high
        assert covered / n_samples >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / n_samples)


def test_quantile_of_nothing_and_of_one_value() -> None:
    assert all(math.isnan(v) for v in quantile_and_ci(np.array([np.nan]), 0.5))
    assert quantile_and_ci(np.array([4.0]), 0.9) == (4.0, 4.0, 4.0)


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ((0.18, 0.24, 0.21), ab_test_sample_size(0.21, 0.24 / 0.21 - 1)),
        ((0.2, 0.2), None),
        ((0.3,), None),
        ((0.0, 0.3), None),
    ],
    ids=["runner-up", "tie", "one-headline", "zero-runner-up"],
)
def test_ab_test_sends_per_arm(rates: tuple[float, ...], expected: int | None) -> None:
    assert ab_test_sends_per_arm(rates) == expected


def test_plots_are_written(study: CampaignStudy, undecided: CampaignStudy, tmp_path: Path) -> None:
    for name, chosen in (("decided", study), ("undecided", undecided)):
        paths = write_campaign_plots(chosen, tmp_path / name)
        assert [path.name for path in paths] == [
            "campaign_allocation.png",
            "campaign_p_best.png",
            "campaign_decision_time.png",
        ]
        for path in paths:
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert path.stat().st_size > 10_000
