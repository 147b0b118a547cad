"""How the import keys `after_import`, `modified_since`, `max_age_days`, `delete_column`
and headerless `format.columns` are checked, and where their errors point."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from connector.config import ImportGroupsGoal, ImportProfilesGoal
from connector.config.goal_parts import MoveTo

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

GOAL = """
storage: {{region: eu-west-1}}
goals:
  - type: import-profiles
    name: nightly
    source:
      bucket: crm-exports
      prefix: {prefix}
{source_extra}    match: {{column: customer_id}}
    map_all_columns: true
{goal_extra}"""


def connection(prefix: str = "in/", source_extra: str = "", goal_extra: str = "") -> str:
    """A connection with one import goal; extras are indented YAML lines."""
    return GOAL.format(prefix=prefix or '""', source_extra=source_extra, goal_extra=goal_extra)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of `fragment` in `text` as written (after the leading newline)."""
    lines = text.removeprefix("\n").splitlines()
    return next(number for number, line in enumerate(lines, 1) if fragment in line)


def import_goal(goals: GoalsFolder) -> ImportProfilesGoal:
    goal = goals.load().connection("crm").goal("nightly")
    assert isinstance(goal, ImportProfilesGoal)
    return goal


# ---------------------------------------------------------------- after_import


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        ("", "keep"),
        ("    after_import: keep\n", "keep"),
        ("    after_import: done_suffix\n", "done_suffix"),
        ("    after_import: {move_to: archive/}\n", MoveTo(move_to="archive/")),
    ],
    ids=["default", "keep", "done_suffix", "move_to"],
)
def test_after_import_takes_keep_done_suffix_or_a_move_to_prefix(
    goals: GoalsFolder, yaml_value: str, expected: object
) -> None:
    goals.write("crm.yaml", connection(goal_extra=yaml_value))

    assert import_goal(goals).after_import == expected


@pytest.mark.parametrize(
    ("prefix", "move_to", "where"),
    [
        ("in/", "in/done/", "under the source prefix 'in/'"),
        ("in", "inbox-archive/", "under the source prefix 'in'"),
        ("", "archive/", "in the listed bucket (source.prefix is empty, so every key is listed)"),
    ],
    ids=["below-the-prefix", "sharing-a-prefix-without-slash", "empty-source-prefix"],
)
def test_move_to_under_the_source_prefix_is_an_error_on_the_move_to_line(
    goals: GoalsFolder, prefix: str, move_to: str, where: str
) -> None:
    text = connection(prefix=prefix, goal_extra=f"    after_import:\n      move_to: {move_to}\n")
    path = goals.write("crm.yaml", text)

    goals.expect(
        path,
        line_of(text, "move_to:"),
        f"goals[0].after_import.move_to: {move_to!r} lies {where}: "
        "moved files would be listed again",
    )


@pytest.mark.parametrize("move_to", ["../archive/", "archive/../in/", "/archive/"])
def test_move_to_that_is_not_a_plain_key_prefix_is_an_error_on_its_line(
    goals: GoalsFolder, move_to: str
) -> None:
    text = connection(goal_extra=f"    after_import: {{move_to: {move_to}}}\n")
    path = goals.write("crm.yaml", text)

    goals.expect(
        path,
        line_of(text, "after_import:"),
        f"goals[0].after_import.move_to: {move_to!r} must be a plain key prefix "
        "(no leading '/', no '..')",
    )


@pytest.mark.parametrize("value", ["done", "true", "[keep]", "{move: archive/}"])
def test_an_after_import_of_no_known_form_is_one_error_naming_the_forms(
    goals: GoalsFolder, value: str
) -> None:
    text = connection(goal_extra=f"    after_import: {value}\n")
    path = goals.write("crm.yaml", text)

    message = "must be keep, done_suffix or {move_to: PREFIX}"
    if value.startswith("{"):
        message = "missing required key 'goals[0].after_import.move_to'"
        assert goals.problems() == [
            f"crm.yaml:{line_of(text, 'after_import')}: {message}",
            f"crm.yaml:{line_of(text, 'after_import')}: "
            "unknown key 'move' in goals[0].after_import",
        ]
    else:
        goals.expect(path, line_of(text, "after_import"), f"goals[0].after_import: {message}")


