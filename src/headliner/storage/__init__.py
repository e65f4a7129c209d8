"""Persistence: the :class:`Store` protocol and its implementations.

``InMemoryStore`` serves unit tests and ``memory://``; the SQL store (SQLite
or PostgreSQL) follows in :mod:`headliner.storage.sql`.
"""

from headliner.storage.base import (
    ApiKeyRecord,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    OpenResult,
    Snapshot,
    Store,
    WaveRecord,
)
from headliner.storage.memory import InMemoryStore

__all__ = [
    "ApiKeyRecord",
    "ArmCounts",
    "ArmRecord",
    "DecisionRecord",
    "ExperimentRecord",
    "ExperimentSpec",
    "ExperimentStatus",
    "InMemoryStore",
    "OpenResult",
    "Snapshot",
    "Store",
    "WaveRecord",
]
