"""The storage contract: records and the :class:`Store` protocol.

The store (:class:`~headliner.storage.sql.SqlStore`, SQLAlchemy on SQLite or
PostgreSQL) keeps these promises on either database:

* Times are float seconds since the epoch (UTC) passed in by the caller, whose
  clock is injectable; a store never reads the wall clock itself.
* A method that returns has committed its write.
* Counts stay exact under concurrency: a write is an INSERT or a conditional,
  atomic UPDATE of one row; counts are aggregated from rows at read time
  (``arm_counts``), never read, changed in Python and written back.
* Unknown ids raise :class:`~headliner.core.errors.NotFoundError`; writes that
  clash with the current state raise :class:`~headliner.core.errors.ConflictError`.

Delayed feedback, the rule ``arm_counts`` applies at time ``now`` with the
experiment's attribution window ``w``:

* a decision opened at ``opened_at <= created_at + w`` (or given an explicit
  outcome 1) is an open; an explicit outcome 0 is a non-open at once;
* a decision with neither, once ``now >= created_at + w``, is a non-open;
  before that it is pending and moves nothing;
* an open reported after ``created_at + w`` is stored as late, not counted;
* a wave's sends follow the same rule as a block: opens reported by
  ``created_at + w`` count, the rest become non-opens at ``created_at + w``;
  opens reported later are late.

Opens count as they arrive but non-opens only at the end of the window, so
``opens / (opens + non_opens)`` leans towards headlines whose sends are
recent. The *matured cohort* has no such lean: it is the sends whose outcome
is final, chosen by when they were sent rather than by what happened to them:

* a decision is matured once ``now >= created_at + w``, or at once when it has
  an explicit 0/1 outcome (immediate feedback reports both kinds, so that
  choice does not favour opens); an open *reported* inside the window does not
  mature its send early;
* a wave's sends all mature at ``created_at + w``;
* ``matured_opens`` are the counted opens among matured sends. Every non-open
  is final, so ``matured == matured_opens + non_opens``.

Delay-aware counting removes the lean another way: a pending send counts as
the fraction ``G(age)`` of a trial, ``G`` being the open-delay curve (the share
of eventual opens reported within a given delay) and ``age`` how old the send
was when its opens were last looked at. The store keeps what that needs and
returns it grouped, raw: ``pending_sends`` (the sends and their ages) and
``open_delays`` (when counted opens arrived, from which ``G`` is estimated).
A per-send decision is looked at continuously, so its age is ``now -
created_at``; a wave's opens only when they are reported, so its age is
``reported_at - created_at``, and every increase of its counted opens is
logged with its time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


class ExperimentStatus(StrEnum):
    """Stored lifecycle of an experiment (``burn_in`` is derived, not stored)."""

    RUNNING = "running"
    WINNER_DECLARED = "winner_declared"
    COMPLETED = "completed"
    ARCHIVED = "archived"


#: Statuses in which an experiment still makes decisions and waves.
LIVE_STATUSES = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.WINNER_DECLARED})


class OpenResult(StrEnum):
    """What happened to a reported open."""

    COUNTED = "counted"  # first open of the decision, inside the window
    DUPLICATE = "duplicate"  # the decision already had an open (or outcome); nothing changed
    LATE = "late"  # after the attribution window: stored, not counted


@dataclass(frozen=True)
class ExperimentSpec:
    """What a new experiment is made of (validated by the caller)."""

    name: str
    headlines: Sequence[str]
    policy: str = "thompson"
    policy_settings: Mapping[str, float] = field(default_factory=dict)
    alpha_prior: float = 1.0
    beta_prior: float = 1.0
    attribution_window_seconds: float = 72 * 3600.0
    burn_in_per_arm: int = 0
    floor: float = 0.0
    winner_exploration: float = 0.0
    stopping: Mapping[str, Any] = field(default_factory=dict)
    burn_in_share: float = 1.0
    # {"median_seconds": ..., "p95_seconds": ..., "weight": ...} when set; empty: no prior.
    delay_prior: Mapping[str, float] = field(default_factory=dict)
    # The inputs of the plan it was created from (``headliner plan``), JSON-ready; None: none.
    plan: Mapping[str, Any] | None = None
    # What a success is: "opens", "clicks" or "conversions" (headliner.core.kpi.Kpi).
    kpi: str = "opens"


@dataclass(frozen=True)
class ExperimentRecord:
    """A stored experiment."""

    id: str
    name: str
    status: ExperimentStatus
    policy: str
    policy_settings: Mapping[str, float]
    alpha_prior: float
    beta_prior: float
    attribution_window_seconds: float
    burn_in_per_arm: int
    floor: float
    winner_exploration: float
    stopping: Mapping[str, Any]
    winner_arm: int | None
    created_at: float
    completed_at: float | None
    winner_reason: str | None  # why the winner was named, as recorded then
    burn_in_share: float
    delay_prior: Mapping[str, float]  # as in ExperimentSpec; empty when unset
    plan: Mapping[str, Any] | None = None  # as in ExperimentSpec
    # When the current winner was named (by the stopping rule or by hand); None: not yet,
    # or named before this was recorded.
    winner_declared_at: float | None = None
    kpi: str = "opens"  # as in ExperimentSpec


@dataclass(frozen=True)
class ArmRecord:
    """A headline of an experiment; ``arm`` is its 0-based position, stable for life."""

    experiment_id: str
    arm: int
    headline: str
    created_at: float
    retired_at: float | None

    @property
    def active(self) -> bool:
        """Whether the arm still receives sends."""
        return self.retired_at is None


@dataclass(frozen=True)
class ArmCounts:
    """Aggregated outcomes of one arm at a moment (see the module docstring).

    ``opens`` and ``non_opens`` feed the decision posterior; ``matured`` and
    ``matured_opens`` describe the matured cohort, which the stopping rule uses.
    """

    arm: int
    sends: int
    opens: int
    non_opens: int
    late_opens: int
    matured: int
    matured_opens: int

    @property
    def settled(self) -> int:
        """Sends the decision posterior counts: opens plus non-opens.

        Not :attr:`matured`: an open reported inside its window is settled
        before its send has matured.
        """
        return self.opens + self.non_opens

    @property
    def pending(self) -> int:
        """Sends still inside their attribution window without an open."""
        return self.sends - self.opens - self.non_opens


@dataclass(frozen=True, eq=False)
class PendingSends:
    """Sends still inside their attribution window with neither an open nor an outcome.

    Three arrays of equal length, one entry per group of pending sends; the
    groups come in no meaningful order. For delay-aware counting a group
    counts as ``count * G(age)`` trials of its arm, ``G`` being the open-delay
    curve: the share of eventual opens reported within ``age`` seconds.

    Attributes
    ----------
    arm : numpy.ndarray of int64
        The arm's position.
    age : numpy.ndarray of float64
        Seconds: how old the sends were when their opens were last looked at.
        Per-send decisions are looked at all the time, so this is their mean
        age at ``now`` (decisions are grouped by arm and by age bin). A wave's
        opens are looked at when they are reported, so it is
        ``reported_at - created_at``, 0 for a wave never reported. Never
        negative (a send stamped after ``now`` counts as just sent).
    count : numpy.ndarray of float64
        How many sends the group holds (at least 1).
    """

    arm: NDArray[np.int64]
    age: NDArray[np.float64]
    count: NDArray[np.float64]

    def __post_init__(self) -> None:
        if not len(self.arm) == len(self.age) == len(self.count):
            raise ValueError(
                f"arm, age and count must have equal lengths. Got {len(self.arm)}, "
                f"{len(self.age)} and {len(self.count)} instead."
            )

    def __len__(self) -> int:
        return len(self.count)


@dataclass(frozen=True, eq=False)
class OpenDelays:
    """When counted opens arrived after their sends, to estimate the open-delay curve.

    Three float64 arrays of equal length, one entry per group of opens; the
    groups come in no meaningful order. The data are right-truncated: an open
    is seen only if its delay is at most the age at which its send was last
    looked at, so every entry has ``delay <= observable`` and short delays are
    over-represented among recent sends. Opens of per-send decisions are
    binned on the caller's edges, the delay rounded up to its bin's upper edge
    and the observable age down to its bin's lower edge (groups where the two
    meet in one bin are dropped); a wave's reported increases are exact.
    Explicit outcomes (``record_outcome``) carry no timing and are left out,
    as are late opens.

    Attributes
    ----------
    delay : numpy.ndarray of float64
        Seconds from the send to the open's report.
    observable : numpy.ndarray of float64
        Seconds: the largest delay that could have been seen for these sends,
        the attribution window once their window has passed. Before that,
        for decisions the lower edge of their age bin at ``now``; for a wave
        ``max(reported_at, at) - created_at``, ``at`` being when its
        increase was reported.
    count : numpy.ndarray of float64
        How many opens the group holds.
    """

    delay: NDArray[np.float64]
    observable: NDArray[np.float64]
    count: NDArray[np.float64]

    def __post_init__(self) -> None:
        if not len(self.delay) == len(self.observable) == len(self.count):
            raise ValueError(
                f"delay, observable and count must have equal lengths. Got {len(self.delay)}, "
                f"{len(self.observable)} and {len(self.count)} instead."
            )

    def __len__(self) -> int:
        return len(self.count)


@dataclass(frozen=True)
class DecisionRecord:
    """One logged per-send decision (kept for audit and off-policy evaluation)."""

    id: str
    experiment_id: str
    arm: int
    propensity: float
    recipient_id: str | None
    idempotency_key: str | None
    created_at: float
    outcome: int | None  # 1 open (in window or explicit), 0 explicit non-open, None unknown
    opened_at: float | None  # first open report, even when late
    late: bool


@dataclass(frozen=True)
class EventRecord:
    """One stored event of a send (an open, a click, a conversion), counted or not.

    ``machine`` is what the sender said (a privacy proxy's open, a link
    scanner's click); ``user_agent`` and ``proxy_address`` are what it knew
    of where the event came from, None when it did not say.
    """

    id: str
    experiment_id: str
    decision_id: str
    arm: int
    type: str  # "open", "click" or "conversion" (headliner.core.kpi.EventType)
    machine: bool
    at: float
    user_agent: str | None
    proxy_address: str | None


@dataclass(frozen=True)
class EventCounts:
    """The stored events of one arm and one type: how many, and how many a machine made."""

    arm: int
    type: str
    events: int
    machine: int


@dataclass(frozen=True)
class WaveRecord:
    """A wave: a batch of sends split over arms; ``arm_to_opens`` are counted opens.

    ``reported_at`` is when the wave's opens were last observed inside its
    window: the time of the latest report made by ``created_at + window``
    (see :meth:`Store.record_wave_opens`); None if no such report was made.
    """

    id: str
    experiment_id: str
    created_at: float
    arm_to_sends: Mapping[int, int]
    arm_to_opens: Mapping[int, int]
    arm_to_late_opens: Mapping[int, int]
    reported_at: float | None


@dataclass(frozen=True)
class Snapshot:
    """The active arms' P(best), allocation share and estimate at one moment, for plots.

    ``arm_to_estimate`` holds each arm's delay-aware posterior mean and the
    bounds of its 95% credible interval, ``(mean, low, high)``, as the report
    computes them; ``arm_to_sends`` its sends so far; ``burn_in`` whether
    burn-in was on. Snapshots stored before these were recorded have None.
    """

    experiment_id: str
    at: float
    arm_to_p_best: Mapping[int, float]
    arm_to_allocation: Mapping[int, float]
    arm_to_estimate: Mapping[int, tuple[float, float, float]] | None = None
    arm_to_sends: Mapping[int, int] | None = None
    burn_in: bool | None = None


@dataclass(frozen=True, eq=False)
class PropensityGroups:
    """An experiment's sends in groups that share a headline, a propensity and a headcount.

    Arrays of equal length, one entry per group, in no meaningful order: the
    input of the off-policy estimates (inverse propensity weighting) and of
    the sample-ratio check. A per-send decision's propensity is the one it
    was logged with; a wave's sends of a headline get the headline's share of
    that wave. Groups without sends are left out.

    Attributes
    ----------
    arm : numpy.ndarray of int64
        The headline's position.
    propensity : numpy.ndarray of float64
        The chance the sends had of getting that headline, in (0, 1].
    n_arms : numpy.ndarray of int64
        Active headlines when the sends were made (a wave: the headlines it was split over).
    sends, opens : numpy.ndarray of int64
        Sends of the group and their counted opens (late opens left out).
    wave : numpy.ndarray of bool
        The group's sends came in a wave (False: per-send decisions).
    """

    arm: NDArray[np.int64]
    propensity: NDArray[np.float64]
    n_arms: NDArray[np.int64]
    sends: NDArray[np.int64]
    opens: NDArray[np.int64]
    wave: NDArray[np.bool_]

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in self.__dataclass_fields__}
        if len(lengths) != 1:
            raise ValueError(
                "arm, propensity, n_arms, sends, opens and wave must have equal lengths."
            )

    def __len__(self) -> int:
        return len(self.sends)


class KeyScope(StrEnum):
    """What an API key may do: everything, or only read (GET on /v1 and the dashboard)."""

    FULL = "full"
    READ = "read"


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key (only the hash of the secret is kept)."""

    id: str
    name: str
    created_at: float
    revoked_at: float | None
    scope: KeyScope = KeyScope.FULL


@runtime_checkable
class Store(Protocol):
    """Persistence for experiments, decisions, outcomes, events, waves, snapshots and API keys."""

    # --- experiments and arms -------------------------------------------------
    def create_experiment(
        self,
        spec: ExperimentSpec,
        now: float,
        *,
        check: Callable[[ExperimentRecord, list[ArmRecord]], object] | None = None,
    ) -> ExperimentRecord:
        """Store a new RUNNING experiment and its headlines as arms 0..K-1.

        ``check`` is called with the new record and arms before the
        transaction commits; if it raises, nothing is stored and its error
        propagates. ConflictError if two headlines are equal.
        """
        ...

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """The experiment, or NotFoundError."""
        ...

    def list_experiments(self, *, include_archived: bool = False) -> list[ExperimentRecord]:
        """Experiments, newest first (equal ``created_at`` by creation order, newest first)."""
        ...

    def set_status(
        self,
        experiment_id: str,
        status: ExperimentStatus,
        now: float,
        *,
        allowed_from: frozenset[ExperimentStatus],
        winner_arm: int | None = None,
        winner_reason: str | None = None,
    ) -> ExperimentRecord:
        """Move to ``status`` atomically if the current status is in ``allowed_from``.

        ConflictError (naming the current status) otherwise. ``winner_arm`` and
        ``winner_reason`` are stored when given (NotFoundError if no such
        arm); COMPLETED also sets ``completed_at``. Naming a winner sets
        ``winner_declared_at`` to ``now``, unless the same winner was named
        before (its first time is kept).
        """
        ...

    def list_arms(self, experiment_id: str) -> list[ArmRecord]:
        """All arms, retired ones included, by position."""
        ...

    def add_arm(self, experiment_id: str, headline: str, now: float) -> ArmRecord:
        """Append a headline as the next position; ConflictError if the headline exists."""
        ...

    def retire_arm(self, experiment_id: str, arm: int, now: float) -> ArmRecord:
        """Stop sending an arm (its data stays); ConflictError if it is the last active one.

        Retiring an already retired arm returns it unchanged (first time kept).
        """
        ...

    # --- per-send decisions ---------------------------------------------------
    def record_decision(
        self,
        experiment_id: str,
        arm: int,
        propensity: float,
        now: float,
        *,
        recipient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[DecisionRecord, bool]:
        """Log a decision; with a known ``idempotency_key`` return the stored one.

        Returns ``(decision, created)``; ``created`` is False for a replay (the
        stored decision is returned whatever ``arm`` this call passed).
        NotFoundError for an unknown experiment or arm. ConflictError, naming
        the status, unless the experiment is live (:data:`LIVE_STATUSES`),
        checked in the same statement as the insert, so a caller whose view of
        the status is stale cannot log a decision after completion. A replay is
        returned in any status: the decision was made while the experiment was
        live, and a client retrying a lost response must learn its headline.
        """
        ...

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """The decision, or NotFoundError."""
        ...

    def find_decision(self, experiment_id: str, idempotency_key: str) -> DecisionRecord | None:
        """The experiment's decision logged under ``idempotency_key``, or None."""
        ...

    def list_decisions(
        self, experiment_id: str, *, after: str | None = None, limit: int = 100
    ) -> list[DecisionRecord]:
        """At most ``limit`` of the experiment's decisions, oldest first, after ``after``.

        Ordered by ``created_at``, equal times by id; ``after`` is the id of
        the last decision of the previous page (None: from the first): pages
        never repeat a decision, nor skip one logged before the previous page
        was read.
        NotFoundError for an unknown experiment; InvalidParameterError
        (parameter ``after``) if ``after`` is not a decision of this
        experiment, or (``limit``) unless ``limit`` is a positive integer.
        """
        ...

    def record_open(
        self, experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> OpenResult:
        """Record an open for a decision, idempotently.

        "Open" is the success of the experiment's KPI, whatever that is (an
        open, a click, a conversion): the counts call every success an open.

        NotFoundError for an unknown decision; ConflictError if the decision
        belongs to another experiment.
        """
        ...

    def record_outcome(self, experiment_id: str, decision_id: str, reward: int, now: float) -> bool:
        """Set an explicit 0/1 outcome (immediate feedback); False if one was already set.

        ConflictError if a different outcome is already stored (a reported open,
        counted or late, is an outcome of 1) or if the decision belongs to
        another experiment; NotFoundError for an unknown decision.
        """
        ...

    # --- events ---------------------------------------------------------------
    def record_event(
        self,
        experiment_id: str,
        decision_id: str,
        event_type: str,
        now: float,
        *,
        machine: bool = False,
        user_agent: str | None = None,
        proxy_address: str | None = None,
    ) -> EventRecord:
        """Store an event of a decision's send, with the decision's arm; nothing else changes.

        Every call stores a new event, a repeated one too: whether it counts
        toward the KPI is the caller's to decide, and counting goes through
        :meth:`record_open`, which is idempotent. NotFoundError for an
        unknown decision; ConflictError if it belongs to another experiment
        (then nothing is stored).
        """
        ...

    def event_counts(self, experiment_id: str) -> list[EventCounts]:
        """The stored events per arm and type (one grouped query), by arm then type.

        Only pairs with at least one event are listed. NotFoundError for an
        unknown experiment.
        """
        ...

    # --- waves ----------------------------------------------------------------
    def record_wave(
        self, experiment_id: str, arm_to_sends: Mapping[int, int], now: float
    ) -> WaveRecord:
        """Store a wave's sends per arm as pending; NotFoundError for an unknown arm.

        ConflictError, naming the status, unless the experiment is live,
        checked in the same statement as the insert (as for decisions).
        """
        ...

    def get_wave(self, experiment_id: str, wave_id: str) -> WaveRecord:
        """The wave, or NotFoundError."""
        ...

    def record_wave_opens(
        self,
        experiment_id: str,
        wave_id: str,
        arm_to_total_opens: Mapping[int, int],
        now: float,
        window_seconds: float,
    ) -> WaveRecord:
        """Raise each arm's running total of opens for the wave (idempotent).

        Totals never go down: a total equal to the stored one changes nothing
        (a retry is harmless); ConflictError, naming the arm's headline and
        the stored total, if a total is below the stored one. Increases
        reported by ``created_at + window`` count; later increases are late.
        ConflictError if a total exceeds the arm's sends (an arm absent from
        the wave has 0 sends). A refused report changes nothing, whatever
        else it raises: all or nothing.

        Reports of one wave are serialized, so that each in-window increase
        of an arm's counted opens is logged exactly, with ``now``, for
        :meth:`open_delays` (late increases are not). A report made by
        ``created_at + window`` sets ``reported_at`` to ``now`` (never back in
        time): totals equal to the stored ones say "still these totals at
        ``now``", and arms the report does not name are taken as observed at
        ``now`` too, unchanged.
        """
        ...

    # --- aggregation ----------------------------------------------------------
    def arm_counts(self, experiment_id: str, now: float, window_seconds: float) -> list[ArmCounts]:
        """Counts per arm (every arm, by position), aggregated in the database."""
        ...

    def pending_sends(
        self,
        experiment_id: str,
        now: float,
        window_seconds: float,
        age_edges: Sequence[float],
    ) -> PendingSends:
        """The sends inside their window with neither an open nor an outcome, in groups.

        Decisions sent after ``now - window_seconds`` with no open and no
        outcome are grouped by arm and by the bin of their age
        ``now - created_at`` among ``age_edges`` (bin ``b`` holds ages in
        ``[age_edges[b], age_edges[b + 1])``); a group's ``age`` is their mean
        age. Waves created after ``now - window_seconds`` give one group per
        arm with unopened sends, ``count = sends - opens - late_opens``, ``age =
        reported_at - created_at`` (0 if never reported). NotFoundError for an
        unknown experiment.

        ``age_edges`` is sorted, starts at 0 and ends at ``window_seconds``
        (InvalidParameterError otherwise); about 41 log-spaced values.
        """
        ...

    def open_delays(
        self,
        experiment_id: str,
        now: float,
        window_seconds: float,
        age_edges: Sequence[float],
    ) -> OpenDelays:
        """The delays of counted opens and the ages they could be seen by, in groups.

        Decisions opened inside their window: the delay ``opened_at -
        created_at`` falls in bin ``b`` of ``age_edges`` and is given as
        ``age_edges[b + 1]``; the observable age is ``window_seconds`` for a
        send at least that old, else the lower edge ``age_edges[m]`` of the
        bin ``m`` of its age ``now - created_at``; groups with ``age_edges[b +
        1] > observable`` are dropped. Waves: one entry per logged increase
        (see :meth:`record_wave_opens`), delay ``at - created_at``,
        observable ``window_seconds`` once the wave's window has passed, else
        ``max(reported_at, at) - created_at``. Explicit outcomes have no
        timing and are left out. NotFoundError for an unknown experiment;
        ``age_edges`` as for :meth:`pending_sends`.
        """
        ...

    def propensity_groups(self, experiment_id: str) -> PropensityGroups:
        """Every send so far, grouped by headline, propensity and active headlines.

        Per-send decisions by ``(arm, propensity)`` and by the number of
        headlines active when they were made (from the arms' creation and
        retirement times); each wave's sends of a headline as one group whose
        propensity is the headline's share of the wave. Scans the decisions:
        not for the hot path. NotFoundError for an unknown experiment.
        """
        ...

    def sends_since(self, experiment_id: str, since: float) -> int:
        """Sends (decisions and waves' sends) made at ``since`` or later; NotFoundError if unknown.

        Inclusive, so that a window of hours holds as many hourly waves as hours.
        """
        ...

    def record_snapshot(self, snapshot: Snapshot) -> None:
        """Append a snapshot."""
        ...

    def list_snapshots(self, experiment_id: str, *, limit: int = 1000) -> list[Snapshot]:
        """Snapshots, oldest first (the latest ``limit``)."""
        ...

    # --- API keys -------------------------------------------------------------
    def create_api_key(
        self, name: str, secret_hash: str, now: float, *, scope: KeyScope = KeyScope.FULL
    ) -> ApiKeyRecord:
        """Store a key by the hash of its secret; ConflictError if the hash exists."""
        ...

    def find_api_key(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; None if unknown."""
        ...

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRecord:
        """Revoke a key (NotFoundError if unknown); revoking twice keeps the first time."""
        ...

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        ...

    def has_api_keys(self) -> bool:
        """Whether any key (revoked or not) exists: then every /v1 route needs one."""
        ...

    # --- housekeeping ---------------------------------------------------------
    def ping(self) -> None:
        """Raise if the database is not reachable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