def test_the_cli_validate_prints_a_move_to_error_as_file_line_message(
    goals: GoalsFolder,
) -> None:
    text = connection(goal_extra="    after_import: {move_to: in/old/}\n")
    path = goals.write("crm.yaml", text)

    result = subprocess.run(
        [sys.executable, "-m", "connector", "validate"],
        env={"CONNECTOR_GOALS_DIR": str(goals.path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 2, result.stdout + result.stderr  # a configuration error
    expected = (
        f"{path}:{line_of(text, 'after_import')}: goals[0].after_import.move_to: 'in/old/' "
        "lies under the source prefix 'in/': moved files would be listed again"
    )
    assert expected in result.stdout + result.stderr


# ---------------------------------------------------------------- the time window


def test_modified_since_and_max_age_days_together_are_an_error_on_the_source_line(
    goals: GoalsFolder,
) -> None:
    text = connection(source_extra="      modified_since: 2024-05-01\n      max_age_days: 7\n")
    path = goals.write("crm.yaml", text)

    goals.expect(
        path,
        line_of(text, "source:"),
        "goals[0].source: give modified_since or max_age_days, not both",
    )


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_max_age_days_must_be_a_whole_number_of_at_least_one(goals: GoalsFolder, days: str) -> None:
    text = connection(source_extra=f"      max_age_days: {days}\n")
    goals.write("crm.yaml", text)

    [problem] = goals.problems()

    assert problem.startswith(f"crm.yaml:{line_of(text, 'max_age_days')}: ")
    assert "goals[0].source.max_age_days" in problem


@pytest.mark.parametrize(
    ("written", "oldest"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T06:30:00", datetime(2024, 5, 1, 6, 30, tzinfo=UTC)),
        (
            "2024-05-01T06:30:00+02:00",
            datetime(2024, 5, 1, 6, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
        ('"2024-05-01"', datetime(2024, 5, 1, tzinfo=UTC)),
    ],
    ids=["date-is-midnight-utc", "naive-is-utc", "offset-kept", "quoted-date"],
)
def test_modified_since_starts_the_window_at_that_moment(
    goals: GoalsFolder, written: str, oldest: datetime
) -> None:
    goals.write("crm.yaml", connection(source_extra=f"      modified_since: {written}\n"))

    assert import_goal(goals).source.oldest_allowed(datetime.now(UTC)) == oldest


def test_max_age_days_starts_the_window_that_many_days_before_the_run(
    goals: GoalsFolder,
) -> None:
    goals.write("crm.yaml", connection(source_extra="      max_age_days: 3\n"))
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)

    assert import_goal(goals).source.oldest_allowed(now) == datetime(2024, 5, 7, 12, 0, tzinfo=UTC)


def test_without_modified_since_or_max_age_days_there_is_no_window(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", connection())

    source = import_goal(goals).source
    assert (source.modified_since, source.max_age_days) == (None, None)
    assert source.oldest_allowed(datetime.now(UTC)) is None


def test_a_modified_since_that_is_not_a_date_is_an_error_on_its_line(goals: GoalsFolder) -> None:
    text = connection(source_extra="      modified_since: last tuesday\n")
    goals.write("crm.yaml", text)

    problems = goals.problems()

    assert problems
    assert all(p.startswith(f"crm.yaml:{line_of(text, 'modified_since')}: ") for p in problems)


# ---------------------------------------------------------------- delete_column and headers


def test_delete_column_names_a_column_of_an_import_profiles_goal(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", connection(goal_extra="    delete_column: deleted\n"))

    assert import_goal(goals).delete_column == "deleted"


def test_delete_column_is_unknown_in_an_import_groups_goal(goals: GoalsFolder) -> None:
    text = """
    storage: {region: eu-west-1}
    goals:
      - type: import-groups
        name: households
        group_type: household
        source: {bucket: crm-exports}
        match: {column: household_id}
        delete_column: deleted
    """
    path = goals.write("crm.yaml", text)

    goals.expect(path, 8, "unknown key 'delete_column' in goals[0]")
    assert "delete_column" not in ImportGroupsGoal.model_fields


def test_header_false_with_columns_validates(goals: GoalsFolder) -> None:
    text = connection(goal_extra="    format: {header: false, columns: [customer_id, email]}\n")
    goals.write("crm.yaml", text)

    fmt = import_goal(goals).format
    assert (fmt.header, fmt.columns) == (False, ["customer_id", "email"])


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{header: false}", "a file without a header row (header: false) needs `columns: [...]`"),
        ("{columns: [a, b]}", "`columns` is only for files without a header row (header: false)"),
        ("{header: false, columns: [a, b, a]}", "duplicate column names: a"),
    ],
    ids=["headerless-without-columns", "columns-with-a-header", "duplicate-columns"],
)
def test_format_columns_go_with_header_false_only_and_are_unique(
    goals: GoalsFolder, fmt: str, message: str
) -> None:
    text = connection(goal_extra=f"    format: {fmt}\n")
    path = goals.write("crm.yaml", text)

    goals.expect(path, line_of(text, "format:"), f"goals[0].format: {message}")


def test_the_day_boundary_of_a_modified_since_date_is_utc_midnight() -> None:
    """A date is read as the start of that day in UTC, whatever the format's time zone."""
    goal = ImportProfilesGoal.model_validate(
        {
            "type": "import-profiles",
            "name": "n",
            "source": {"bucket": "crm-exports", "modified_since": date(2024, 5, 1)},
            "format": {"timezone": "Europe/Amsterdam"},
            "match": {"column": "c"},
            "map_all_columns": True,
        }
    )

    assert goal.source.oldest_allowed(datetime.now(UTC)) == datetime(2024, 5, 1, tzinfo=UTC)
