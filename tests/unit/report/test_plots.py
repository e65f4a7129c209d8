"""Plots: sampling of long curves and PNG files that are really written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headliner.report.plots import (
    plot_cumulative_opens,
    plot_posteriors,
    plot_send_share,
    sample_points,
)


@pytest.mark.parametrize("n_sends", [1, 10, 2_000, 2_001, 1_000_000], ids=str)
def test_sample_points_are_increasing_sends_ending_at_the_horizon(n_sends: int) -> None:
    points = sample_points(n_sends)
    assert points[0] == 1 and points[-1] == n_sends
    assert np.all(np.diff(points) > 0)
    assert len(points) <= 2_000


def test_plots_write_png_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    arms = rng.integers(0, 3, size=5_000).astype(np.int8)
    rewards = (rng.random(5_000) < np.array([0.1, 0.2, 0.3])[arms]).astype(np.int8)
    headlines = ["A", "B", "C"]
    written = [
        plot_cumulative_opens({"uniform": rewards}, tmp_path / "opens.png"),
        plot_send_share(arms, headlines, tmp_path / "share.png", title="share"),
        plot_posteriors(arms, rewards, headlines, [100, 5_000], tmp_path / "post.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
