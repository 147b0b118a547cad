"""Daemon settings: defaults, then a settings YAML file, then `CONNECTOR_*` variables (env wins).

The precedence is pydantic-settings' own: its sources, merged key by key
(`CONNECTOR_METRICS__LISTEN` wins over the file's `metrics.listen` only).
The file is read by our YAML loader, so `${VAR}`, duplicate keys and
FILE:LINE errors stay as in goal files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from connector.config.yaml_source import YamlDocument, load_yaml
from connector.errors import ConfigError, ConfigProblem
from connector.limits import (
    MAX_REJECTS_STORED,
    ROW_BATCH_ROWS,
    SHUTDOWN_TIMEOUT_SECONDS,
    SMTP_TIMEOUT_SECONDS,
)
from connector.logging import register_secrets
from connector.storage.postgres._url import is_postgres_url, parse_postgres_url, url_secrets

CONFIG_ENV = "CONNECTOR_CONFIG"
ENV_PREFIX = "CONNECTOR_"
NESTED_DELIMITER = "__"


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6) as (host, port); ValueError says what is expected."""
    expected = f"expected HOST:PORT such as 127.0.0.1:9464 or [::1]:9464; got {text!r}"
    host, colon, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{expected} (put an IPv6 address in brackets)")
    if not colon or not host or not port_text.isdigit():
        raise ValueError(expected)
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535; {expected}")
    return host, port


class MetricsSettings(BaseModel):
    """The Prometheus endpoint: off unless `listen` is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str | None = None
    """`HOST:PORT` where the daemon serves `/metrics`; None (default): no endpoint."""

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, or None when the endpoint is off."""
        return parse_listen(self.listen) if self.listen is not None else None


class Settings(BaseSettings):
    """What the daemon needs to know that is not about one connection."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,  # CONNECTOR_METRICS__LISTEN
        extra="forbid",
        hide_input_in_errors=True,
        frozen=True,
    )

    goals_dir: Path = Path("goals")
    database: Path | str = Path("connector.db")
    """A SQLite file path, or a `postgresql://user[:password]@host[:port]/dbname` URL."""
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "connector@localhost"
    smtp_timeout: float = Field(default=SMTP_TIMEOUT_SECONDS, gt=0)
    smtp_tls_verify: bool = True
    """Verify the SMTP server's certificate and host name (STARTTLS and implicit TLS);
    false is for a test server only, and the daemon warns at start."""
    smtp_ca_file: Path | None = None
    """A PEM file of CA certificates trusted besides the system's (a private CA)."""

    @field_validator("smtp_ca_file")
    @classmethod
    def _readable_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    watch_goals: bool = True
    watch_interval: float = Field(default=2.0, gt=0)
    shutdown_timeout: float = Field(default=SHUTDOWN_TIMEOUT_SECONDS, gt=0)
    batch_size: int = Field(default=ROW_BATCH_ROWS, ge=1, le=100_000)
    max_rejects_stored: int = Field(default=MAX_REJECTS_STORED, ge=0)
    parse_in_child_bytes: int | None = Field(default=None, ge=0)
    """Files at least this large are parsed in a second process; None (default): never."""
    columnar_engine: bool = True
    """Import profiles and groups through the columnar engine; false forces the row path."""
    schedule_spread_minutes: int = Field(default=0, ge=0, le=1440)
    """The `schedule.spread_minutes` of connections that do not give one."""
    database_retry_initial: float = Field(default=2.0, gt=0)
    """Seconds before the daemon's first retry when the store's server cannot be reached;
    each further retry waits twice as long, up to `database_retry_max`."""
    database_retry_max: float = Field(default=120.0, gt=0)
    """The longest wait between two retries of an unreachable store."""
    metrics: MetricsSettings = MetricsSettings()
    """The Prometheus `/metrics` endpoint (off by default)."""

    @field_validator("database", mode="before")
    @classmethod
    def _database_path_or_url(cls, value: Any) -> Any:
        """A PostgreSQL URL stays text (checked now, never echoed); anything else is a path."""
        if is_postgres_url(value):
            parse_postgres_url(value)  # ValueError: a validation error naming `database`
            return value
        return Path(value) if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        document = _SETTINGS_FILE.get()
        file = () if document is None else (SettingsFileSource(settings_cls, document),)
        return (init_settings, env_settings, *file)


