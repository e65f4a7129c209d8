"""Persistence: the :class:`Store` protocol and its SQL implementation.

``open_store(url)`` gives a :class:`SqlStore` for ``sqlite:///file.db`` or
``postgresql+psycopg://…``; ``upgrade(url)`` applies the schema migrations the
store needs before it is opened.
"""

from headliner.storage.base import (
    ApiKeyRecord,
    ArmCounts,
    ArmRecord,
    DecisionRecord,
    EventCounts,
    EventRecord,
    ExperimentRecord,
    ExperimentSpec,
    ExperimentStatus,
    KeyScope,
    OpenDelays,
    OpenResult,
    PendingSends,
    PropensityGroups,
    Snapshot,
    Store,
    WaveRecord,
)
from headliner.storage.migrate import upgrade
from headliner.storage.sql import SqlStore, open_store

__all__ = [
    "ApiKeyRecord",
    "ArmCounts",
    "ArmRecord",
    "DecisionRecord",
    "EventCounts",
    "EventRecord",
    "ExperimentRecord",
    "ExperimentSpec",
    "ExperimentStatus",
    "KeyScope",
    "OpenDelays",
    "OpenResult",
    "PendingSends",
    "PropensityGroups",
    "Snapshot",
    "SqlStore",
    "Store",
    "WaveRecord",
    "open_store",
    "upgrade",
]
