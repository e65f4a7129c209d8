"""The per-experiment cache that keeps the decision path free of aggregate queries.

A decision needs the experiment's settings, its active headlines, their
delay-aware counts and the split of the next sends. Reading them costs a few
aggregate queries and, for Thompson Sampling, a quadrature (P(best)), so each
process keeps an :class:`ExperimentState` per experiment and rebuilds it at
most every ``posterior_refresh_seconds``. Thompson Sampling tolerates a
posterior that is a second old.

The counts are delay-aware (:mod:`headliner.service.evidence`): an unopened
send inside its window counts as the share of a trial that its opens would
have reached by now, from the delay curve estimated on the experiment's own
opens, so a headline's estimate is not inflated by its own recent traffic.
Decisions, waves, burn-in, the stopping rule and the report all use them.

A refresh is also where the experiment moves on by itself: once per
``check_interval_seconds`` it runs the stopping rule and declares the winner
(an atomic RUNNING → WINNER_DECLARED transition, so two processes cannot both
declare), and it writes a snapshot of P(best), allocation, estimates and sends
at most every ``snapshot_interval_seconds``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from headliner.core.delay import DelayPrior, delay_grid
from headliner.core.errors import ConflictError, InvalidParameterError
from headliner.core.policies import Policy, make_policy
from headliner.core.posterior import BetaPosterior
from headliner.core.stopping import StoppingRule, StoppingVerdict, evaluate_stopping
from headliner.service.clock import Clock
from headliner.service.evidence import Evidence, gather_evidence, rate_estimates
from headliner.sim.engine import kernels
from headliner.storage.base import (
    ArmCounts,
    ArmRecord,
    ExperimentRecord,
    ExperimentStatus,
    OpenDelays,
    PendingSends,
    Snapshot,
    Store,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

logger = logging.getLogger("headliner.service")


def stopping_to_mapping(rule: StoppingRule | None) -> dict[str, Any]:
    """Store form of a stopping rule; ``{"enabled": False}`` turns automatic declaration off."""
    if rule is None:
        return {"enabled": False}
    return {"enabled": True, **asdict(rule)}


#: Stored stopping settings of earlier versions that no longer apply: the
#: per-headline minimum (replaced by ``min_opens``) and the Monte Carlo draws of
#: value remaining (now an exact quadrature).
_RETIRED_STOPPING_SETTINGS = frozenset(
    {"min_settled_sends_per_arm", "min_matured_sends_per_arm", "n_draws"}
)


def stopping_from_mapping(stored: Mapping[str, Any]) -> StoppingRule | None:
    """Inverse of :func:`stopping_to_mapping` (an empty mapping means the default rule).

    Experiments stored by earlier versions keep loading: settings that no
    longer exist are dropped.
    """
    if not stored.get("enabled", True):
        return None
    settings = {
        k: v for k, v in stored.items() if k != "enabled" and k not in _RETIRED_STOPPING_SETTINGS
    }
    return StoppingRule(**settings)


def delay_prior_of(record: ExperimentRecord) -> DelayPrior:
    """The experiment's prior delay curve (the default one when none was stored)."""
    return DelayPrior(**record.delay_prior) if record.delay_prior else DelayPrior()


