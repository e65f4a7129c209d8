"""Service configuration: defaults, an optional YAML file, ``.env``, ``HEADLINER_*`` variables.

Precedence, highest first:

1. keyword arguments to :class:`Settings` (tests build their settings this way);
2. ``HEADLINER_*`` environment variables;
3. the ``.env`` file in the working directory (``_env_file=None`` skips it);
4. the YAML file named by ``HEADLINER_CONFIG`` (keys are the field names,
   without the prefix);
5. the defaults below.

Environment beats the YAML file so that an operator can override one value of
a shared file without editing it. A key of the YAML file that is not a
setting is an error (a typo would otherwise be ignored in silence). Nothing is
read at import time: :func:`get_settings` builds (and caches) the settings on
first use.

The default database is one SQLite file per user
(``$XDG_DATA_HOME/headliner/headliner.db``, else
``~/.local/share/headliner/headliner.db``), so ``serve`` and every CLI command
share it wherever they are run from; a relative SQLite path in a URL is made
absolute against the working directory when the settings are read.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

CONFIG_ENV = "HEADLINER_CONFIG"
_SQLITE = "sqlite:///"


def default_database_url() -> str:
    """The per-user SQLite file that every command shares by default."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"{_SQLITE}{Path(data_home) / 'headliner' / 'headliner.db'}"


def absolute_sqlite_url(url: str) -> str:
    """``url`` with a relative SQLite file path made absolute against the working directory.

    Examples
    --------
    >>> absolute_sqlite_url("sqlite:////var/lib/headliner.db")
    'sqlite:////var/lib/headliner.db'
    >>> absolute_sqlite_url("postgresql+psycopg://db/headliner")
    'postgresql+psycopg://db/headliner'
    """
    if not url.startswith(_SQLITE) or url.startswith(_SQLITE + "/"):
        return url
    path, sep, query = url[len(_SQLITE) :].partition("?")
    if not path or path == ":memory:" or path.startswith("file:"):
        return url  # the store refuses these itself, with its own message
    return f"{_SQLITE}{Path(path).absolute()}{sep}{query}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database)."""
    if not url.startswith(_SQLITE):
        return None
    return Path(url[len(_SQLITE) :].partition("?")[0])


def describe_database(url: str) -> str:
    """The database a URL names, for people: the SQLite file, or the URL without password."""
    path = sqlite_path(url)
    if path is not None:
        return f"SQLite file {path}"
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: the store's own error names the problem
        return url.split("@")[-1]


class _CheckedYamlSource(YamlConfigSettingsSource):
    """The YAML file, refusing what is not a mapping of settings."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        # Checked before the base class reads it: its own errors are tracebacks.
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of settings")
        unknown = sorted(set(data or {}) - set(settings_cls.model_fields))
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, settings_cls.model_fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{path}: {key!r} is not a setting{hint}")
        super().__init__(settings_cls, yaml_file=path)


class Settings(BaseSettings):
    """Settings of the decision service and of the CLI commands that talk to its store.

    Parameters
    ----------
    database_url : str, default=the per-user SQLite file (see the module docstring)
        SQLAlchemy URL of the store (SQLite file, or ``postgresql+psycopg://…``).
    host : str, default="127.0.0.1"
    port : int, default=8000
    workers : int, default=1
        Worker processes of ``headliner serve``.
    posterior_refresh_seconds : float, default=1.0
        Decisions use a cached posterior and cached selection probabilities
        per experiment, refreshed at most this often (0 = on every request).
        Thompson Sampling tolerates a slightly stale posterior, and the
        aggregate query must not run per request.
    refresh_in_background : bool, default=True
        Rebuild a stale cached posterior in a background thread while requests
        keep using the old one (P(best) for 20 headlines takes ~45 ms, which
        must not stall the event loop); False rebuilds inside the request,
        which makes a seeded test run reproducible.
    snapshot_interval_seconds : float, default=60.0
        At most one P(best)/allocation snapshot per experiment and process per interval.
    report_cache_seconds : float, default=1.0
        A report is reused for this long per experiment and process (0 = built
        on every request): a dashboard that many people watch costs one
        aggregate and two integrations per interval, not one per viewer.
    max_body_bytes : int, default=65536
        Larger request bodies get 413.
    api_key_cache_seconds : float, default=5.0
        How long a key lookup is reused: a revocation takes effect within this time.
    upgrade_on_start : bool, default=True
        Apply migrations when the app starts (``serve --workers N`` applies them once itself).
    log_level : {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, default="INFO"
        INFO logs one JSON line per request.
    seed : int or None, default=None
        Seed of the decision generator; None draws it from OS entropy (production).
    pixel_secret : str or None, default=None
        Signs tracking-pixel tokens (at least 32 characters, the same for every
        worker); None: decisions carry no ``open_pixel`` and ``/pixel`` counts nothing.
    store_calls_in_threadpool : bool, default=False
        Run store calls in the thread pool instead of inline on the event loop
        (inline measured faster on SQLite and PostgreSQL alike; see
        :class:`headliner.service.deps.Runner`). On PostgreSQL the decisions
        and opens are otherwise awaited and committed in batches
        (:class:`headliner.storage.sql.AsyncHotWrites`); true runs them in the
        thread pool too.
    """

    model_config = SettingsConfigDict(
        env_prefix="HEADLINER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    database_url: str = Field(default_factory=default_database_url, min_length=1)
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    posterior_refresh_seconds: float = Field(default=1.0, ge=0.0)
    refresh_in_background: bool = True
    snapshot_interval_seconds: float = Field(default=60.0, ge=0.0)
    report_cache_seconds: float = Field(default=1.0, ge=0.0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    api_key_cache_seconds: float = Field(default=5.0, ge=0.0)
    upgrade_on_start: bool = True
    log_level: LogLevel = "INFO"
    seed: int | None = Field(default=None, ge=0)
    store_calls_in_threadpool: bool = False
    pixel_secret: str | None = Field(default=None, min_length=32)

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite_path(cls, url: str) -> str:
        return absolute_sqlite_url(url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Insert the YAML file (``HEADLINER_CONFIG``) below ``.env`` and above the defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                # A named but missing file is a mistake worth failing on, not a silent default.
                raise FileNotFoundError(f"{CONFIG_ENV} names {config_file!r}, which is not a file")
            sources.append(_CheckedYamlSource(settings_cls, path))
        sources.append(file_secret_settings)
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, built on first use (``get_settings.cache_clear()`` rebuilds)."""
    return Settings()
