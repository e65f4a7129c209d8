"""Start-up cost: ``headliner --help`` and ``simulate`` must not import the service stack.

Each check runs in a fresh interpreter, since this test process has imported
everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The service's heavy dependencies: together about half a second of imports.
SERVICE_STACK = ("sqlalchemy", "alembic", "fastapi", "pydantic_settings", "uvicorn")


def modules_loaded_by(code: str, candidates: tuple[str, ...]) -> set[str]:
    """Which of ``candidates`` a fresh interpreter has imported after running ``code``."""
    probe = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import headliner.cli",
        "from headliner.cli import main\nmain(['--help'])",
        "from headliner.cli import main\nmain(['simulate', '--help'])",
        "from headliner.cli import main\nmain(['plan', '--help'])",
        "from headliner.cli import main\nmain(['experiments', '--help'])",
    ],
    ids=["import", "help", "simulate-help", "plan-help", "experiments-help"],
)
def test_cli_start_up_imports_neither_the_service_stack_nor_numpy(code: str) -> None:
    assert modules_loaded_by(code, (*SERVICE_STACK, "numpy")) == set()


def test_simulate_runs_without_the_service_stack(tmp_path: Path) -> None:
    code = (
        "from headliner.cli import main\n"
        f"assert main(['simulate', '--iterations', '100', '--out', {str(tmp_path)!r}]) == 0"
    )
    assert modules_loaded_by(code, SERVICE_STACK) == set()
    assert (tmp_path / "extra_opens.png").exists()
