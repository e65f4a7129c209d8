"""Persistence: the :class:`Store` protocol and its implementations.

``open_store(url)`` gives an :class:`InMemoryStore` for ``memory://`` (unit
tests) and a :class:`SqlStore` for ``sqlite:///file.db`` or
``postgresql+psycopg://…``; ``upgrade(url)`` applies the schema migrations a
SQL store needs before it is opened.
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
from headliner.storage.migrate import upgrade
from headliner.storage.sql import SqlStore, open_store

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
    "SqlStore",
    "Store",
    "WaveRecord",
    "open_store",
    "upgrade",
]
