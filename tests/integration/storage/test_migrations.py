"""Migrations: the packaged revisions build exactly schema.metadata, safely, anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from headliner.core.errors import InvalidParameterError
from headliner.storage.base import KeyScope
from headliner.storage.engine import make_engine
from headliner.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from headliner.storage.schema import metadata
from headliner.storage.sql import SqlStore


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_schema_metadata(unmigrated_url: str) -> None:
    """Autogenerate finds nothing to change between the migrated database and the metadata."""
    assert current_revision(unmigrated_url) is None
    upgrade(unmigrated_url)
    assert current_revision(unmigrated_url) == head_revision()
    engine = make_engine(unmigrated_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_twice_is_a_no_op(unmigrated_url: str) -> None:
    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        store.create_api_key("kept", "a" * 64, 1.0)
    finally:
        store.close()
    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        assert [key.name for key in store.list_api_keys()] == ["kept"]
    finally:
        store.close()


def test_downgrade_to_base_and_back(unmigrated_url: str) -> None:
    upgrade(unmigrated_url)
    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
    finally:
        engine.dispose()
    assert table_names(unmigrated_url) <= {"alembic_version"}
    upgrade(unmigrated_url)
    assert table_names(unmigrated_url) >= set(metadata.tables)


def test_0004_keeps_existing_rows_fills_defaults_and_downgrades(unmigrated_url: str) -> None:
    """Rows written at 0003 survive 0004 with its defaults, and survive the way back."""
    exp_id, wave_id, t0, window = "e" * 32, "f" * 32, 1_700_000_000.0, 3600.0
    upgrade(unmigrated_url, "0003")
    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO experiments (id, name, status, policy, policy_settings,"
                    " alpha_prior, beta_prior, attribution_window_seconds, burn_in_per_arm,"
                    " floor, winner_exploration, stopping, winner_arm, winner_reason, created_at)"
                    " VALUES (:id, 'old', 'running', 'thompson', '{\"beta\": 0.5}', 2.0, 3.0,"
                    " :window, 10, 0.01, 0.0, '{}', NULL, 'kept', :t0)"
                ),
                {"id": exp_id, "window": window, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO arms (experiment_id, arm, headline, created_at)"
                    " VALUES (:id, 0, 'A', :t0)"
                ),
                {"id": exp_id, "t0": t0},
            )
            conn.execute(
                sa.text("INSERT INTO waves (id, experiment_id, created_at) VALUES (:w, :id, :t0)"),
                {"w": wave_id, "id": exp_id, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO wave_arms (wave_id, arm, sends, opens, late_opens)"
                    " VALUES (:w, 0, 100, 3, 0)"
                ),
                {"w": wave_id},
            )
    finally:
        engine.dispose()

    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        exp = store.get_experiment(exp_id)
        assert (exp.name, dict(exp.policy_settings), exp.winner_reason) == (
            "old",
            {"beta": 0.5},
            "kept",
        )
        assert (exp.burn_in_share, dict(exp.delay_prior)) == (1.0, {})
        wave = store.get_wave(exp_id, wave_id)
        assert (dict(wave.arm_to_opens), wave.reported_at) == ({0: 3}, None)
        # The old wave takes new reports: only the increase from now on is logged.
        after = store.record_wave_opens(exp_id, wave_id, {0: 5}, t0 + 10, window)
        assert (after.arm_to_opens[0], after.reported_at) == (5, t0 + 10)
        delays = store.open_delays(exp_id, t0 + 20, window, (0.0, 1.0, window))
        assert (delays.delay.tolist(), delays.count.tolist()) == ([10.0], [2.0])
    finally:
        store.close()

    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0003")
        inspector = sa.inspect(engine)
        assert "wave_open_reports" not in inspector.get_table_names()
        experiment_columns = {c["name"] for c in inspector.get_columns("experiments")}
        assert not {"burn_in_share", "delay_prior"} & experiment_columns
        assert "reported_at" not in {c["name"] for c in inspector.get_columns("waves")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name, winner_reason FROM experiments")).all() == [
                ("old", "kept")
            ]
            assert conn.execute(sa.text("SELECT opens FROM wave_arms")).scalar() == 5
    finally:
        engine.dispose()
    assert current_revision(unmigrated_url) == "0003"
    upgrade(unmigrated_url)
    assert current_revision(unmigrated_url) == head_revision()


def test_0006_gives_existing_experiments_the_opens_kpi_and_downgrades(
    unmigrated_url: str,
) -> None:
    """Experiments and opens written at 0005 survive 0006 (KPI opens, no events) and back."""
    exp_id, decision_id, t0, window = "e" * 32, "d" * 32, 1_700_000_000.0, 3600.0
    upgrade(unmigrated_url, "0005")
    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO experiments (id, name, status, policy, policy_settings,"
                    " alpha_prior, beta_prior, attribution_window_seconds, burn_in_per_arm,"
                    " floor, winner_exploration, stopping, created_at)"
                    " VALUES (:id, 'old', 'running', 'thompson', '{}', 1.0, 1.0, :window, 0,"
                    " 0.0, 0.0, '{}', :t0)"
                ),
                {"id": exp_id, "window": window, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO arms (experiment_id, arm, headline, created_at)"
                    " VALUES (:id, 0, 'A', :t0), (:id, 1, 'B', :t0)"
                ),
                {"id": exp_id, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO decisions (id, experiment_id, arm, propensity, created_at,"
                    " outcome, opened_at, late) VALUES (:d, :id, 1, 0.5, :t0, 1, :t1, false)"
                ),
                {"d": decision_id, "id": exp_id, "t0": t0, "t1": t0 + 60},
            )
    finally:
        engine.dispose()

    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        assert store.get_experiment(exp_id).kpi == "opens"
        assert store.event_counts(exp_id) == []
        counts = store.arm_counts(exp_id, t0 + 120, window)
        assert [(c.sends, c.opens) for c in counts] == [(0, 0), (1, 1)]
        # The old decision takes events now; the open it had stays its only success.
        event = store.record_event(exp_id, decision_id, "open", t0 + 90, machine=True)
        assert (event.arm, event.machine) == (1, True)
    finally:
        store.close()

    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
        inspector = sa.inspect(engine)
        assert "events" not in inspector.get_table_names()
        assert "kpi" not in {c["name"] for c in inspector.get_columns("experiments")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM experiments")).scalars().all() == ["old"]
            assert conn.execute(sa.text("SELECT outcome FROM decisions")).scalar() == 1
    finally:
        engine.dispose()
    upgrade(unmigrated_url)
    assert current_revision(unmigrated_url) == head_revision()


def test_store_does_not_create_tables(unmigrated_url: str) -> None:
    store = SqlStore(unmigrated_url)
    try:
        store.ping()  # reachable, but there is no schema until upgrade() runs
        with pytest.raises(sa.exc.DatabaseError):
            store.list_experiments()
    finally:
        store.close()


def test_upgrade_refuses_memory() -> None:
    with pytest.raises(
        InvalidParameterError,
        match=r"must start with sqlite:/// or postgresql\+psycopg://\. Got 'memory://' instead\.",
    ):
        upgrade("memory://")


@pytest.mark.slow
def test_concurrent_upgrades_from_several_processes(unmigrated_url: str, tmp_path: Path) -> None:
    """Workers starting together (`serve --workers 3`) all upgrade; exactly one does the work."""
    script = "import sys; from headliner.storage.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, unmigrated_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert current_revision(unmigrated_url) == head_revision()


def test_upgrade_creates_the_sqlite_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'nested' / 'headliner.db'}"
    upgrade(url)
    assert current_revision(url) == head_revision()


def test_0007_keeps_old_snapshots_and_keys_and_revokes_read_keys_on_downgrade(
    unmigrated_url: str,
) -> None:
    """Rows of 0006 read back at 0007 (no estimates, full keys); read keys end going back."""
    exp_id, t0 = "e" * 32, 1_700_000_000.0
    upgrade(unmigrated_url, "0006")
    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO experiments (id, name, status, policy, policy_settings,"
                    " alpha_prior, beta_prior, attribution_window_seconds, burn_in_per_arm,"
                    " floor, winner_exploration, stopping, winner_arm, created_at)"
                    " VALUES (:id, 'old', 'winner_declared', 'thompson', '{}', 1.0, 1.0,"
                    " 3600.0, 10, 0.0, 0.0, '{}', 0, :t0)"
                ),
                {"id": exp_id, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO snapshots (experiment_id, at, arm_to_p_best, arm_to_allocation)"
                    ' VALUES (:id, :t0, \'{"0": 0.9, "1": 0.1}\', \'{"0": 0.7, "1": 0.3}\')'
                ),
                {"id": exp_id, "t0": t0},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (id, name, secret_hash, created_at)"
                    " VALUES ('k', 'old key', :hash, :t0)"
                ),
                {"hash": "a" * 64, "t0": t0},
            )
    finally:
        engine.dispose()

    upgrade(unmigrated_url)
    store = SqlStore(unmigrated_url)
    try:
        assert store.get_experiment(exp_id).winner_declared_at is None
        (shot,) = store.list_snapshots(exp_id)
        assert (dict(shot.arm_to_p_best), shot.arm_to_estimate, shot.burn_in) == (
            {0: 0.9, 1: 0.1},
            None,
            None,
        )
        old = store.find_api_key("a" * 64)
        assert old is not None and old.scope is KeyScope.FULL
        store.create_api_key("viewer", "b" * 64, t0 + 1, scope=KeyScope.READ)
    finally:
        store.close()

    engine = make_engine(unmigrated_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0006")
        with engine.connect() as conn:
            keys = conn.execute(
                sa.text("SELECT name, revoked_at FROM api_keys ORDER BY name")
            ).all()
        assert [(name, revoked) for name, revoked in keys] == [
            ("old key", None),
            ("viewer", t0 + 1),
        ]
        assert "arm_to_estimate" not in {
            c["name"] for c in sa.inspect(engine).get_columns("snapshots")
        }
    finally:
        engine.dispose()
    upgrade(unmigrated_url)
    assert current_revision(unmigrated_url) == head_revision()
