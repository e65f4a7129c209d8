"""An in-memory :class:`~headliner.storage.base.Store` for unit tests and ``memory://``.

Everything lives in plain dicts guarded by one lock, so a method is atomic
with respect to every other; nothing survives the process. The counting rules
are the ones in :mod:`headliner.storage.base`, written the same way as the SQL
store's queries (a send is inside its window while ``created_at >= now - w``
and matured once ``created_at <= now - w``) so that both give the same numbers
at the boundary.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from headliner.storage import _common as common
from headliner.storage.base import (
    LIVE_STATUSES,
    ApiKeyRecord,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    OpenResult,
    Snapshot,
    WaveRecord,
)

__all__ = ["InMemoryStore"]


@dataclass
class _Wave:
    """Mutable per-wave state (a :class:`WaveRecord` is made on the way out)."""

    id: str
    experiment_id: str
    created_at: float
    arm_to_sends: dict[int, int]
    arm_to_opens: dict[int, int]
    arm_to_late_opens: dict[int, int]

    def record(self) -> WaveRecord:
        return WaveRecord(
            id=self.id,
            experiment_id=self.experiment_id,
            created_at=self.created_at,
            arm_to_sends=dict(self.arm_to_sends),
            arm_to_opens=dict(self.arm_to_opens),
            arm_to_late_opens=dict(self.arm_to_late_opens),
        )


@dataclass
class _Experiment:
    """An experiment with everything that hangs off it."""

    record: ExperimentRecord
    arms: list[ArmRecord] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    idempotency_keys: dict[str, str] = field(default_factory=dict)
    wave_ids: list[str] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)


class InMemoryStore:
    """A thread-safe, process-local store (one lock around every method).

    Examples
    --------
    >>> from headliner.storage.base import ExperimentSpec
    >>> store = InMemoryStore()
    >>> exp = store.create_experiment(ExperimentSpec("demo", ["A", "B"]), now=0.0)
    >>> [arm.headline for arm in store.list_arms(exp.id)]
    ['A', 'B']
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Insertion order of this dict is creation order: list_experiments reverses it.
        self._experiments: dict[str, _Experiment] = {}
        self._decisions: dict[str, DecisionRecord] = {}
        self._waves: dict[str, _Wave] = {}
        self._keys: dict[str, ApiKeyRecord] = {}
        self._key_hashes: dict[str, str] = {}

    # --- helpers (call with the lock held) ------------------------------------
    def _experiment(self, experiment_id: str) -> _Experiment:
        try:
            return self._experiments[experiment_id]
        except KeyError:
            raise common.experiment_not_found(experiment_id) from None

    @staticmethod
    def _arm(exp: _Experiment, arm: int) -> ArmRecord:
        if not 0 <= arm < len(exp.arms):
            raise common.arm_not_found(exp.record.id, arm)
        return exp.arms[arm]

    def _decision_of(self, experiment_id: str, decision_id: str) -> DecisionRecord:
        try:
            decision = self._decisions[decision_id]
        except KeyError:
            raise common.decision_not_found(decision_id) from None
        if decision.experiment_id != experiment_id:
            raise common.foreign_decision(experiment_id, decision_id)
        return decision

    def _wave_of(self, experiment_id: str, wave_id: str) -> _Wave:
        wave = self._waves.get(wave_id)
        if wave is None or wave.experiment_id != experiment_id:
            raise common.wave_not_found(experiment_id, wave_id)
        return wave

    # --- experiments and arms -------------------------------------------------
    def create_experiment(self, spec: ExperimentSpec, now: float) -> ExperimentRecord:
        """Store a new RUNNING experiment and its headlines as arms 0..K-1."""
        record = common.new_experiment(spec, now)
        arms = [
            ArmRecord(record.id, i, h, record.created_at, None)
            for i, h in enumerate(spec.headlines)
        ]
        with self._lock:
            self._experiments[record.id] = _Experiment(record=record, arms=arms)
        return record

    def get_experiment(self, experiment_id: str) -> ExperimentRecord:
        """The experiment, or NotFoundError."""
        with self._lock:
            return self._experiment(experiment_id).record

    def list_experiments(self, *, include_archived: bool = False) -> list[ExperimentRecord]:
        """Experiments, newest first (ties in ``created_at`` by creation order)."""
        with self._lock:
            records = [exp.record for exp in reversed(self._experiments.values())]
        if not include_archived:
            records = [r for r in records if r.status is not ExperimentStatus.ARCHIVED]
        # A stable sort keeps the reversed creation order among equal times.
        return sorted(records, key=lambda r: r.created_at, reverse=True)

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
        """Move to ``status`` atomically if the current status is in ``allowed_from``."""
        with self._lock:
            exp = self._experiment(experiment_id)
            if winner_arm is not None:
                self._arm(exp, winner_arm)
            current = exp.record.status
            if current not in allowed_from:
                raise common.status_conflict(experiment_id, current, status)
            exp.record = replace(
                exp.record,
                status=status,
                winner_arm=exp.record.winner_arm if winner_arm is None else winner_arm,
                winner_reason=exp.record.winner_reason if winner_reason is None else winner_reason,
                completed_at=float(now)
                if status is ExperimentStatus.COMPLETED
                else exp.record.completed_at,
            )
            return exp.record

    def list_arms(self, experiment_id: str) -> list[ArmRecord]:
        """All arms, retired ones included, by position."""
        with self._lock:
            return list(self._experiment(experiment_id).arms)

    def add_arm(self, experiment_id: str, headline: str, now: float) -> ArmRecord:
        """Append a headline as the next position; ConflictError if the headline exists."""
        with self._lock:
            exp = self._experiment(experiment_id)
            if any(a.headline == headline for a in exp.arms):
                raise common.headline_exists(experiment_id, headline)
            arm = ArmRecord(experiment_id, len(exp.arms), headline, float(now), None)
            exp.arms.append(arm)
            return arm

    def retire_arm(self, experiment_id: str, arm: int, now: float) -> ArmRecord:
        """Stop sending an arm; retiring a retired arm returns it unchanged."""
        with self._lock:
            exp = self._experiment(experiment_id)
            record = self._arm(exp, arm)
            if not record.active:
                return record
            if sum(a.active for a in exp.arms) <= 1:
                raise common.last_active_arm(experiment_id, arm)
            exp.arms[arm] = replace(record, retired_at=float(now))
            return exp.arms[arm]

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
        """Log a decision; with a known ``idempotency_key`` return the stored one."""
        with self._lock:
            exp = self._experiment(experiment_id)
            if idempotency_key is not None and idempotency_key in exp.idempotency_keys:
                return self._decisions[exp.idempotency_keys[idempotency_key]], False
            if exp.record.status not in LIVE_STATUSES:
                raise common.not_live(experiment_id, exp.record.status, "decisions")
            self._arm(exp, arm)
            decision = common.new_decision(
                experiment_id, arm, propensity, now, recipient_id, idempotency_key
            )
            self._decisions[decision.id] = decision
            exp.decision_ids.append(decision.id)
            if idempotency_key is not None:
                exp.idempotency_keys[idempotency_key] = decision.id
            return decision, True

    def get_decision(self, decision_id: str) -> DecisionRecord:
        """The decision, or NotFoundError."""
        with self._lock:
            try:
                return self._decisions[decision_id]
            except KeyError:
                raise common.decision_not_found(decision_id) from None

    def find_decision(self, experiment_id: str, idempotency_key: str) -> DecisionRecord | None:
        """The experiment's decision logged under ``idempotency_key``, or None."""
        with self._lock:
            decision_id = self._experiment(experiment_id).idempotency_keys.get(idempotency_key)
            return None if decision_id is None else self._decisions[decision_id]

    def record_open(
        self, experiment_id: str, decision_id: str, now: float, window_seconds: float
    ) -> OpenResult:
        """Record an open for a decision, idempotently."""
        with self._lock:
            decision = self._decision_of(experiment_id, decision_id)
            if decision.outcome is not None or decision.opened_at is not None:
                return OpenResult.DUPLICATE
            in_window = decision.created_at >= now - window_seconds
            self._decisions[decision_id] = replace(
                decision,
                outcome=1 if in_window else None,
                opened_at=float(now),
                late=not in_window,
            )
            return OpenResult.COUNTED if in_window else OpenResult.LATE

    def record_outcome(self, experiment_id: str, decision_id: str, reward: int, now: float) -> bool:
        """Set an explicit 0/1 outcome; False if the same one was already known."""
        with self._lock:
            decision = self._decision_of(experiment_id, decision_id)
            if decision.outcome is None and decision.opened_at is None:
                self._decisions[decision_id] = replace(decision, outcome=reward)
                return True
            # A reported open (counted or late) is an outcome of 1 already.
            stored = decision.outcome if decision.outcome is not None else 1
            if stored != reward:
                raise common.outcome_conflict(decision_id, stored, reward)
            return False

    # --- waves ----------------------------------------------------------------
    def record_wave(
        self, experiment_id: str, arm_to_sends: Mapping[int, int], now: float
    ) -> WaveRecord:
        """Store a wave's sends per arm as pending."""
        with self._lock:
            exp = self._experiment(experiment_id)
            for arm in arm_to_sends:
                self._arm(exp, arm)
            if exp.record.status not in LIVE_STATUSES:
                raise common.not_live(experiment_id, exp.record.status, "allocations")
            record = common.new_wave(experiment_id, arm_to_sends, now)
            wave = _Wave(
                id=record.id,
                experiment_id=experiment_id,
                created_at=record.created_at,
                arm_to_sends=dict(record.arm_to_sends),
                arm_to_opens=dict(record.arm_to_opens),
                arm_to_late_opens=dict(record.arm_to_late_opens),
            )
            self._waves[wave.id] = wave
            exp.wave_ids.append(wave.id)
            return wave.record()

    def get_wave(self, experiment_id: str, wave_id: str) -> WaveRecord:
        """The wave, or NotFoundError."""
        with self._lock:
            return self._wave_of(experiment_id, wave_id).record()

    def record_wave_opens(
        self,
        experiment_id: str,
        wave_id: str,
        arm_to_total_opens: Mapping[int, int],
        now: float,
        window_seconds: float,
    ) -> WaveRecord:
        """Raise each arm's running total of opens for the wave (idempotent)."""
        with self._lock:
            wave = self._wave_of(experiment_id, wave_id)
            common.check_wave_totals(wave.id, wave.arm_to_sends, arm_to_total_opens)
            in_window = wave.created_at >= now - window_seconds
            for arm, total in arm_to_total_opens.items():
                if total <= 0:
                    continue
                increase = total - wave.arm_to_opens[arm] - wave.arm_to_late_opens[arm]
                if increase <= 0:
                    continue
                target = wave.arm_to_opens if in_window else wave.arm_to_late_opens
                target[arm] += increase
            return wave.record()

    # --- aggregation ----------------------------------------------------------
    def arm_counts(self, experiment_id: str, now: float, window_seconds: float) -> list[ArmCounts]:
        """Counts per arm (every arm, by position)."""
        cutoff = now - window_seconds
        with self._lock:
            exp = self._experiment(experiment_id)
            n_arms = len(exp.arms)
            sends, opens, non_opens, late, matured, matured_opens = ([0] * n_arms for _ in range(6))
            for decision_id in exp.decision_ids:
                d = self._decisions[decision_id]
                window_passed = d.created_at <= cutoff
                # An explicit outcome has no report time: opened_at stays None.
                final = window_passed or (d.outcome is not None and d.opened_at is None)
                sends[d.arm] += 1
                opens[d.arm] += d.outcome == 1
                non_opens[d.arm] += d.outcome == 0 or (d.outcome is None and window_passed)
                late[d.arm] += d.late
                matured[d.arm] += final
                matured_opens[d.arm] += final and d.outcome == 1
            for wave_id in exp.wave_ids:
                wave = self._waves[wave_id]
                window_passed = wave.created_at <= cutoff
                for arm, n in wave.arm_to_sends.items():
                    sends[arm] += n
                    opens[arm] += wave.arm_to_opens[arm]
                    late[arm] += wave.arm_to_late_opens[arm]
                    if window_passed:
                        non_opens[arm] += n - wave.arm_to_opens[arm]
                        matured[arm] += n
                        matured_opens[arm] += wave.arm_to_opens[arm]
        return [
            ArmCounts(
                arm=i,
                sends=sends[i],
                opens=opens[i],
                non_opens=non_opens[i],
                late_opens=late[i],
                matured=matured[i],
                matured_opens=matured_opens[i],
            )
            for i in range(n_arms)
        ]

    def record_snapshot(self, snapshot: Snapshot) -> None:
        """Append a P(best)/allocation snapshot."""
        stored = replace(
            snapshot,
            arm_to_p_best=dict(snapshot.arm_to_p_best),
            arm_to_allocation=dict(snapshot.arm_to_allocation),
        )
        with self._lock:
            self._experiment(snapshot.experiment_id).snapshots.append(stored)

    def list_snapshots(self, experiment_id: str, *, limit: int = 1000) -> list[Snapshot]:
        """Snapshots, oldest first (the latest ``limit``)."""
        with self._lock:
            snapshots = self._experiment(experiment_id).snapshots
            # Stable sort: snapshots taken at the same moment keep their order.
            ordered = sorted(snapshots, key=lambda s: s.at)
        return ordered[-limit:] if limit > 0 else []

    # --- API keys -------------------------------------------------------------
    def create_api_key(self, name: str, secret_hash: str, now: float) -> ApiKeyRecord:
        """Store a key by the hash of its secret; ConflictError if the hash exists."""
        with self._lock:
            if secret_hash in self._key_hashes:
                raise common.api_key_exists()
            key = ApiKeyRecord(
                id=common.new_id(), name=name, created_at=float(now), revoked_at=None
            )
            self._keys[key.id] = key
            self._key_hashes[secret_hash] = key.id
            return key

    def find_api_key(self, secret_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; None if unknown."""
        with self._lock:
            key_id = self._key_hashes.get(secret_hash)
            return None if key_id is None else self._keys[key_id]

    def revoke_api_key(self, key_id: str, now: float) -> ApiKeyRecord:
        """Revoke a key (NotFoundError if unknown); revoking twice keeps the first time."""
        with self._lock:
            try:
                key = self._keys[key_id]
            except KeyError:
                raise common.api_key_not_found(key_id) from None
            if key.revoked_at is None:
                key = self._keys[key_id] = replace(key, revoked_at=float(now))
            return key

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones included, oldest first."""
        with self._lock:
            keys = list(self._keys.values())
        return sorted(keys, key=lambda k: k.created_at)

    def has_api_keys(self) -> bool:
        """Whether any key (revoked or not) exists."""
        with self._lock:
            return bool(self._keys)

    # --- housekeeping ---------------------------------------------------------
    def ping(self) -> None:
        """Always reachable."""

    def close(self) -> None:
        """Nothing to release."""
