"""``serve``'s workers end with their parent: the parts a test process can run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading

import pytest

from headliner.cli import service


class _DeadParent:
    """A ``multiprocessing.parent_process()`` that has already died."""

    pid = -1

    def join(self, timeout: float | None = None) -> None:
        return None


def test_a_process_multiprocessing_did_not_start_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signals: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append((pid, sig)))
    threads = threading.active_count()

    service.exit_with_parent()

    assert multiprocessing.parent_process() is None
    assert (signals, threading.active_count()) == ([], threads)


def test_without_prctl_a_thread_stops_the_worker_when_the_parent_dies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback outside Linux: SIGTERM to itself once the pipe to the parent closes."""
    sent = threading.Event()
    signals: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        signals.append((pid, sig))
        sent.set()

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(multiprocessing, "parent_process", _DeadParent)
    monkeypatch.setattr(os, "kill", kill)

    service.exit_with_parent()

    assert sent.wait(timeout=10)
    assert signals == [(os.getpid(), signal.SIGTERM)]