_SETTINGS_FILE: ContextVar[YamlDocument | None] = ContextVar("settings_file", default=None)
"""The settings file of the `load_settings` call in progress (sources are made per class)."""


class SettingsFileSource(YamlConfigSettingsSource):
    """pydantic-settings' YAML file source, read by our loader (already done, with lines)."""

    def __init__(self, settings_cls: type[BaseSettings], document: YamlDocument) -> None:
        self._document = document
        super().__init__(settings_cls, yaml_file=document.path)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        return _anchor_paths(self._document.data or {}, self._document.path.parent)


@contextmanager
def _reading(document: YamlDocument | None) -> Iterator[None]:
    token = _SETTINGS_FILE.set(document)
    try:
        yield
    finally:
        _SETTINGS_FILE.reset(token)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config_file` (or $CONNECTOR_CONFIG), with the environment on top.

    Errors are ConfigError with the settings file and line, never a secret.
    """
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    document = None
    if path is not None:
        if not path.is_file():
            raise ConfigError([ConfigProblem(path, None, "settings file not found")])
        document = load_yaml(path)
        if document.data is not None and not isinstance(document.data, dict):
            raise ConfigError([ConfigProblem(path, 1, "a settings file must be a mapping")])
    # pydantic-settings reads variable names case-insensitively; so must the blame for errors
    present = {name.upper() for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    try:
        with _reading(document):
            settings = Settings(**overrides)
    except ValidationError as error:
        problems = []
        for detail in error.errors(include_input=False, include_url=False):
            variable = _variable_of(tuple(map(str, detail["loc"])), present)
            if document is None or variable is not None:
                problems.append(_environment_problem(detail, variable))
            else:
                problems.append(document.problem_for(detail))
        raise ConfigError(problems) from None
    if settings.smtp_password is not None:
        # from here on, the SMTP password is blanked in every log line and mail
        register_secrets([settings.smtp_password.get_secret_value()])
    if isinstance(settings.database, str):
        register_secrets(url_secrets(settings.database))  # the store URL's password, likewise
    return settings


_PATH_FIELDS = ("goals_dir", "database", "smtp_ca_file")


def _anchor_paths(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative paths in a settings file are relative to that file, not to the working
    directory: the daemon's working directory (systemd: /) is no place for a store."""
    anchored = dict(values)
    for name in _PATH_FIELDS:
        value = anchored.get(name)
        if (
            isinstance(value, str)
            and value
            and not is_postgres_url(value)
            and not Path(value).expanduser().is_absolute()
        ):
            anchored[name] = str(folder / value)
    return anchored


def _variable(loc: tuple[str, ...]) -> str:
    return ENV_PREFIX + NESTED_DELIMITER.join(loc).upper()


def _variable_of(loc: tuple[str, ...], present: set[str]) -> str | None:
    """The `CONNECTOR_*` variable that set the value at `loc` (`CONNECTOR_METRICS__LISTEN`
    or all of `CONNECTOR_METRICS`), or None when the value came from elsewhere."""
    for end in range(len(loc), 0, -1):
        if _variable(loc[:end]) in present:
            return _variable(loc[:end])
    return None


def _environment_problem(detail: ErrorDetails, variable: str | None = None) -> ConfigProblem:
    """A bad `CONNECTOR_*` value, named by its variable; the value itself is never shown."""
    name = variable or _variable(tuple(map(str, detail["loc"])))
    message = detail["msg"].removeprefix("Value error, ")
    return ConfigProblem("environment", None, f"{name}: {message}")


__all__ = ["CONFIG_ENV", "MetricsSettings", "Settings", "load_settings", "parse_listen"]
