"""``serve --workers N``: the workers end with their parent, even one killed with SIGKILL.

uvicorn's supervisor cannot stop its workers when it is killed outright (the
OOM killer, ``kill -9``); before the workers tied themselves to it, they kept
serving and held the port, and the next ``serve`` exited with "address
already in use".
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

# The server launcher is shared with `make load-test`; tests/ is not a package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "performance"))

from serving import LOOPBACK, running_server  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process groups are POSIX"),
]

WORKERS = 2
GONE_TIMEOUT_SECONDS = 20.0


def _gone(process: psutil.Process) -> bool:
    """Exited (a zombie nobody reaps counts: it runs nothing and holds no socket)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_killing_the_parent_ends_every_worker_and_frees_the_port(tmp_path: Path) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'headliner.db'}", tmp_path, workers=WORKERS
    ) as server:
        parent = psutil.Process(server.process.pid)
        children = parent.children(recursive=True)  # the workers and multiprocessing's helper
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == WORKERS
        port = int(server.base_url.rsplit(":", 1)[1])

        os.kill(parent.pid, signal.SIGKILL)
        server.process.wait(timeout=10)

        deadline = time.monotonic() + GONE_TIMEOUT_SECONDS
        while not all(_gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c.pid for c in children if not _gone(c)] == []

        with socket.socket() as sock:  # bound as uvicorn binds it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, port))
            sock.listen()