@dataclass
class ExperimentState:
    """What one process knows about an experiment, as of ``refreshed_at``.

    Arrays are over the *active* headlines, in position order; ``active[i]``
    is the stored position of the i-th of them. ``effective_opens`` and
    ``effective_non_opens`` make the posterior; ``short`` marks the headlines
    still in burn-in; ``allocation`` is the split of the next sends (guards
    or the winner's split applied), which is also each headline's propensity.
    ``sends`` counts every send so far, this process's since the refresh
    included (a policy's ``t``).
    """

    record: ExperimentRecord
    arms: list[ArmRecord]
    counts: list[ArmCounts]
    evidence: Evidence
    policy: Policy
    stopping: StoppingRule | None
    active: IntArray
    opens: FloatArray
    effective_opens: FloatArray
    effective_non_opens: FloatArray
    sends: IntArray
    short: BoolArray
    allocation: FloatArray
    p_best: FloatArray
    refreshed_at: float
    verdict: StoppingVerdict | None = None
    ticket: int = 0
    memory: IntArray = field(default_factory=lambda: np.full(1, -1, dtype=np.int64))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n_active(self) -> int:
        """Number of headlines that still receive sends."""
        return int(self.active.shape[0])

    @property
    def in_burn_in(self) -> bool:
        """Running, and some active headline short of ``burn_in_per_arm`` effective sends."""
        return self.record.status is ExperimentStatus.RUNNING and bool(np.any(self.short))

    @property
    def status(self) -> str:
        """Stored status, or the derived ``"burn_in"`` while burn-in lasts."""
        return "burn_in" if self.in_burn_in else self.record.status.value

    @property
    def winner_index(self) -> int | None:
        """Index of the declared winner among the active headlines, if any."""
        if self.record.winner_arm is None:
            return None
        hits = np.flatnonzero(self.active == self.record.winner_arm)
        return int(hits[0]) if hits.size else None

    @property
    def effective_sends(self) -> FloatArray:
        """Effective sends of the active headlines."""
        total: FloatArray = self.effective_opens + self.effective_non_opens
        return total

    def params(self) -> FloatArray:
        """The policy's parameter vector with the experiment's prior."""
        return self.policy.params(self.record.alpha_prior, self.record.beta_prior)

    def headline(self, arm: int) -> str:
        """Headline text of the arm at stored position ``arm``."""
        return self.arms[arm].headline

    def posterior(self) -> BetaPosterior:
        """Delay-aware posterior of the active headlines."""
        return BetaPosterior.from_counts(
            self.effective_opens,
            self.effective_non_opens,
            self.record.alpha_prior,
            self.record.beta_prior,
        )

    def allocation_reason(self) -> str:
        """Why the next sends are split as :attr:`allocation` says, in plain words."""
        record = self.record
        if record.status is not ExperimentStatus.RUNNING:
            winner = self.winner_index
            if winner is None:
                return "the declared winner was retired: every headline gets an even share"
            share = 1.0 - record.winner_exploration
            rest = ", the rest spread evenly" if record.winner_exploration > 0 else ""
            return (
                f"winner declared: {self.headline(int(self.active[winner]))!r} "
                f"gets {share:.0%} of sends{rest}"
            )
        floor = f"; each headline keeps at least {record.floor:.1%}" if record.floor > 0 else ""
        n_short = int(self.short.sum())
        fewest = float(self.effective_sends.min()) if self.n_active else 0.0
        if n_short == self.n_active:
            return (
                f"burn-in: every headline has fewer than {record.burn_in_per_arm} effective "
                f"sends (fewest {fewest:.0f}); split evenly{floor}"
            )
        if n_short:
            share = float(kernels.short_share(n_short, self.n_active, record.burn_in_share))
            return (
                f"burn-in: {n_short} headline(s) below {record.burn_in_per_arm} effective sends "
                f"share {share:.0%} evenly; the rest follows {self.policy.name}{floor}"
            )
        return f"{self.policy.name}: split by each headline's chance of being chosen{floor}"


def _winner_index(active: IntArray, winner_arm: int | None) -> int:
    if winner_arm is None:
        return -1
    hits = np.flatnonzero(active == winner_arm)
    return int(hits[0]) if hits.size else -1


def assemble_state(
    record: ExperimentRecord,
    arms: list[ArmRecord],
    counts: list[ArmCounts],
    evidence: Evidence,
    now: float,
) -> ExperimentState:
    """The state of an experiment from its stored parts and the evidence gathered now."""
    active = np.array([a.arm for a in arms if a.active], dtype=np.int64)
    by_arm = {c.arm: c for c in counts}
    policy = make_policy(record.policy, **record.policy_settings)
    effective_opens = evidence.effective_opens[active]
    effective_non_opens = evidence.effective_non_opens[active]
    running = record.status is ExperimentStatus.RUNNING
    short = (effective_opens + effective_non_opens < record.burn_in_per_arm) & running
    state = ExperimentState(
        record=record,
        arms=arms,
        counts=counts,
        evidence=evidence,
        policy=policy,
        stopping=stopping_from_mapping(record.stopping),
        active=active,
        opens=evidence.opens[active],
        effective_opens=effective_opens,
        effective_non_opens=effective_non_opens,
        sends=np.array([by_arm[a].sends for a in active], dtype=np.int64),
        short=np.asarray(short, dtype=np.bool_),
        allocation=np.empty(active.shape[0]),
        p_best=np.empty(active.shape[0]),
        refreshed_at=now,
    )
    posterior = state.posterior()
    kernels.within_probabilities(
        np.array(posterior.alpha), np.array(posterior.beta), 0.0, state.p_best
    )
    state.p_best /= state.p_best.sum()
    if running:
        kernels.guarded_probabilities(
            policy.code,
            state.params(),
            effective_opens,
            effective_non_opens,
            int(state.sends.sum()),
            state.memory,
            state.short,
            record.burn_in_share,
            record.floor,
            state.allocation,
        )
    else:
        kernels.winner_probabilities(
            _winner_index(active, record.winner_arm),
            record.winner_exploration,
            state.allocation,
        )
    return state


