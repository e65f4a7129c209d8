"""A realistic campaign driven through the service's domain layer, for the dashboard's tests.

Five spring-sale headlines (true open rates 18%, 21%, 16%, 24% and 20%), an
hourly wave plus a few per-send decisions every hour, opens that arrive late
(log-normal delays: half within 2 hours, 95% within a day) and are reported
as they happen: running totals for the waves, one open per decision. The
clock is a :class:`ManualClock`, so hours pass in milliseconds and the
numbers are the same on every run with the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from headliner.service.clock import ManualClock
from headliner.service.experiment_file import spec_from_plan
from headliner.service.experiments import ExperimentService, build_spec
from headliner.sim.plan import parse_plan

HEADLINES = [
    "48 Hours Only: Save 25%",
    "Your Exclusive Spring Offer Is Here",
    "Don't Miss Your Member Discount",
    "Ending Tonight: Final Chance to Save",
    "A Little Something Just for You",
]
RATES = np.array([0.18, 0.21, 0.16, 0.24, 0.20])
HOUR = 3600.0
MEDIAN_DELAY = 2 * HOUR
P95_DELAY = 24 * HOUR


@dataclass
class _Wave:
    wave_id: str
    open_times: dict[int, NDArray[np.float64]]
    reported: dict[int, int]


@dataclass
class DashboardCampaign:
    """A campaign under way: call :meth:`hour` to send and report one more hour."""

    service: ExperimentService
    clock: ManualClock
    experiment_id: str
    rng: np.random.Generator
    wave_size: int
    decisions_per_hour: int
    waves: list[_Wave] = field(default_factory=list)
    opens_due: list[tuple[float, str]] = field(default_factory=list)

    def _open_times(self, arm: int, n: int, now: float) -> NDArray[np.float64]:
        opened = self.rng.random(n) < RATES[arm]
        sigma = np.log(P95_DELAY / MEDIAN_DELAY) / 1.6448536269514722
        delays = MEDIAN_DELAY * np.exp(sigma * self.rng.standard_normal(int(opened.sum())))
        return np.sort(now + delays)

    def report_opens(self) -> None:
        """Report every open that has happened by now (wave totals, then decisions)."""
        now = self.clock.now()
        for wave in self.waves:
            totals = {arm: int(np.sum(times <= now)) for arm, times in wave.open_times.items()}
            if totals != wave.reported:
                self.service.record_wave_opens(self.experiment_id, wave.wave_id, dict(totals))
                wave.reported = totals
        due = [(t, d) for t, d in self.opens_due if t <= now]
        self.opens_due = [(t, d) for t, d in self.opens_due if t > now]
        for _, decision_id in due:
            self.service.record_open(self.experiment_id, decision_id)

    def hour(self) -> None:
        """Report the opens so far, send this hour's wave and decisions, then let an hour pass."""
        self.report_opens()
        now = self.clock.now()
        if self.service.state(self.experiment_id, fresh=True).record.status.value in (
            "running",
            "winner_declared",
        ):
            wave = self.service.allocate(self.experiment_id, self.wave_size).wave
            times = {a: self._open_times(a, n, now) for a, n in wave.arm_to_sends.items()}
            self.waves.append(_Wave(wave.id, times, dict.fromkeys(times, 0)))
            for _ in range(self.decisions_per_hour):
                result = self.service.decide(self.experiment_id)
                arm = result.decision.arm
                for opened_at in self._open_times(arm, 1, now):
                    self.opens_due.append((float(opened_at), result.decision.id))
        self.clock.advance(HOUR)


def campaign_plan(name: str, wave_size: int, decisions_per_hour: int) -> dict[str, object]:
    """The plan of this campaign (as ``headliner plan`` reads it): its rates, list and waves."""
    return {
        "name": name,
        "headlines": [
            {"text": text, "true_open_rate": float(rate)}
            for text, rate in zip(HEADLINES, RATES, strict=True)
        ],
        "list_size": 60_000,
        "waves": {"size": wave_size + decisions_per_hour, "every": "1h"},
        "open_delay": {"median": "2h", "p95": "24h"},
        "attribution_window": "72h",
        "seed": 11,
    }


def start_campaign(
    service: ExperimentService,
    clock: ManualClock,
    *,
    hours: int,
    seed: int = 7,
    wave_size: int = 1500,
    decisions_per_hour: int = 40,
    name: str = "Spring sale",
    planned: bool = False,
) -> DashboardCampaign:
    """Create the experiment and run ``hours`` hours of it; the opens so far are reported.

    ``planned``: the experiment is created from :func:`campaign_plan`, as
    ``experiments create --from plan.yaml`` would.
    """
    if planned:
        spec = spec_from_plan(parse_plan(campaign_plan(name, wave_size, decisions_per_hour)))
    else:
        spec = build_spec(name, HEADLINES, attribution_window_seconds=72 * HOUR)
    record = service.create(spec)
    campaign = DashboardCampaign(
        service, clock, record.id, np.random.default_rng(seed), wave_size, decisions_per_hour
    )
    for _ in range(hours):
        campaign.hour()
    campaign.report_opens()
    return campaign
