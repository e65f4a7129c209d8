"""PNG plots of simulations; matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

if TYPE_CHECKING:
    from headliner.sim.study import StudyResult

# Posterior panels drawn at most.
_MAX_PANELS = 4
# A curve over a million sends is drawn from this many points at most.
_MAX_POINTS = 2_000


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
