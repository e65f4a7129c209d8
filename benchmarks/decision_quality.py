"""Decision quality of email campaigns as served: regret, calibration, stopping, speed.

Every figure comes from replications of :func:`headliner.sim.campaign.simulate_campaign`,
which runs the service's own compiled decision path (delay curve, effective
counts, burn-in, stopping rule at its cadence, guarded split), and is printed
with its 95% interval and the number of replications R and the seed.

Sections (``--only`` picks some):

regret       reference rates, 100,000 sends in waves of 1,000 every hour and
             every 15 minutes, opens delayed log-normally (median 2 h, p95 24 h),
             72 h window; no burn-in and no stopping, so that the counting rules
             compare on the policy alone: immediate feedback, the rule before
             (opens counted at once, non-opens when the window passes), Thompson
             Sampling told the true delay curve, and the service's rule, which
             estimates the curve from the campaign's own opens (prior median
             3 h, p95 36 h); then the service as it ships (burn-in and stopping).
calibration  the share of (headline, wave) checks, over the first 72 hours,
             whose reported 95% interval covers the true rate.
stopping     the default stopping rule, as served: share of campaigns that
             declare by the last send, share of declarations within 1% of the
             best, hours and sends to a declaration, beside the sends per
             headline of a powered A/B test (alpha 0.05, power 0.8).
null         four headlines at 12%: how often and when it declares.
speed        wall time of 1,000 replications of the reference wave campaign,
             and of the same campaign through the service (per run) in the
             same invocation.

Usage: ``python benchmarks/decision_quality.py [--replications R] [--seed S] [--only ...]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from headliner.core.policies import ab_test_sample_size
from headliner.sim.campaign import (
    HOUR,
    Campaign,
    CampaignResult,
    _py_campaign_kernel,
    kernel_arguments,
    mean_and_ci,
    proportion_and_ci,
    recorded_steps,
    simulate_campaign,
)

REFERENCE = (0.18, 0.21, 0.16, 0.24, 0.20)
CLOSE_PAIR = (0.04, 0.0416)
CLEAR_WINNER = (0.08, 0.20)
NULL = (0.12, 0.12, 0.12, 0.12)


def forty_headlines() -> tuple[float, ...]:
    """39 headlines spread between 1% and 5%, and a best one at 6% (20% above the runner-up)."""
    return (*np.linspace(0.01, 0.05, 39).round(6).tolist(), 0.06)


def reference_waves(**changes: object) -> Campaign:
    """The reference wave campaign (the service's defaults unless changed)."""
    return replace(Campaign(REFERENCE, 100_000, wave_size=1_000), **changes)  # type: ignore[arg-type]


def run(campaign: Campaign, r: int, seed: int, **options: bool) -> tuple[CampaignResult, float]:
    start = time.perf_counter()
    result = simulate_campaign(campaign, r, seed=seed, **options)
    return result, time.perf_counter() - start


def fmt_mean(values: np.ndarray, digits: int = 0) -> str:
    mean, half = mean_and_ci(values)
    return f"{mean:,.{digits}f} ± {half:,.{digits}f}"


def fmt_share(hits: np.ndarray) -> str:
    if np.asarray(hits).size == 0:
        return "n/a (none)"
    p, low, high = proportion_and_ci(hits)
    return f"{100 * p:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def quantiles(values: np.ndarray, digits: int = 0) -> str:
    x = values[np.isfinite(values) & (values >= 0)]
    if x.size == 0:
        return "n/a"
    median, p90 = np.quantile(x, [0.5, 0.9])
    return f"{median:,.{digits}f} / {p90:,.{digits}f}"


def table(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(f"{str(x):<{w}}" for x, w in zip(row, widths, strict=True)))
    print()


def section_regret(r: int, seed: int) -> None:
    print(f"Regret: reference rates, 100,000 sends in waves of 1,000; R = {r}, seed {seed}")
    rows = []
    for minutes in (60, 15):
        plain = {"interval_seconds": minutes * 60.0, "burn_in_per_arm": 0, "stopping": None}
        for label, counting in (
            ("immediate feedback", "immediate"),
            ("before: opens at once, non-opens at window end", "settled"),
            ("told the true delay curve", "known_curve"),
            ("delay-aware, curve estimated (the service)", "delay_aware"),
        ):
            result, _ = run(reference_waves(counting=counting, **plain), r, seed)
            rows.append((f"every {minutes} min", label, fmt_mean(result.regret)))
        served, _ = run(reference_waves(interval_seconds=minutes * 60.0), r, seed)
        rows.append(
            (f"every {minutes} min", "as served (burn-in 100, stopping)", fmt_mean(served.regret))
        )
    table(("waves", "counting", "regret (opens lost), mean ± 95%"), rows)


def section_calibration(r: int, seed: int) -> None:
    print(f"Calibration of the reported 95% intervals, first 72 h of each campaign; R = {r}")
    rows = []
    for label, changes in (
        ("hourly waves, prior 3 h / 36 h (default)", {}),
        ("waves every 15 min", {"interval_seconds": 900.0}),
        (
            "hourly, true delay slower than the prior (median 6 h, p95 48 h)",
            {
                "open_delay": replace(
                    reference_waves().open_delay, median_seconds=6 * HOUR, p95_seconds=48 * HOUR
                )
            },  # type: ignore[type-var]
        ),
        ("before: opens at once, non-opens at window end", {"counting": "settled"}),
    ):
        campaign = reference_waves(burn_in_per_arm=0, stopping=None, **changes)
        result, _ = run(campaign, r, seed, record_posteriors=True)
        window = result.recorded_hours <= 72.0
        covered = result.coverage()[window]
        by_arm = " ".join(f"{100 * c:.1f}" for c in covered.mean(axis=0))
        rows.append((label, f"{100 * covered.mean():.1f}%", by_arm))
    table(("campaign", "covered", "per headline (%)"), rows)


def decision_rows(name: str, result: CampaignResult) -> tuple[str, ...]:
    rates = np.array(result.campaign.true_rates)
    order = np.sort(rates)
    best, runner_up = order[-1], order[-2]
    ab = ab_test_sample_size(runner_up, best / runner_up - 1.0) if best > runner_up else 0
    decided = result.decided
    return (
        name,
        fmt_share(decided),
        fmt_share(result.within_best()[decided]),
        quantiles(result.decision_hours),
        quantiles(result.decision_sends.astype(np.float64)),
        f"{ab:,}" if ab else "n/a",
    )


def section_stopping(r: int, seed: int) -> None:
    print(f"Stopping rule as served (defaults), R = {r}, seed {seed}")
    cases: list[tuple[str, Campaign]] = [
        ("reference, 100,000 sends, hourly waves of 1,000", reference_waves()),
        (
            "close pair 4.0% vs 4.16%, 1,000,000 sends, hourly waves of 10,000",
            Campaign(CLOSE_PAIR, 1_000_000, wave_size=10_000),
        ),
        (
            "clear winner 8% vs 20%, 20,000 sends, hourly waves of 500",
            Campaign(CLEAR_WINNER, 20_000, wave_size=500),
        ),
        (
            "40 headlines 1-5%, best 6%, 200,000 sends, hourly waves of 2,000",
            Campaign(forty_headlines(), 200_000, wave_size=2_000),
        ),
        (
            "small list 10% vs 15%, 5,000 sends, hourly waves of 500",
            Campaign((0.10, 0.15), 5_000, wave_size=500),
        ),
        ("reference, waves every 15 min", reference_waves(interval_seconds=900.0)),
        (
            "reference, per send at 4,000 an hour (5-min refresh)",
            Campaign(
                REFERENCE, 100_000, wave_size=None, sends_per_hour=4_000.0, interval_seconds=300.0
            ),
        ),
    ]
    rows = []
    for name, campaign in cases:
        result, _ = run(campaign, r, seed)
        rows.append(decision_rows(name, result))
    table(
        (
            "campaign",
            "declared by the end",
            "declared within 1% of best",
            "hours to decide (median / p90)",
            "sends to decide (median / p90)",
            "A/B sends per headline",
        ),
        rows,
    )


def section_null(r: int, seed: int) -> None:
    print(f"All equal: four headlines at 12%, 100,000 sends in hourly waves of 1,000; R = {r}")
    result, _ = run(Campaign(NULL, 100_000, wave_size=1_000), r, seed)
    decided = result.decided
    rows = [
        ("declared by the end", fmt_share(decided)),
        ("hours to a declaration (median / p90)", quantiles(result.decision_hours)),
        ("sends to a declaration (median / p90)", quantiles(result.decision_sends * 1.0)),
        ("opens lost by a declaration (all are equal)", "0 by construction"),
    ]
    table(("", "value"), rows)


def section_speed(seed: int) -> None:
    campaign = reference_waves()
    simulate_campaign(campaign, 4, seed=seed)  # load the compiled kernel first
    _, seconds = run(campaign, 1_000, seed)
    # Baseline in the same invocation: the same kernel, interpreted (one replication).
    static = kernel_arguments(campaign, record_posteriors=False)
    n_record = recorded_steps(campaign.step_sends().shape[0]).shape[0]
    outputs = (
        np.zeros(campaign.n_arms, dtype=np.int64),
        np.zeros(5),
        np.zeros((n_record, campaign.n_arms)),
        np.zeros((n_record, campaign.n_arms)),
        np.zeros((0, campaign.n_arms)),
        np.zeros((0, campaign.n_arms)),
        np.zeros((0, campaign.n_arms, 2)),
    )
    start = time.perf_counter()
    _py_campaign_kernel(*static, np.random.default_rng(seed), *outputs)
    interpreted = time.perf_counter() - start
    rows = [
        ("compiled, 1,000 replications (2 threads)", f"{seconds:.2f} s", f"{seconds:.2f} ms"),
        (
            "interpreted, 1 replication",
            f"{interpreted:.2f} s",
            f"x{interpreted * 1000 / seconds:,.0f}",
        ),
    ]
    table(("reference wave campaign (100 waves)", "wall time", "per run / ratio"), rows)


SECTIONS: dict[str, Callable[[int, int], None]] = {
    "regret": section_regret,
    "calibration": section_calibration,
    "stopping": section_stopping,
    "null": section_null,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", default="regret,calibration,stopping,null,speed")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    for name in chosen:
        start = time.perf_counter()
        if name == "speed":
            section_speed(args.seed)
        else:
            SECTIONS[name](args.replications, args.seed)
        print(f"({name}: {time.perf_counter() - start:.0f} s)\n")


if __name__ == "__main__":
    main()
