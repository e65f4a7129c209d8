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


# Makes `import pandas` and `import matplotlib` fail, as on an install without the sim extra.
WITHOUT_SIM_EXTRA = "import sys\nsys.modules['pandas'] = None\nsys.modules['matplotlib'] = None\n"


def test_the_service_runs_without_the_sim_extra(tmp_path: Path) -> None:
    code = WITHOUT_SIM_EXTRA + (
        "from fastapi.testclient import TestClient\n"
        "from headliner.service.app import create_app\n"
        "from headliner.service.settings import Settings\n"
        f"url = 'sqlite:///{tmp_path / 'h.db'}'\n"
        "from headliner.cli import main\n"
        "assert main(['db', 'upgrade']) == 0\n"
        "with TestClient(create_app(Settings(database_url=url))) as client:\n"
        "    made = client.post('/v1/experiments', json={'name': 'x', 'headlines': ['A', 'B']})\n"
        "    assert made.status_code == 201, made.text\n"
        "    decided = client.post(f\"/v1/experiments/{made.json()['id']}/decisions\")\n"
        "    assert decided.status_code == 201, decided.text\n"
        "    report = client.get(f\"/v1/experiments/{made.json()['id']}/report\")\n"
        "    assert report.status_code == 200, report.text\n"
    )
    env = {"HEADLINER_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    probe = f"import os\nos.environ.update({env!r})\n" + code
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_simulate_without_the_sim_extra_says_what_to_install() -> None:
    code = WITHOUT_SIM_EXTRA + (
        "from headliner.cli import main\n"
        "raise SystemExit(main(['simulate', '--iterations', '100', '--no-plots']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "headliner: error: this command needs pandas, from the 'sim' extra: "
        "pip install 'headliner[sim]'"
    ]
