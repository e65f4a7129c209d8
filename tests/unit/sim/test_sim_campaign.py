"""The campaign simulator's draws: when each open is first seen, and which are late."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headliner.core.policies import UniformRandom
from headliner.sim.campaign import HOUR, Campaign, OpenDelay, simulate_campaign

RATE = 0.3
INTERVAL = 10 * HOUR
# The last look inside the window is at 10 h: an open later than that is late.
WINDOW = 19 * HOUR


@pytest.mark.parametrize(
    ("wave_size", "n_sends"),
    [(20_000, 40_000), (2, 2_000)],
    ids=["many opens a wave: drawn per lag", "few opens a wave: drawn per open"],
)
def test_opens_seen_after_the_last_look_are_late_in_both_draws(
    wave_size: int, n_sends: int
) -> None:
    campaign = Campaign(
        (RATE, RATE),
        n_sends=n_sends,
        wave_size=wave_size,
        interval_seconds=INTERVAL,
        open_delay=OpenDelay(),
        attribution_window_seconds=WINDOW,
        policy=UniformRandom(),
        burn_in_per_arm=0,
        stopping=None,
    )
    result = simulate_campaign(campaign, 50, seed=3, n_threads=1)
    seen_in_time = OpenDelay().as_prior().cdf(INTERVAL, window=WINDOW)
    expected = RATE * seen_in_time
    total = 50 * n_sends
    counted = result.opens.sum() / total
    # A binomial share of every send: 4 standard errors.
    assert abs(counted - expected) <= 4 * math.sqrt(expected * (1 - expected) / total)
    assert np.all(result.sends.sum(axis=1) == n_sends)
