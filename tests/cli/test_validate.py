"""`connector validate`: exit 0 with a line per connection, or 1 with `FILE:LINE: message` lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connector.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "goals"
SECRET = "crm-secret-9f8e7d6c5b4a"
KEY_ID = "AKIACRMEXAMPLE0001"


@pytest.fixture
def goals_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty goals folder and a database path, given to the CLI as the operator would."""
    for name in list(os.environ):
        if name.upper().startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "goals"
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(tmp_path / "connector.db"))
    return folder


@pytest.fixture
def examples(goals_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped goals folder, copied, with the variables crm.yaml needs."""
    shutil.copytree(EXAMPLES, goals_dir)
    monkeypatch.setenv("CRM_KEY_ID", KEY_ID)
    monkeypatch.setenv("CRM_SECRET", SECRET)
    monkeypatch.delenv("CRM_S3_ENDPOINT", raising=False)
    return goals_dir


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).removeprefix("\n"), encoding="utf-8")
    return path


def test_examples_validate_with_one_summary_line_per_connection(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "crm.yaml: ok — connection 'crm' (CRM exchange): 1 import, 1 export, 1 group goal(s); "
        "schedule every_minutes",
        "segments: 2 defined",
    ]
    assert err == ""
    assert SECRET not in out
    assert KEY_ID not in out


def test_every_connection_gets_its_own_summary_line(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        examples,
        "households.yml",
        """
        name: Households
        enabled: false
        goals:
          - type: import-groups
            name: households
            group_type: household
            source: {bucket: crm-exports}
            match: {column: household_id}
        """,
    )
    assert main(["validate"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        "crm.yaml: ok — connection 'crm' (CRM exchange): 1 import, 1 export, 1 group goal(s); "
        "schedule every_minutes",
        "households.yml: ok — connection 'households' (Households): 0 import, 0 export, "
        "1 group goal(s); schedule on demand, disabled",
        "segments: 2 defined",
    ]


def test_broken_folder_exits_1_with_file_line_message_on_stderr(
    goals_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    goals_dir.mkdir()
    crm = write(
        goals_dir,
        "crm.yaml",
        """
        storage:
          region: eu-west-1
        schedule:
          every_hours: 5
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm_exports}
            match: {column: customer_id}
            mappings:
              - {column: email, property: email, rul: set}
        """,
    )
    broken = write(goals_dir, "broken.yaml", "id: broken\ngoals: [\n")
    segments = write(
        goals_dir,
        "segments.yaml",
        """
        segments:
          - id: all
            where: {property: email, exists: true}
          - id: empty
            where: {}
        """,
    )
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    assert out == ""
    assert sorted(err.splitlines()) == sorted(
        [
            f"{broken}:2: invalid YAML: expected the node content, but found '<stream end>'",
            f"{crm}:4: schedule.every_hours: every_hours must be one of 3, 6, 8, 12, 24, got 5",
            f"{crm}:8: goals[0].source.bucket: bucket name 'crm_exports' may contain only "
            "lower-case letters, digits, dots and hyphens, and must start and end with a letter "
            "or digit",
            f"{crm}:11: unknown key 'rul' in goals[0].mappings[0]",
            f"{segments}:2: segments[0]: segment id 'all' is built in; choose another id",
            f"{segments}:5: segments[1].where: a condition needs `all`, `any` or `property`",
        ]
    )


def test_cross_file_problems_fail_validation_with_their_line(
    examples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write(
        examples,
        "other.yaml",
        """
        id: crm
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            segment: vip
            columns:
              - {header: id, value: profile_id}
        """,
    )
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"{other}:1: connection id 'crm' is also used by crm.yaml"]


def test_missing_variable_is_named_and_no_secret_is_printed(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CRM_KEY_ID")
    monkeypatch.setenv("CRM_S3_ENDPOINT", f"not-a-url-{SECRET}")
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    crm = examples / "crm.yaml"
    assert err.splitlines() == [
        f"{crm}:11: environment variable CRM_KEY_ID is not set (used as ${{CRM_KEY_ID}})"
    ]
    assert SECRET not in out + err


def test_invalid_endpoint_from_a_secret_variable_is_reported_without_it(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRM_S3_ENDPOINT", f"not-a-url-{SECRET}")
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    crm = examples / "crm.yaml"
    assert err.splitlines() == [
        f"{crm}:10: storage.endpoint_url: endpoint_url must start with http:// or https://"
    ]
    assert SECRET not in out + err


def test_missing_goals_folder_exits_1_naming_it(
    goals_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{goals_dir}: goals folder does not exist\n")


def test_broken_settings_file_exits_1_with_its_line(
    examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = write(tmp_path, "connector.yaml", "log_format: json\nsmtp_prot: 25\n")
    assert main(["--config", str(settings), "validate"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{settings}:2: unknown key 'smtp_prot'\n")


def test_invalid_environment_setting_exits_1_naming_the_variable(
    examples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTOR_SMTP_PORT", "smtp")
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", SECRET)
    assert main(["validate"]) == 2  # configuration error
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "environment: CONNECTOR_SMTP_PORT: Input should be a valid integer, "
        "unable to parse string as an integer\n"
    )


def test_the_installed_command_prints_no_traceback_for_a_broken_folder(goals_dir: Path) -> None:
    goals_dir.mkdir()
    bad = write(goals_dir, "crm.yaml", "goals:\n  - type: import-profiles\n    name: [\n")
    evil = write(goals_dir, "evil.yaml", "goals: !!python/object/apply:os.getcwd []\n")
    result = subprocess.run(
        [sys.executable, "-m", "connector", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr  # a configuration error
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{bad}:3: invalid YAML: expected the node content, but found '<stream end>'",
        f"{evil}:1: unsupported YAML tag !!python/object/apply:os.getcwd",
    ]


def test_bad_formats_time_zones_and_s3_timeouts_fail_validation_with_their_lines(
    goals_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Caught by `validate`, not by every row of the next run."""
    goals_dir.mkdir()
    crm = write(
        goals_dir,
        "crm.yaml",
        """
        storage:
          read_timeout_seconds: 0
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            format:
              timezone: Europe/Amsterdan
              field_separator: ";;"
            mappings:
              - {column: seen, property: seen, type: datetime, date_format: "%H:%M"}
              - {column: born, property: born, type: date, date_format: "%d-%m-%Y %q"}
        """,
    )

    assert main(["validate"]) != 0

    _out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{crm}:2: storage.read_timeout_seconds: Input should be greater than 0",
        f"{crm}:10: goals[0].format.field_separator: must be a single character, got ';;'",
        f"{crm}:9: goals[0].format.timezone: unknown time zone 'Europe/Amsterdan' (use an IANA "
        "name like Europe/Amsterdam)",
        f"{crm}:12: goals[0].mappings[0].date_format: date_format '%H:%M' does not say which "
        "date it is: it needs a year (%Y or %y) and a month (%m, %b or %B) or a day of the "
        "year (%j)",
        f"{crm}:13: goals[0].mappings[1].date_format: date_format '%d-%m-%Y %q' has unknown "
        "directive %q (known: %Y %y %m %d %H %M %S %f %b %B %a %A %j %p %I %z and the others "
        "of strptime)",
    ]
