"""Settings precedence: keyword > environment > .env > YAML file > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from headliner.service.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HEADLINER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    # One file per user, wherever a command runs from.
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'headliner' / 'headliner.db'}"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.posterior_refresh_seconds == 1.0
    assert settings.max_body_bytes == 64 * 1024
    assert settings.seed is None
    assert settings.store_calls_in_threadpool is False


def test_environment_beats_yaml_beats_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "test.yaml"
    config.write_text("port: 9001\nworkers: 3\nlog_level: DEBUG\n")
    monkeypatch.setenv("HEADLINER_CONFIG", str(config))
    monkeypatch.setenv("HEADLINER_PORT", "9002")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.port == 9002  # environment
    assert settings.workers == 3  # YAML
    assert settings.log_level == "DEBUG"  # YAML
    assert settings.host == "127.0.0.1"  # default


def test_env_file_sits_between_environment_and_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "test.yaml"
    config.write_text("port: 9001\nworkers: 3\nhost: 10.0.0.1\n")
    env_file = tmp_path / "custom.env"
    env_file.write_text("HEADLINER_PORT=9003\nHEADLINER_WORKERS=4\n")
    monkeypatch.setenv("HEADLINER_CONFIG", str(config))
    monkeypatch.setenv("HEADLINER_WORKERS", "5")

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert settings.workers == 5  # environment beats .env
    assert settings.port == 9003  # .env beats YAML
    assert settings.host == "10.0.0.1"  # YAML beats the default


def test_keywords_beat_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADLINER_PORT", "9002")

    assert Settings(_env_file=None, port=9100).port == 9100  # type: ignore[call-arg]


def test_dotenv_in_the_working_directory_is_read_unless_disabled(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HEADLINER_DATABASE_URL=sqlite:///from-dotenv.db\n")

    # A relative SQLite path is made absolute against the working directory, once.
    assert Settings().database_url == f"sqlite:///{tmp_path / 'from-dotenv.db'}"
    assert "from-dotenv" not in Settings(_env_file=None).database_url  # type: ignore[call-arg]


def test_a_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADLINER_CONFIG", "/nonexistent/headliner.yaml")

    with pytest.raises(FileNotFoundError, match="HEADLINER_CONFIG"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 0),
        ("port", 70000),
        ("workers", 0),
        ("posterior_refresh_seconds", -1),
        ("max_body_bytes", 0),
        ("log_level", "LOUD"),
        ("database_url", ""),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADLINER_PORT", "9200")
    first = get_settings()
    monkeypatch.setenv("HEADLINER_PORT", "9300")

    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().port == 9300


def test_a_config_key_that_is_not_a_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("databse_url: sqlite:///x.db\n")
    monkeypatch.setenv("HEADLINER_CONFIG", str(config))

    with pytest.raises(
        ValueError, match=r"'databse_url' is not a setting \(did you mean 'database_url'\?\)"
    ):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "must hold a mapping"), ("port: [\n", "is not valid YAML")],
    ids=["a-list", "broken"],
)
def test_a_config_file_that_is_not_a_mapping_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    monkeypatch.setenv("HEADLINER_CONFIG", str(config))

    with pytest.raises(ValueError, match=message):
        Settings(_env_file=None)  # type: ignore[call-arg]
