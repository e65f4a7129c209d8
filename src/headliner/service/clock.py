"""Injectable clocks: the wall clock in production, a hand-driven one in tests.

Every time the service stores (decision times, attribution windows, cache
ages) comes from a :class:`Clock`, so a test can run a week-long campaign in
milliseconds by advancing a :class:`ManualClock`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

from headliner.core.validation import check_float


class Clock(Protocol):
    """Source of the current time as float seconds since the epoch (UTC)."""

    def now(self) -> float:
        """The current time."""
        ...


class SystemClock:
    """The wall clock (:func:`time.time`)."""

    def now(self) -> float:
        """The current time."""
        return time.time()


class ManualClock:
    """A clock that moves only when told to.

    Parameters
    ----------
    start : float, default=1_700_000_000.0
        Initial time (seconds since the epoch).

    Examples
    --------
    >>> clock = ManualClock(start=100.0)
    >>> clock.advance(3600)
    3700.0
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = check_float(start, "start", "ManualClock", low=0.0)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        step = check_float(seconds, "seconds", "ManualClock.advance", low=0.0)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: float) -> float:
        """Jump to ``when``, which must not be earlier than now."""
        target = check_float(when, "when", "ManualClock.set", low=self._now)
        with self._lock:
            self._now = target
            return self._now


def readable_time(when: float | str | None, missing: str = "") -> str:
    """A time (stored seconds, or the API's ISO 8601) as people read it, in UTC, to the second.

    >>> readable_time(1795774985.25), readable_time("2026-11-27T10:23:05Z")
    ('2026-11-27 10:23:05 UTC', '2026-11-27 10:23:05 UTC')
    """
    if when is None:
        return missing
    moment = (
        datetime.fromisoformat(when) if isinstance(when, str) else datetime.fromtimestamp(when, UTC)
    )
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
