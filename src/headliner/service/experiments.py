"""The decision service's domain layer, shared by the HTTP routes and the CLI.

:class:`ExperimentService` turns requests into calls of the core policy code
and the store. It never re-implements a rule: a per-send decision is
:func:`headliner.core.allocation.guarded_choice` (floor, burn-in, then the
policy's own rule, the functions the compiled simulator runs), its propensity
and a wave's split come from :func:`headliner.core.allocation.guarded_probabilities`
(rounded by :func:`headliner.core.allocation.split_wave`), and after a winner
is declared :func:`headliner.core.allocation.winner_choice` takes over.

The hot paths (decide, open) cost one store write each: everything they read
comes from the per-experiment :class:`~headliner.service.state.StateCache`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from headliner.core.allocation import (
    GUARD_CONSTRAINTS,
    check_floor,
    guarded_choice,
    largest_remainder,
    winner_choice,
)
from headliner.core.delay import ATTRIBUTION_WINDOW, DelayPrior
from headliner.core.errors import ConflictError, NotFoundError
from headliner.core.kpi import DEFAULT_KPI, KPIS, counts_toward
from headliner.core.policies import LIVE_POLICIES, POLICY_CLASSES
from headliner.core.posterior import PRIOR_CONSTRAINTS
from headliner.core.stopping import StoppingRule, evaluate_stopping
from headliner.core.validation import Interval, fail, validate_params
from headliner.service.clock import Clock
from headliner.service.evidence import gather_evidence
from headliner.service.reporting import Report, build_report
from headliner.service.state import (
    ExperimentState,
    StateCache,
    assemble_state,
    delay_prior_of,
    first_state,
    stopping_to_mapping,
)
from headliner.sim.engine import kernels
from headliner.storage.base import (
    LIVE_STATUSES,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    EventRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    OpenDelays,
    OpenResult,
    PendingSends,
    Store,
    WaveRecord,
)

if TYPE_CHECKING:
    from headliner.storage.sql import AsyncHotWrites

#: The numbers of requests that only the service takes (the rest are declared in core).
REQUEST_CONSTRAINTS: dict[str, Interval] = {
    "sends": Interval(int, 1, 100_000_000),  # of a wave
    "reward": Interval(int, 0, 1),  # an explicit outcome: 1 a success of the KPI, 0 none
    "opens": Interval(int, 0),  # a headline's running total of a wave's opens
    "limit": Interval(int, 1, 1000),  # decisions per page of the decision log
    # POST /v1/plans: a request must not hog a worker (the CLI has no such bound)
    "plan_replications": Interval(int, 1, 2000),
    "plan_steps": Interval(int, 1, 5000),  # waves, or posterior refreshes of per-send traffic
}

_OWNER = "Experiment"
#: The recorded reason of a winner named by hand (``complete``).
HAND_PICKED = "named by hand when the experiment was completed"


def build_spec(
    name: str,
    headlines: Sequence[str],
    *,
    policy: str = "thompson",
    leader_probability: float | None = None,
    alpha_prior: float = 1.0,
    beta_prior: float = 1.0,
    attribution_window_seconds: float = 72 * 3600.0,
    burn_in_per_arm: int = 100,
    burn_in_share: float = 1.0,
    floor: float = 0.0,
    winner_exploration: float = 0.0,
    stopping: StoppingRule | None = None,
    auto_stop: bool = True,
    delay_prior: DelayPrior | None = None,
    plan: Mapping[str, Any] | None = None,
    kpi: str = DEFAULT_KPI,
) -> ExperimentSpec:
    """Validate a new experiment's settings and return its :class:`ExperimentSpec`.

    Parameters
    ----------
    name : str
    headlines : sequence of str
        At least two distinct, non-blank headlines.
    policy : {"thompson", "uniform", "top_two"}, default="thompson"
        ``"top-two"`` is accepted as a spelling of ``"top_two"``.
    leader_probability : float or None, default=None
        Top-two only: share of sends that go to the Thompson leader (default 0.5).
    alpha_prior, beta_prior : float, default=1.0
        Each at least :data:`~headliner.core.posterior.MIN_PRIOR` (0.001).
    attribution_window_seconds : float, default=259200.0 (72 h)
        A send without an open becomes a non-open once this has passed.
    burn_in_per_arm : int, default=100
        Effective (delay-adjusted) sends every headline needs before the
        policy takes over; until then the split is even.
    burn_in_share : float, default=1.0
        Cap on the total share of headlines still in burn-in while others are
        established (a headline added mid-run); each gets at most an even share.
    floor : float, default=0.0
        Minimum traffic share per arm; K · floor <= 1.
    winner_exploration : float, default=0.0
        Share of sends still spread uniformly after a winner is declared.
    stopping : StoppingRule or None, default=None
        None means the default :class:`StoppingRule` when ``auto_stop``.
    auto_stop : bool, default=True
        False keeps the experiment running until it is completed by hand.
    delay_prior : DelayPrior or None, default=None
        The open-delay curve assumed until the experiment's own opens tell it
        (None: :class:`~headliner.core.delay.DelayPrior`'s email default).
    plan : mapping or None, default=None
        The inputs of the plan the experiment is created from (stored with it,
        JSON-ready: :meth:`headliner.sim.plan.PlanSpec.model_dump`).
    kpi : {"opens", "clicks", "conversions"}, default="opens"
        What a success is (:mod:`headliner.core.kpi`): the ``open`` routes
        and the events of that type record one.

    Raises
    ------
    InvalidParameterError
        With the message form "The 'x' parameter of Experiment must be …".
    """
    if not isinstance(name, str) or not name.strip():
        raise fail("name", _OWNER, "a non-empty string", name)
    texts = list(headlines) if not isinstance(headlines, str) else None
    if texts is None or len(texts) < 2 or not all(isinstance(h, str) and h.strip() for h in texts):
        raise fail("headlines", _OWNER, "a list of at least 2 non-empty strings", headlines)
    if len(set(texts)) != len(texts):
        raise fail("headlines", _OWNER, "a list of distinct strings", texts)
    policy_name = LIVE_POLICIES.check(
        policy.replace("-", "_") if isinstance(policy, str) else policy, "policy", _OWNER
    )
    settings: dict[str, float] = {}
    if leader_probability is not None:
        if policy_name != "top_two":
            raise fail("leader_probability", _OWNER, "set only with policy 'top_two'", policy)
        settings["leader_probability"] = leader_probability
    policy_class = POLICY_CLASSES[policy_name]
    validate_params(policy_class.parameter_constraints, settings, _OWNER)
    validate_params(
        {**PRIOR_CONSTRAINTS, **GUARD_CONSTRAINTS},
        {
            "alpha_prior": alpha_prior,
            "beta_prior": beta_prior,
            "burn_in_per_arm": burn_in_per_arm,
            "burn_in_share": burn_in_share,
            "winner_exploration": winner_exploration,
        },
        _OWNER,
    )
    ATTRIBUTION_WINDOW.check(attribution_window_seconds, "attribution_window_seconds", _OWNER)
    KPIS.check(kpi, "kpi", _OWNER)
    rule = (stopping or StoppingRule()) if auto_stop else None
    return ExperimentSpec(
        name=name.strip(),
        headlines=texts,
        policy=policy_name,
        policy_settings={k: float(v) for k, v in settings.items()},
        alpha_prior=float(alpha_prior),
        beta_prior=float(beta_prior),
        attribution_window_seconds=float(attribution_window_seconds),
        burn_in_per_arm=int(burn_in_per_arm),
        burn_in_share=float(burn_in_share),
        floor=check_floor(floor, len(texts), _OWNER),
        winner_exploration=float(winner_exploration),
        stopping=stopping_to_mapping(rule),
        delay_prior=asdict(delay_prior) if delay_prior is not None else {},
        plan=None if plan is None else dict(plan),
        kpi=kpi,
    )


@dataclass(frozen=True)
class DecisionResult:
    """A per-send decision as returned to the caller."""

    decision: DecisionRecord
    headline: str
    replayed: bool


class KeyReusedError(ConflictError):
    """An idempotency key already used for a request with other details (a 409)."""


def _same_request(result: DecisionResult, recipient_id: str | None) -> DecisionResult:
    """``result``, unless it replays a decision made for another request: KeyReusedError.

    A decision request has two details, the key and ``recipient_id``; the key
    being equal, the stored ``recipient_id`` tells a retry from a reuse.
    """
    if result.replayed and result.decision.recipient_id != recipient_id:
        raise KeyReusedError(
            "The Idempotency-Key was already used for a different request in this "
            "experiment (another recipient_id): a new send needs a new key, and a retry "
            "must repeat the first request exactly."
        )
    return result


@dataclass(frozen=True)
class _Choice:
    """The arm chosen for one send, before it is logged."""

    state: ExperimentState
    index: int  # among the active arms
    arm: int  # the arm's position
    propensity: float


@dataclass(frozen=True)
class DecisionPage:
    """A page of the decision log, oldest first, with the headline of every arm.

    ``next_after`` is the ``after`` of the next page; None on the last page.
    """

    decisions: Sequence[DecisionRecord]
    headlines: Mapping[int, str]
    next_after: str | None


@dataclass(frozen=True)
class EventResult:
    """A stored event, and what it did to the experiment's KPI.

    ``result`` is what recording the KPI success did (counted, duplicate or
    late) when the event is a success of the KPI; None when it is not (of
    another type, or made by a machine), and ``reason`` then says which.
    """

    event: EventRecord
    result: OpenResult | None
    reason: str | None

    @property
    def counted(self) -> bool:
        """Whether the event counted toward the KPI (now, for the first time)."""
        return self.result is OpenResult.COUNTED


#: Why a success of the KPI did not count, by what recording it returned.
_NOT_COUNTED = {
    OpenResult.DUPLICATE: "the send's success was already recorded: stored, not counted again",
    OpenResult.LATE: "after the attribution window: stored as a late success, not counted",
}


@dataclass(frozen=True)
class WaveResult:
    """A wave with the headline of every arm it names (and, when just split, why so)."""

    wave: WaveRecord
    headlines: Mapping[int, str]
    reason: str | None = None


class ExperimentService:
    """Experiments, decisions, waves, outcomes and reports over one :class:`Store`.

    Parameters
    ----------
    store : Store
    clock : Clock
    rng : numpy.random.Generator
        One generator per process (seeded from OS entropy in production).
    posterior_refresh_seconds : float, default=1.0
    snapshot_interval_seconds : float, default=60.0
    refresh_in_background : bool, default=True
        Rebuild a stale posterior in a background thread (False: in the request).
    report_cache_seconds : float, default=0.0
        A report is reused for this long (0 = built on every call); a change
        of status or headlines drops it at once.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        rng: np.random.Generator,
        *,
        posterior_refresh_seconds: float = 1.0,
        snapshot_interval_seconds: float = 60.0,
        refresh_in_background: bool = True,
        report_cache_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rng = rng
        self._report_max_age = report_cache_seconds
        # Reports are built one at a time (viewers who ask at once wait for one
        # build), and each is kept with the state cache's generation it was built at.
        self._report_build = threading.Lock()
        self._reports: dict[tuple[str, int], tuple[int, Report]] = {}
        self.cache = StateCache(
            store,
            clock,
            max_age=posterior_refresh_seconds,
            snapshot_interval=snapshot_interval_seconds,
            background=refresh_in_background,
        )

    # --- experiments ----------------------------------------------------------
    def create(self, spec: ExperimentSpec) -> ExperimentRecord:
        """Store a new running experiment (``spec`` from :func:`build_spec`); all or nothing."""
        return self.start(spec).record

    def start(self, spec: ExperimentSpec) -> ExperimentState:
        """Store a new running experiment and return its first state; all or nothing.

        The state (posterior, P(best), first split) is built inside the store's
        transaction, so an experiment the numeric core cannot serve is never
        stored, and the caller needs no read after the commit that could fail
        once the experiment exists (a client would then retry and create a twin).
        """
        now = self.clock.now()
        built: list[ExperimentState] = []

        def check(record: ExperimentRecord, arms: list[ArmRecord]) -> None:
            built.append(first_state(record, arms, now))

        self.store.create_experiment(spec, now, check=check)
        return built[0]

    def list_experiments(self, *, include_archived: bool = False) -> list[ExperimentRecord]:
        """Experiments, newest first."""
        return self.store.list_experiments(include_archived=include_archived)

    def state(self, experiment_id: str, *, fresh: bool = False) -> ExperimentState:
        """The experiment's cached state (``fresh`` forces a re-read)."""
        return self.cache.get(experiment_id, max_age=0.0 if fresh else None)

    def complete(self, experiment_id: str, *, winner: int | str) -> ExperimentRecord:
        """End a running experiment by hand, naming the winning arm (position or headline)."""
        arm = self._resolve_arm(experiment_id, winner)
        if not arm.active:
            raise ConflictError(f"Headline {arm.arm} is retired and cannot be declared the winner.")
        # Confirming the winner the stopping rule declared keeps the rule's reason.
        confirmed = self.store.get_experiment(experiment_id).winner_arm == arm.arm
        record = self.store.set_status(
            experiment_id,
            ExperimentStatus.COMPLETED,
            self.clock.now(),
            allowed_from=LIVE_STATUSES,
            winner_arm=arm.arm,
            winner_reason=None if confirmed else HAND_PICKED,
        )
        self.cache.invalidate(experiment_id)
        return record

    def archive(self, experiment_id: str) -> ExperimentRecord:
        """Hide an experiment from lists and stop its decisions; its data stays."""
        record = self.store.set_status(
            experiment_id,
            ExperimentStatus.ARCHIVED,
            self.clock.now(),
            allowed_from=frozenset(ExperimentStatus) - {ExperimentStatus.ARCHIVED},
        )
        self.cache.invalidate(experiment_id)
        return record

    # --- arms -----------------------------------------------------------------
    def add_arm(self, experiment_id: str, headline: str) -> ArmRecord:
        """Add a headline to a running experiment (it gets the next position)."""
        if not isinstance(headline, str) or not headline.strip():
            raise fail("headline", "Headline", "a non-empty string", headline)
        state = self.state(experiment_id, fresh=True)
        record = state.record
        if record.status is not ExperimentStatus.RUNNING:
            raise ConflictError(
                f"Experiment {experiment_id} is {record.status.value}: headlines can only be "
                "added while it is running."
            )
        if record.floor * (state.n_active + 1) > 1.0:
            raise ConflictError(
                f"A floor of {record.floor} leaves no room for headline {state.n_active + 1}."
            )
        arm = self.store.add_arm(experiment_id, headline, self.clock.now())
        self.cache.invalidate(experiment_id)
        return arm

    def retire_arm(self, experiment_id: str, arm: int) -> ArmRecord:
        """Stop sending a headline; its data stays in the report."""
        record = self.store.get_experiment(experiment_id)
        if record.winner_arm == arm:
            raise ConflictError(f"Headline {arm} is the declared winner and cannot be retired.")
        retired = self.store.retire_arm(experiment_id, arm, self.clock.now())
        self.cache.invalidate(experiment_id)
        return retired

    def _resolve_arm(self, experiment_id: str, arm: int | str) -> ArmRecord:
        arms = self.store.list_arms(experiment_id)
        for candidate in arms:
            if candidate.arm == arm or candidate.headline == arm:
                return candidate
        raise NotFoundError(f"Headline {arm!r} not found in experiment {experiment_id}.")

    # --- per-send decisions ---------------------------------------------------
    def decide(
        self,
        experiment_id: str,
        *,
        recipient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """Choose the headline for one send, log it, and return it with its propensity.

        A known ``idempotency_key`` returns the decision stored under it, even
        once the experiment has ended: it was made while the experiment was
        live, and a client retrying a lost response must learn its headline.
        Otherwise ConflictError once the experiment is completed or archived,
        from the cached status or, when that is stale, from the store itself.

        A known key sent with another ``recipient_id`` than the stored
        decision's is not a retry but a reuse: :class:`KeyReusedError`. Only
        a replay is compared, with the row its write or look-up already read,
        so a first request costs nothing more.
        """
        choice = self._choose(experiment_id, idempotency_key)
        if isinstance(choice, DecisionResult):
            return _same_request(choice, recipient_id)
        with self._stale_on_conflict(experiment_id):
            decision, created = self.store.record_decision(
                experiment_id,
                choice.arm,
                choice.propensity,
                self.clock.now(),
                recipient_id=recipient_id,
                idempotency_key=idempotency_key,
            )
        return _same_request(self._decided(choice, decision, created), recipient_id)

    async def decide_async(
        self,
        writes: AsyncHotWrites,
        experiment_id: str,
        *,
        recipient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DecisionResult:
        """:meth:`decide`, with the decision's write awaited through ``writes``."""
        choice = self._choose(experiment_id, idempotency_key)
        if isinstance(choice, DecisionResult):
            return _same_request(choice, recipient_id)
        with self._stale_on_conflict(experiment_id):
            decision, created = await writes.record_decision(
                experiment_id,
                choice.arm,
                choice.propensity,
                self.clock.now(),
                recipient_id=recipient_id,
                idempotency_key=idempotency_key,
            )
        return _same_request(self._decided(choice, decision, created), recipient_id)

    @contextmanager
    def _stale_on_conflict(self, experiment_id: str) -> Iterator[None]:
        """Drop the cached state when the store refuses a write with ConflictError.

        The store saw a status this process has not yet: the next request
        re-reads it instead of choosing again from the stale state.
        """
        try:
            yield
        except ConflictError:
            self.cache.invalidate(experiment_id)
            raise

    def _choose(self, experiment_id: str, idempotency_key: str | None) -> _Choice | DecisionResult:
        """The arm to log for one send; or, once the experiment ended, the replayed decision."""
        state = self.cache.get(experiment_id)
        record = state.record
        if record.status not in LIVE_STATUSES:
            return self._replay_or_refuse(state, idempotency_key)
        if record.status is ExperimentStatus.RUNNING:
            # Floor, burn-in, then the policy's own rule: the very functions the
            # compiled simulator runs, on the delay-aware counts.
            arm = guarded_choice(
                state.policy.code,
                state.params(),
                state.effective_opens,
                state.effective_non_opens,
                int(state.sends.sum()),
                state.memory,
                state.short,
                record.burn_in_share,
                record.floor,
                self.rng,
            )
        else:
            winner = state.winner_index
            arm = winner_choice(
                -1 if winner is None else winner,
                state.n_active,
                record.winner_exploration,
                self.rng,
            )
        return _Choice(state, arm, int(state.active[arm]), float(state.allocation[arm]))

    @staticmethod
    def _decided(choice: _Choice, decision: DecisionRecord, created: bool) -> DecisionResult:
        if created:
            choice.state.sends[choice.index] += 1
        return DecisionResult(decision, choice.state.headline(decision.arm), replayed=not created)

    def _replay_or_refuse(
        self, state: ExperimentState, idempotency_key: str | None
    ) -> DecisionResult:
        """The stored decision of a retried request, or ConflictError: the experiment ended."""
        record = state.record
        if idempotency_key is not None:
            decision = self.store.find_decision(record.id, idempotency_key)
            if decision is not None:
                return DecisionResult(decision, state.headline(decision.arm), replayed=True)
        raise ConflictError(
            f"Experiment {record.id} is {record.status.value}: it makes no more decisions."
        )

    def get_decision(self, experiment_id: str, decision_id: str) -> DecisionResult:
        """A logged decision of this experiment."""
        decision = self.store.get_decision(decision_id)
        if decision.experiment_id != experiment_id:
            raise NotFoundError(f"Decision {decision_id} not found in experiment {experiment_id}.")
        state = self.cache.get(experiment_id)
        return DecisionResult(decision, state.headline(decision.arm), replayed=False)

    def find_decision(self, experiment_id: str, idempotency_key: str) -> DecisionResult:
        """The decision logged under the caller's send key (its idempotency key).

        Email service providers report events by their own message id: a
        sender that used it as the key finds the decision by it. NotFoundError
        if no decision of the experiment has that key.
        """
        decision = self.store.find_decision(experiment_id, idempotency_key)
        if decision is None:
            raise NotFoundError(
                f"No decision with this idempotency key in experiment {experiment_id}."
            )
        headline = self._headlines(experiment_id)[decision.arm]
        return DecisionResult(decision, headline, replayed=False)

    def record_open_by_key(
        self, experiment_id: str, idempotency_key: str
    ) -> tuple[str, OpenResult]:
        """:meth:`record_open` for the decision logged under ``idempotency_key``.

        Returns the decision's id with the result; NotFoundError if no such decision.
        """
        decision = self.find_decision(experiment_id, idempotency_key).decision
        return decision.id, self.record_open(experiment_id, decision.id)

    def list_decisions(
        self, experiment_id: str, *, after: str | None = None, limit: int = 100
    ) -> DecisionPage:
        """A page of at most ``limit`` (1 to 1000) decisions, oldest first, after ``after``."""
        n = int(REQUEST_CONSTRAINTS["limit"].check(limit, "limit", "DecisionList"))
        # One more than asked says whether another page follows.
        records = self.store.list_decisions(experiment_id, after=after, limit=n + 1)
        page = records[:n]
        next_after = page[-1].id if len(records) > n else None
        return DecisionPage(page, self._headlines(experiment_id), next_after)

    def _headlines(self, experiment_id: str) -> dict[int, str]:
        # From the store, not the cache: a headline added by another worker is in the log.
        return {arm.arm: arm.headline for arm in self.store.list_arms(experiment_id)}

    def record_open(self, experiment_id: str, decision_id: str) -> OpenResult:
        """Report a success of the experiment's KPI for the send of ``decision_id`` (idempotent).

        Called an open, whatever the KPI is: in a click experiment the caller
        reports a click here. Stores no event (:meth:`record_event` does).
        """
        window = self.cache.get(experiment_id).record.attribution_window_seconds
        return self.store.record_open(experiment_id, decision_id, self.clock.now(), window)

    async def record_open_async(
        self, writes: AsyncHotWrites, experiment_id: str, decision_id: str
    ) -> OpenResult:
        """:meth:`record_open`, with the write awaited through ``writes``."""
        window = self.cache.get(experiment_id).record.attribution_window_seconds
        return await writes.record_open(experiment_id, decision_id, self.clock.now(), window)

    def record_event(
        self,
        experiment_id: str,
        decision_id: str,
        event_type: str,
        *,
        machine: bool = False,
        user_agent: str | None = None,
        proxy_address: str | None = None,
    ) -> EventResult:
        """Store an event of a send; record it as the KPI's success when it counts.

        Every event is stored. It counts only when its type is the
        experiment's KPI's and no machine made it
        (:func:`headliner.core.kpi.counts_toward`); it is then recorded as
        :meth:`record_open` records it, through the same store method, so the
        same send never counts twice and after the window it is late.
        NotFoundError for an unknown experiment or decision (nothing stored).
        """
        record = self.cache.get(experiment_id).record
        verdict = counts_toward(record.kpi, event_type, machine)
        now = self.clock.now()
        event = self.store.record_event(
            experiment_id,
            decision_id,
            event_type,
            now,
            machine=machine,
            user_agent=user_agent,
            proxy_address=proxy_address,
        )
        if not verdict.counts:
            return EventResult(event, None, verdict.reason)
        window = record.attribution_window_seconds
        result = self.store.record_open(experiment_id, decision_id, now, window)
        return EventResult(event, result, _NOT_COUNTED.get(result))

    def record_event_by_key(
        self,
        experiment_id: str,
        idempotency_key: str,
        event_type: str,
        *,
        machine: bool = False,
        user_agent: str | None = None,
        proxy_address: str | None = None,
    ) -> EventResult:
        """:meth:`record_event` for the decision logged under ``idempotency_key``."""
        decision = self.find_decision(experiment_id, idempotency_key).decision
        return self.record_event(
            experiment_id,
            decision.id,
            event_type,
            machine=machine,
            user_agent=user_agent,
            proxy_address=proxy_address,
        )

    def record_outcome(self, experiment_id: str, decision_id: str, reward: int) -> bool:
        """Set an explicit 0/1 outcome; False if the same outcome was already stored."""
        value = int(REQUEST_CONSTRAINTS["reward"].check(reward, "reward", "Outcome"))
        self.cache.get(experiment_id)  # 404 for an unknown experiment before the decision
        return self.store.record_outcome(experiment_id, decision_id, value, self.clock.now())

    # --- waves ----------------------------------------------------------------
    def allocate(self, experiment_id: str, n_sends: int) -> WaveResult:
        """Split a wave of ``n_sends`` over the active headlines and record it as pending."""
        n = int(REQUEST_CONSTRAINTS["sends"].check(n_sends, "sends", "Allocation"))
        # A wave moves many sends at once, so it is worth a fresh posterior.
        state = self.state(experiment_id, fresh=True)
        record = state.record
        if record.status not in LIVE_STATUSES:
            raise ConflictError(
                f"Experiment {experiment_id} is {record.status.value}: "
                "it makes no more allocations."
            )
        split = largest_remainder(n, state.allocation)
        arm_to_sends = {int(a): int(c) for a, c in zip(state.active, split, strict=True)}
        wave = self.store.record_wave(experiment_id, arm_to_sends, self.clock.now())
        state.sends += split
        return self._wave_result(state, wave, reason=state.allocation_reason())

    def get_wave(self, experiment_id: str, wave_id: str) -> WaveResult:
        """A wave with its sends and opens per headline."""
        wave = self.store.get_wave(experiment_id, wave_id)
        return self._wave_result(self.cache.get(experiment_id), wave)

    def record_wave_opens(
        self, experiment_id: str, wave_id: str, totals: Mapping[int | str, int]
    ) -> WaveResult:
        """Raise the running totals of opens per headline (position or text) of a wave.

        Read from the store, not the state cache: a refresh started here would
        take the stopping rule's look of the hour before these totals are
        stored, and the look would miss the wave's opens until the next hour.
        """
        record = self.store.get_experiment(experiment_id)
        arms = self.store.list_arms(experiment_id)
        by_text = {a.headline: a.arm for a in arms}
        arm_to_total: dict[int, int] = {}
        for key, total in totals.items():
            arm = by_text.get(key) if isinstance(key, str) else key
            if arm is None or not 0 <= arm < len(arms):
                raise NotFoundError(f"Headline {key!r} not found in experiment {experiment_id}.")
            arm_to_total[arm] = int(REQUEST_CONSTRAINTS["opens"].check(total, "opens", "WaveOpens"))
        wave = self.store.record_wave_opens(
            experiment_id,
            wave_id,
            arm_to_total,
            self.clock.now(),
            record.attribution_window_seconds,
        )
        return WaveResult(wave, {arm: arms[arm].headline for arm in wave.arm_to_sends})

    @staticmethod
    def _wave_result(
        state: ExperimentState, wave: WaveRecord, *, reason: str | None = None
    ) -> WaveResult:
        return WaveResult(wave, {arm: state.headline(arm) for arm in wave.arm_to_sends}, reason)

    # --- report ---------------------------------------------------------------
    def report(self, experiment_id: str, *, snapshot_limit: int = 1000) -> Report:
        """Everything a campaign owner looks at, from freshly aggregated counts.

        A report costs an aggregate over every send and two numerical
        integrations (tens of milliseconds), so one built less than
        ``report_cache_seconds`` ago is returned instead.
        """
        key = (experiment_id, snapshot_limit)
        with self._report_build:
            generation = self.cache.generation(experiment_id)
            cached = self._reports.get(key)
            if (
                cached is not None
                and cached[0] == generation  # no change to the experiment since
                and self.clock.now() - cached[1].generated_at < self._report_max_age
            ):
                return cached[1]
            state = self.state(experiment_id, fresh=True)
            snapshots = self.store.list_snapshots(experiment_id, limit=snapshot_limit)
            events = self.store.event_counts(experiment_id)
            now = self.clock.now()
            report = build_report(state, snapshots, now=now, events=events)
            if self._report_max_age > 0:
                self._reports = {
                    k: entry
                    for k, entry in self._reports.items()
                    if now - entry[1].generated_at < self._report_max_age
                }
                # Kept with the generation read before the build: a report built
                # across a change is stale at once and rebuilt on the next call.
                self._reports[key] = (generation, report)
        return report


def warm_up() -> None:
    """Run the decision path and the report once on made-up data, loading their kernels.

    The service's numeric work runs in numba-compiled twins of the core
    functions. The first call of each in a process loads its machine code
    from numba's on-disk cache (compiling it when the cache is cold, once per
    install, which takes about a minute); doing that at start-up keeps it off
    the first requests. Nothing is stored.
    """
    window = 3600.0
    record = ExperimentRecord(
        id="warm-up",
        name="warm-up",
        status=ExperimentStatus.RUNNING,
        policy="thompson",
        policy_settings={},
        alpha_prior=1.0,
        beta_prior=1.0,
        attribution_window_seconds=window,
        burn_in_per_arm=0,
        burn_in_share=1.0,
        floor=0.0,
        winner_exploration=0.0,
        stopping={},
        winner_arm=None,
        created_at=0.0,
        completed_at=None,
        winner_reason=None,
        delay_prior={},
    )
    arms = [ArmRecord(record.id, k, f"headline {k}", 0.0, None) for k in range(2)]
    counts = [ArmCounts(k, 100, 10 + k, 50, 0, 60, 10) for k in range(2)]
    pending = PendingSends(
        arm=np.array([0, 1], dtype=np.int64),
        age=np.array([600.0, 600.0]),
        count=np.array([40.0, 39.0]),
    )
    delays = OpenDelays(
        delay=np.array([300.0]), observable=np.array([600.0]), count=np.array([3.0])
    )
    evidence = gather_evidence(counts, pending, delays, window, delay_prior_of(record))
    state = assemble_state(record, arms, counts, evidence, window)
    evaluate_stopping(
        StoppingRule(),
        state.effective_opens,
        state.effective_non_opens,
        float(state.opens.sum()),
        check=kernels.declared_winner,
    )
    build_report(state, [], now=window)
