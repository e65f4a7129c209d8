"""The README's walkthrough (``examples/walkthrough.sh``) runs as written against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "examples" / "walkthrough.sh"
sys.path.insert(0, str(REPO / "tests" / "performance"))

from serving import BIN, running_server  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None,
    reason="the walkthrough needs curl and jq (apt-get install curl jq)",
)


def test_the_walkthrough_runs_as_written_with_an_api_key(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'walkthrough.db'}"
    env = {**os.environ, "HEADLINER_DATABASE_URL": database_url}
    created = subprocess.run(
        [str(BIN / "headliner"), "keys", "create", "pipeline"],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    key = created.stdout.strip()
    with running_server(database_url, tmp_path) as server:
        run = {**os.environ, "HEADLINER_URL": server.base_url}
        without_key = subprocess.run(
            ["bash", str(SCRIPT)], env=run, capture_output=True, text=True, timeout=120
        )
        with_key = subprocess.run(
            ["bash", str(SCRIPT)],
            env={**run, "HEADLINER_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
        )
    # Once a key exists the service refuses the script without it, and serves it with it.
    assert without_key.returncode != 0 and "401" in without_key.stderr + without_key.stdout
    assert with_key.returncode == 0, with_key.stderr
    assert with_key.stdout.startswith("experiment ")
    assert '"counted":true' in with_key.stdout
    assert '"opens":812' in with_key.stdout  # the wave's running total, per headline
    assert '"allocation_reason"' in with_key.stdout