def first_state(record: ExperimentRecord, arms: list[ArmRecord], now: float) -> ExperimentState:
    """The state of a new experiment before its first send, without reading the store.

    InvalidParameterError if its settings leave P(best) or the split not finite
    (the priors' lower bound is there so that they never do).
    """
    counts = [ArmCounts(a.arm, 0, 0, 0, 0, 0, 0) for a in arms]
    none = np.empty(0)
    evidence = gather_evidence(
        counts,
        PendingSends(arm=np.empty(0, dtype=np.int64), age=none, count=none),
        OpenDelays(delay=none, observable=none, count=none),
        record.attribution_window_seconds,
        delay_prior_of(record),
    )
    state = assemble_state(record, arms, counts, evidence, now)
    if not (np.all(np.isfinite(state.p_best)) and np.all(np.isfinite(state.allocation))):
        raise InvalidParameterError(
            f"The settings of experiment {record.name!r} give no finite P(best) "
            f"(alpha_prior={record.alpha_prior}, beta_prior={record.beta_prior})."
        )
    return state


class StateCache:
    """Per-process cache of :class:`ExperimentState`, refreshed at most every ``max_age``.

    Parameters
    ----------
    store : Store
    clock : Clock
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
        *,
        max_age: float,
        snapshot_interval: float,
        background: bool = True,
    ) -> None:
        self._store = store
        self._background = background
        self._tickets = itertools.count(1)
        self._clock = clock
        self._max_age = max_age
        self._snapshot_interval = snapshot_interval
        self._states: dict[str, ExperimentState] = {}
        self._last_snapshot: dict[str, float] = {}
        self._last_check: dict[str, float] = {}
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
        thread while requests keep using the old one: a rebuild runs several
        aggregate queries, which must not stall the event loop. ``max_age=0`` (a report, a wave, or
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
        state = self._build(record, arms, now)
        if (
            state.record.status is ExperimentStatus.RUNNING
            and state.stopping is not None
            and self._check_due(state, state.stopping, now)
        ):
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
        self, record: ExperimentRecord, arms: list[ArmRecord], now: float
    ) -> ExperimentState:
        window = record.attribution_window_seconds
        prior = delay_prior_of(record)
        edges = age_edges(window)
        counts = self._store.arm_counts(record.id, now, window)
        evidence = gather_evidence(
            counts,
            self._store.pending_sends(record.id, now, window, edges),
            self._store.open_delays(record.id, now, window, edges),
            window,
            prior,
        )
        return assemble_state(record, arms, counts, evidence, now)

    def _check_due(self, state: ExperimentState, rule: StoppingRule, now: float) -> bool:
        """Whether a look is due: the first refresh after each multiple of the interval."""
        every = rule.check_interval_seconds
        experiment_id = state.record.id
        last = self._last_check.get(experiment_id)
        if every > 0:
            start = state.record.created_at
            slot = math.floor((now - start) / every)
            if slot < 1 or (last is not None and math.floor((last - start) / every) >= slot):
                return False
        self._last_check[experiment_id] = now
        return True

    def _check_stopping(
        self, state: ExperimentState, rule: StoppingRule, now: float
    ) -> ExperimentState:
        if state.n_active < 2:
            return state
        verdict = evaluate_stopping(
            rule,
            state.effective_opens,
            state.effective_non_opens,
            float(state.opens.sum()),
            alpha_prior=state.record.alpha_prior,
            beta_prior=state.record.beta_prior,
            ready=not state.in_burn_in,
            check=kernels.declared_winner,
        )
        state.verdict = verdict
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
                winner_reason="stopping rule: " + "; ".join(verdict.reasons),
            )
        except ConflictError:
            # Another process (or a hand-made change) moved the experiment on first.
            record = self._store.get_experiment(state.record.id)
        declared = assemble_state(record, state.arms, state.counts, state.evidence, now)
        declared.verdict = verdict
        return declared

    def _maybe_snapshot(self, state: ExperimentState, now: float) -> None:
        experiment_id = state.record.id
        last = self._last_snapshot.get(experiment_id)
        if last is not None and now - last < self._snapshot_interval:
            return
        if state.record.status in (ExperimentStatus.COMPLETED, ExperimentStatus.ARCHIVED):
            return
        self._last_snapshot[experiment_id] = now
        record = state.record
        # The report's estimates (one code path), kept for the active headlines.
        rates = rate_estimates(state.evidence, state.counts, record.alpha_prior, record.beta_prior)
        mean, low, high = rates.mean, rates.lower, rates.upper
        active = [int(a) for a in state.active]
        self._store.record_snapshot(
            Snapshot(
                experiment_id=experiment_id,
                at=now,
                arm_to_p_best={a: float(p) for a, p in zip(active, state.p_best, strict=True)},
                arm_to_allocation={
                    a: float(p) for a, p in zip(active, state.allocation, strict=True)
                },
                arm_to_estimate={
                    a: (float(mean[a]), float(low[a]), float(high[a])) for a in active
                },
                arm_to_sends={a: int(n) for a, n in zip(active, state.sends, strict=True)},
                burn_in=state.in_burn_in,
            )
        )


@functools.lru_cache(maxsize=64)
def age_edges(window_seconds: float) -> tuple[float, ...]:
    """The base grid of ages on which the store bins pending sends and open delays."""
    return tuple(float(t) for t in delay_grid(window_seconds))
