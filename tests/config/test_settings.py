"""Daemon settings: defaults, then the settings YAML file, then CONNECTOR_* variables (env wins)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.settings import load_settings

PASSWORD = "smtp-pa55word-never-printed"


@pytest.fixture(autouse=True)
def no_connector_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without CONNECTOR_* variables from the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("CONNECTOR_"):
            monkeypatch.delenv(name)


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connector.yaml"
    path.write_text(textwrap.dedent(text).removeprefix("\n"), encoding="utf-8")
    return path


def settings_error(config_file: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file)
    return caught.value


def test_defaults_apply_without_a_file_or_variables() -> None:
    settings = load_settings()
    assert (settings.goals_dir, settings.database) == (Path("goals"), Path("connector.db"))
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (None, 587, True)
    assert settings.log_format == "auto"


def test_values_come_from_the_settings_file(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        """
        goals_dir: /srv/connector/goals
        database: /var/lib/connector/store.db
        log_format: json
        smtp_host: mail.example.com
        smtp_port: 465
        smtp_starttls: false
        smtp_username: connector
        smtp_sender: connector@example.com
        """,
    )
    settings = load_settings(path)
    assert settings.goals_dir == Path("/srv/connector/goals")
    assert settings.database == Path("/var/lib/connector/store.db")
    assert settings.log_format == "json"
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mail.example.com",
        465,
        False,
    )
    assert (settings.smtp_username, settings.smtp_sender) == (
        "connector",
        "connector@example.com",
    )


def test_environment_overrides_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "goals_dir: /from/file\nsmtp_port: 465\nlog_format: json\n")
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", "/from/env")
    monkeypatch.setenv("CONNECTOR_SMTP_PORT", "2525")
    settings = load_settings(path)
    assert (settings.goals_dir, settings.smtp_port) == (Path("/from/env"), 2525)
    assert settings.log_format == "json"  # not in the environment: the file's value stays


def test_environment_wins_whatever_the_case_of_the_variable_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "goals_dir: /from/file\n")
    monkeypatch.setenv("connector_goals_dir", "/from/env")
    assert load_settings(path).goals_dir == Path("/from/env")


def test_relative_paths_in_the_settings_file_are_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = settings_file(folder, "goals_dir: goals\ndatabase: ../state/connector.db\n")
    monkeypatch.chdir(tmp_path)  # the working directory plays no part
    settings = load_settings(path)
    assert settings.goals_dir == folder / "goals"
    assert settings.database == folder / "../state/connector.db"


def test_relative_paths_from_the_environment_stay_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "goals_dir: goals\n")
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", "mine/goals")
    assert load_settings(path).goals_dir == Path("mine/goals")


def test_connector_config_variable_names_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "database: /data/store.db\n")
    monkeypatch.setenv("CONNECTOR_CONFIG", str(path))
    assert load_settings().database == Path("/data/store.db")


def test_variables_in_the_settings_file_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "smtp_password: ${SMTP_PASSWORD}\n")
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    settings = load_settings(path)
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


def test_unknown_key_in_the_settings_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        """
        goals_dir: /srv/goals
        smtp_host: mail.example.com
        smtp_pasword: secret
        """,
    )
    assert str(settings_error(path)) == f"{path}:3: unknown key 'smtp_pasword'"


def test_invalid_value_in_the_settings_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = settings_file(tmp_path, "goals_dir: /srv/goals\nsmtp_port: 99999\nlog_level: loud\n")
    assert sorted(str(problem) for problem in settings_error(path).problems) == [
        f"{path}:2: smtp_port: Input should be less than or equal to 65535",
        f"{path}:3: log_level: Input should be 'debug', 'info', 'warning' or 'error'",
    ]


def test_invalid_password_in_the_settings_file_is_not_echoed(tmp_path: Path) -> None:
    path = settings_file(tmp_path, f"smtp_password: [{PASSWORD}]\n")
    error = settings_error(path)
    assert str(error) == f"{path}:1: smtp_password: Input should be a valid string"
    assert PASSWORD not in str(error)


def test_invalid_environment_value_is_reported_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONNECTOR_SMTP_PORT", "submission")
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", PASSWORD)
    error = settings_error()
    assert str(error) == (
        "environment: CONNECTOR_SMTP_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert PASSWORD not in str(error)


def test_invalid_environment_value_is_not_blamed_on_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "goals_dir: /srv/goals\nsmtp_port: 465\n")
    monkeypatch.setenv("CONNECTOR_SMTP_STARTTLS", "perhaps")
    monkeypatch.setenv("CONNECTOR_LOG_LEVEL", PASSWORD)
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", PASSWORD)
    error = settings_error(path)
    assert sorted(str(problem) for problem in error.problems) == [
        "environment: CONNECTOR_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error'",
        "environment: CONNECTOR_SMTP_STARTTLS: Input should be a valid boolean, "
        "unable to interpret input",
    ]
    assert PASSWORD not in str(error)


def test_file_and_environment_problems_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings_file(tmp_path, "goals_dir: /srv/goals\nwatch_goal: true\n")
    monkeypatch.setenv("CONNECTOR_BATCH_SIZE", "0")
    assert sorted(str(problem) for problem in settings_error(path).problems) == [
        f"{path}:2: unknown key 'watch_goal'",
        "environment: CONNECTOR_BATCH_SIZE: Input should be greater than or equal to 1",
    ]


def test_missing_settings_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert str(settings_error(missing)) == f"{missing}: settings file not found"


def test_settings_file_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    path = settings_file(tmp_path, "- goals_dir\n")
    assert str(settings_error(path)) == f"{path}:1: a settings file must be a mapping"


def test_an_empty_settings_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(settings_file(tmp_path, "# all defaults\n")).smtp_port == 587


def test_missing_variable_in_the_settings_file_is_reported_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    path = settings_file(tmp_path, "smtp_host: mail\nsmtp_password: ${SMTP_PASSWORD}\n")
    assert str(settings_error(path)) == (
        f"{path}:2: environment variable SMTP_PASSWORD is not set (used as ${{SMTP_PASSWORD}})"
    )


def test_metrics_are_off_by_default_and_read_from_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().metrics.address is None
    path = settings_file(tmp_path, "metrics:\n  listen: 127.0.0.1:9464\n")
    assert load_settings(path).metrics.address == ("127.0.0.1", 9464)
    monkeypatch.setenv("CONNECTOR_METRICS__LISTEN", "[::1]:9500")
    assert load_settings(path).metrics.address == ("::1", 9500)


@pytest.mark.parametrize(
    "listen", ["9464", "127.0.0.1", "127.0.0.1:http", ":9464", "::1:9464", "h:0"]
)
def test_a_bad_metrics_address_names_the_setting_and_its_line(tmp_path: Path, listen: str) -> None:
    path = settings_file(tmp_path, f"log_level: info\nmetrics:\n  listen: '{listen}'\n")
    problems = [str(problem) for problem in settings_error(path).problems]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: metrics.listen: ")
    assert "HOST:PORT" in problems[0]


def test_an_unknown_metrics_key_is_an_error(tmp_path: Path) -> None:
    path = settings_file(tmp_path, "metrics:\n  listne: 127.0.0.1:9464\n")
    (problem,) = settings_error(path).problems
    assert str(problem) == f"{path}:2: unknown key 'listne' in metrics"
