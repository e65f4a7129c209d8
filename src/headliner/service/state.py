"""The per-experiment cache that keeps the decision path free of aggregate queries.

A decision needs the experiment's settings, its active arms, the settled
counts and the policy's selection probabilities. Reading them costs three
queries and, for Thompson Sampling, a numerical integration (P(best), a few
milliseconds), so each process keeps an :class:`ExperimentState` per
experiment and rebuilds it at most every ``posterior_refresh_seconds``.
Thompson Sampling tolerates a posterior that is a second old; the sends made
since the last refresh are added locally so that burn-in still stops on time.

A refresh is also where the experiment moves on by itself: it runs the
stopping rule and declares the winner (an atomic RUNNING → WINNER_DECLARED
transition, so two processes cannot both declare), and it writes a snapshot
of P(best) and allocation at most every ``snapshot_interval_seconds``.

Two posteriors live here. Decisions use every counted open and every matured
non-open (the issue's rule: an open moves the posterior as soon as it
arrives). The stopping rule, whose declaration cannot be undone, uses the
matured cohort only (sends whose outcome is final and the opens among them,
see :mod:`headliner.storage.base`): opens arrive hours before non-opens do,
so the decision posterior overrates the headlines whose traffic grew
recently, and a declaration must not rest on that lean.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from headliner.core.allocation import apply_floor
from headliner.core.errors import ConflictError
from headliner.core.policies import Policy, make_policy
from headliner.core.posterior import BetaPosterior, probability_of_best
from headliner.core.stopping import StoppingRule, evaluate_stopping
from headliner.service.clock import Clock
from headliner.storage.base import (
    ArmCounts,
    ArmRecord,
    ExperimentRecord,
    ExperimentStatus,
    Snapshot,
    Store,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

logger = logging.getLogger("headliner.service")


def stopping_to_mapping(rule: StoppingRule | None) -> dict[str, Any]:
    """Store form of a stopping rule; ``{"enabled": False}`` turns automatic declaration off."""
    if rule is None:
        return {"enabled": False}
    return {"enabled": True, **asdict(rule)}


#: Stored names of stopping settings that were renamed since: old -> new.
_RENAMED_STOPPING_SETTINGS = {"min_settled_sends_per_arm": "min_matured_sends_per_arm"}


def stopping_from_mapping(stored: Mapping[str, Any]) -> StoppingRule | None:
    """Inverse of :func:`stopping_to_mapping` (an empty mapping means the default rule).

    Experiments stored before a setting was renamed keep loading under the new name.
    """
    if not stored.get("enabled", True):
        return None
    settings = {
        _RENAMED_STOPPING_SETTINGS.get(k, k): v for k, v in stored.items() if k != "enabled"
    }
    return StoppingRule(**settings)


@dataclass
class ExperimentState:
    """What one process knows about an experiment, as of ``refreshed_at``.

    Arrays are over the *active* arms, in position order; ``active[i]`` is the
    stored position of the i-th of them. ``sends`` also counts the decisions
    this process made since the refresh (for burn-in); everything else is as
    read from the store. ``opens``/``non_opens`` make the decision posterior,
    ``matured_opens``/``matured`` the stopping rule's (the matured cohort).
    """

    record: ExperimentRecord
    arms: list[ArmRecord]
    counts: list[ArmCounts]
    policy: Policy
    stopping: StoppingRule | None
    active: IntArray
    opens: FloatArray
    non_opens: FloatArray
    sends: IntArray
    matured: IntArray
    matured_opens: FloatArray
    probabilities: FloatArray
    refreshed_at: float
    ticket: int = 0
    p_best: FloatArray | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_active(self) -> int:
        """Number of arms that still receive sends."""
        return int(self.active.shape[0])

    @property
    def in_burn_in(self) -> bool:
        """Running, and some active arm still short of ``burn_in_per_arm`` sends."""
        return self.record.status is ExperimentStatus.RUNNING and bool(
            np.any(self.sends < self.record.burn_in_per_arm)
        )

    @property
    def status(self) -> str:
        """Stored status, or the derived ``"burn_in"`` while burn-in lasts."""
        return "burn_in" if self.in_burn_in else self.record.status.value

    @property
    def winner_index(self) -> int | None:
        """Index of the declared winner among the active arms, if any."""
        if self.record.winner_arm is None:
            return None
        hits = np.flatnonzero(self.active == self.record.winner_arm)
        return int(hits[0]) if hits.size else None

    def headline(self, arm: int) -> str:
        """Headline text of the arm at stored position ``arm``."""
        return self.arms[arm].headline

    def posterior(self) -> BetaPosterior:
        """Posterior of the active arms."""
        return BetaPosterior.from_counts(
            self.opens, self.non_opens, self.record.alpha_prior, self.record.beta_prior
        )

    def matured_posterior(self) -> BetaPosterior:
        """Posterior of the active arms from their matured cohort (what stopping sees)."""
        return BetaPosterior.from_counts(
            self.matured_opens,
            self.matured - self.matured_opens,
            self.record.alpha_prior,
            self.record.beta_prior,
        )

    def allocation(self) -> FloatArray:
        """Share of the next sends each active arm gets (floor or winner exploration applied)."""
        if self.record.status is ExperimentStatus.RUNNING:
            return apply_floor(self.probabilities, self.record.floor)
        return self.probabilities

    def ensure_p_best(self) -> FloatArray:
        """P(best) over the active arms (computed once per refresh)."""
        if self.p_best is None:
            self.p_best = probability_of_best(self.posterior())
        return self.p_best


def _winner_probabilities(n_active: int, winner: int | None, exploration: float) -> FloatArray:
    """Selection probabilities once a winner is declared: the winner, plus exploration."""
    share = np.full(n_active, exploration / n_active)
    if winner is not None:
        share[winner] += 1.0 - exploration
    else:  # the winner was retired by hand: spread evenly rather than fail
        share[:] = 1.0 / n_active
    return share


class StateCache:
    """Per-process cache of :class:`ExperimentState`, refreshed at most every ``max_age``.

    Parameters
    ----------
    store : Store
    clock : Clock
    rng : numpy.random.Generator
        Used by the stopping rule's value-remaining draws (its own generator,
        so that background rebuilds do not reorder the decisions' draws).
    max_age : float
        Seconds a state is reused (``posterior_refresh_seconds``).
    snapshot_interval : float
        Seconds between snapshots of one experiment written by this process.
    background : bool, default=True
        Rebuild stale states in a background thread (see :meth:`get`); False
        rebuilds in the caller, which makes a seeded run reproducible.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        rng: np.random.Generator,
        *,
        max_age: float,
        snapshot_interval: float,
        background: bool = True,
    ) -> None:
        self._store = store
        self._background = background
        self._tickets = itertools.count(1)
        self._clock = clock
        self._rng = rng
        self._max_age = max_age
        self._snapshot_interval = snapshot_interval
        self._states: dict[str, ExperimentState] = {}
        self._last_snapshot: dict[str, float] = {}
        self._generation: dict[str, int] = {}
        self._first_load = threading.Lock()  # guards the dicts' compound updates

    def invalidate(self, experiment_id: str) -> None:
        """Forget an experiment's state (after a change made through this process)."""
        with self._first_load:
            # A background refresh that started before this change must not store its result.
            self._generation[experiment_id] = self._generation.get(experiment_id, 0) + 1
            self._states.pop(experiment_id, None)

    def generation(self, experiment_id: str) -> int:
        """How often this process invalidated the experiment: what it derived before is stale."""
        return self._generation.get(experiment_id, 0)

    def get(self, experiment_id: str, *, max_age: float | None = None) -> ExperimentState:
        """The experiment's state, rebuilt if older than ``max_age`` (default: the cache's).

        With a positive ``max_age`` a stale state is rebuilt in a background
        thread while requests keep using the old one: P(best) is a numerical
        integration (7 ms for 5 headlines, 45 ms for 20, 190 ms for 50), which
        must not stall the event loop. ``max_age=0`` (a report, a wave, or
        ``posterior_refresh_seconds=0`` in tests) rebuilds before returning.
        """
        limit = self._max_age if max_age is None else max_age
        now = self._clock.now()
        state = self._states.get(experiment_id)
        if state is None:
            with self._first_load:
                state = self._states.get(experiment_id)
            if state is None:
                return self._refresh(experiment_id, now, self._generation.get(experiment_id, 0))
        if now - state.refreshed_at < limit:
            return state
        generation = self._generation.get(experiment_id, 0)
        if limit == 0 or not self._background:
            with state.lock:  # a caller that asked for fresh data waits for it
                return self._refresh(experiment_id, now, generation)
        if state.lock.acquire(blocking=False):  # one rebuild at a time per experiment
            worker = threading.Thread(
                target=self._refresh_in_background,
                args=(experiment_id, now, generation, state.lock),
                name=f"headliner-refresh-{experiment_id}",
                daemon=True,
            )
            worker.start()
        return state

    def _refresh_in_background(
        self, experiment_id: str, now: float, generation: int, lock: threading.Lock
    ) -> None:
        try:
            self._refresh(experiment_id, now, generation)
        except Exception:  # the old state stays in use; the next request tries again
            logger.warning("posterior refresh failed", exc_info=True)
        finally:
            lock.release()

    def _refresh(self, experiment_id: str, now: float, generation: int) -> ExperimentState:
        ticket = next(self._tickets)
        record = self._store.get_experiment(experiment_id)
        arms = self._store.list_arms(experiment_id)
        counts = self._store.arm_counts(experiment_id, now, record.attribution_window_seconds)
        state = self._build(record, arms, counts, now)
        if state.record.status is ExperimentStatus.RUNNING and state.stopping is not None:
            state = self._check_stopping(state, state.stopping, now)
        self._maybe_snapshot(state, now)
        state.ticket = ticket
        with self._first_load:
            current = self._states.get(experiment_id)
            # Keep only the newest rebuild (a slow background one may finish after a
            # later synchronous one) and none that began before an invalidation.
            if self._generation.get(experiment_id, 0) == generation and (
                current is None or current.ticket < ticket
            ):
                self._states[experiment_id] = state
        return state

    def _build(
        self,
        record: ExperimentRecord,
        arms: list[ArmRecord],
        counts: list[ArmCounts],
        now: float,
    ) -> ExperimentState:
        active = np.array([a.arm for a in arms if a.active], dtype=np.int64)
        by_arm = {c.arm: c for c in counts}
        opens = np.array([by_arm[a].opens for a in active], dtype=np.float64)
        non_opens = np.array([by_arm[a].non_opens for a in active], dtype=np.float64)
        sends = np.array([by_arm[a].sends for a in active], dtype=np.int64)
        matured = np.array([by_arm[a].matured for a in active], dtype=np.int64)
        matured_opens = np.array([by_arm[a].matured_opens for a in active], dtype=np.float64)
        policy = make_policy(record.policy, **record.policy_settings)
        state = ExperimentState(
            record=record,
            arms=arms,
            counts=counts,
            policy=policy,
            stopping=stopping_from_mapping(record.stopping),
            active=active,
            opens=opens,
            non_opens=non_opens,
            sends=sends,
            matured=matured,
            matured_opens=matured_opens,
            probabilities=np.empty(0),
            refreshed_at=now,
        )
        state.probabilities = self._selection_probabilities(state)
        return state

    def _selection_probabilities(self, state: ExperimentState) -> FloatArray:
        record = state.record
        if record.status is not ExperimentStatus.RUNNING:
            return _winner_probabilities(
                state.n_active, state.winner_index, record.winner_exploration
            )
        probabilities = state.policy.selection_probabilities(
            state.opens,
            state.non_opens,
            alpha_prior=record.alpha_prior,
            beta_prior=record.beta_prior,
            t=int(state.sends.sum()),
        )
        if record.policy == "thompson":
            state.p_best = probabilities  # Thompson's selection probabilities are P(best)
        return probabilities

    def _check_stopping(
        self, state: ExperimentState, rule: StoppingRule, now: float
    ) -> ExperimentState:
        # Cheap guard first: the quadrature and the draws only run once data suffices.
        if state.n_active < 2 or np.any(state.matured < rule.min_matured_sends_per_arm):
            return state
        # The matured cohort's own P(best), not the decision posterior's cached one
        # (see the module docstring): one more quadrature per refresh from here on.
        verdict = evaluate_stopping(rule, state.matured_posterior(), state.matured, self._rng)
        if verdict.winner is None:
            return state
        winner_arm = int(state.active[verdict.winner])
        try:
            record = self._store.set_status(
                state.record.id,
                ExperimentStatus.WINNER_DECLARED,
                now,
                allowed_from=frozenset({ExperimentStatus.RUNNING}),
                winner_arm=winner_arm,
                winner_reason="stopping rule on the matured cohort: " + "; ".join(verdict.reasons),
            )
        except ConflictError:
            # Another process (or a hand-made change) moved the experiment on first.
            record = self._store.get_experiment(state.record.id)
        return self._build(record, state.arms, state.counts, now)

    def _maybe_snapshot(self, state: ExperimentState, now: float) -> None:
        experiment_id = state.record.id
        last = self._last_snapshot.get(experiment_id)
        if last is not None and now - last < self._snapshot_interval:
            return
        if state.record.status in (ExperimentStatus.COMPLETED, ExperimentStatus.ARCHIVED):
            return
        self._last_snapshot[experiment_id] = now
        p_best = state.ensure_p_best()
        allocation = state.allocation()
        self._store.record_snapshot(
            Snapshot(
                experiment_id=experiment_id,
                at=now,
                arm_to_p_best={int(a): float(p) for a, p in zip(state.active, p_best, strict=True)},
                arm_to_allocation={
                    int(a): float(p) for a, p in zip(state.active, allocation, strict=True)
                },
            )
        )
