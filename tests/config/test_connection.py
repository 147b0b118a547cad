"""A connection file: every mistake is reported as `FILE:LINE: message` at the right line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from connector.config import ExportProfilesGoal, ImportProfilesGoal

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

MINIMAL = """
storage:
  region: eu-west-1
goals:
  - type: import-profiles
    name: nightly
    source: {bucket: crm-exports}
    match: {column: customer_id}
    mappings:
      - {column: email, property: email}
"""


def test_a_minimal_connection_loads_with_its_id_taken_from_the_file_stem(
    goals: GoalsFolder,
) -> None:
    path = goals.write("crm-eu.yaml", MINIMAL)
    workspace = goals.load()
    connection = workspace.connection("crm-eu")
    assert connection.id == "crm-eu"
    assert connection.title == "crm-eu"
    assert workspace.files["crm-eu"] == path
    goal = connection.goal("nightly")
    assert isinstance(goal, ImportProfilesGoal)
    assert goal.source.bucket == "crm-exports"
    assert goal.match.property == "profile_id"


def test_an_id_written_in_the_file_wins_over_the_file_stem(goals: GoalsFolder) -> None:
    goals.write("crm-eu.yaml", "id: crm\nname: CRM exchange\n" + MINIMAL.removeprefix("\n"))
    workspace = goals.load()
    assert list(workspace.connections) == ["crm"]
    assert workspace.connection("crm").title == "CRM exchange"


def test_a_file_stem_that_is_not_a_valid_id_is_reported(goals: GoalsFolder) -> None:
    path = goals.write("crm eu.yaml", MINIMAL)
    goals.expect(
        path, 1, "id: connection id 'crm eu' may contain letters, digits, '_', '-' and '.'"
    )


def test_unknown_top_level_key_is_reported_with_its_line(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", MINIMAL + "schedules:\n  every_minutes: 5\n")
    goals.expect(path, 10, "unknown key 'schedules'")


TYPO_CASES = {
    "storage": (
        """
        storage:
          region: eu-west-1
          endpoint: http://127.0.0.1:9000
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
        3,
        "unknown key 'endpoint' in storage",
    ),
    "source": (
        """
        goals:
          - type: import-profiles
            name: nightly
            source:
              bucket: crm-exports
              prefx: daily/
            match: {column: customer_id}
            map_all_columns: true
        """,
        6,
        "unknown key 'prefx' in goals[0].source",
    ),
    "format": (
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            format:
              field_separator: ";"
              decimal_seperator: ","
            match: {column: customer_id}
            map_all_columns: true
        """,
        7,
        "unknown key 'decimal_seperator' in goals[0].format",
    ),
    "match": (
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match:
              column: customer_id
              create_mising: true
            map_all_columns: true
        """,
        7,
        "unknown key 'create_mising' in goals[0].match",
    ),
    "mapping": (
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            mappings:
              - {column: email, property: email}
              - column: points
                property: loyalty_points
                rules: sum
        """,
        10,
        "unknown key 'rules' in goals[0].mappings[1]",
    ),
    "export column": (
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            columns:
              - {header: id, value: profile_id}
              - header: Email
                propery: email
        """,
        8,
        "unknown key 'propery' in goals[0].columns[1]",
    ),
    "destination": (
        """
        goals:
          - type: export-profiles
            name: out
            destination:
              bucket: crm-in
              folder: cdp/
            columns:
              - {header: id, value: profile_id}
        """,
        6,
        "unknown key 'folder' in goals[0].destination",
    ),
    "group members": (
        """
        goals:
          - type: import-groups
            name: households
            group_type: household
            source: {bucket: crm-exports}
            match: {column: household_id}
            members: {column: member_ids, propertey: customer_id}
        """,
        7,
        "unknown key 'propertey' in goals[0].members",
    ),
    "schedule": (
        """
        schedule:
          every_minutes: 30
          time_zone: Europe/Amsterdam
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
        3,
        "unknown key 'time_zone' in schedule",
    ),
    "notifications": (
        """
        notifications:
          emails: [ops@example.com]
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
        2,
        "unknown key 'emails' in notifications",
    ),
}


@pytest.mark.parametrize(("text", "line", "message"), TYPO_CASES.values(), ids=TYPO_CASES.keys())
def test_unknown_key_is_reported_with_its_line_at_every_level(
    goals: GoalsFolder, text: str, line: int, message: str
) -> None:
    path = goals.write("crm.yaml", text)
    goals.expect(path, line, message)


def test_misspelled_key_in_weekday_of_month_reports_the_typo_and_the_missing_key(
    goals: GoalsFolder,
) -> None:
    goals.write(
        "crm.yaml",
        """
        schedule:
          weekday_of_month:
            ordinal: 2
            day: tue
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
    )
    assert sorted(goals.problems()) == [
        "crm.yaml:2: missing required key 'schedule.weekday_of_month.weekday'",
        "crm.yaml:4: unknown key 'day' in schedule.weekday_of_month",
    ]


def test_wrong_type_is_reported_with_the_line_of_the_value(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        schedule:
          every_minutes: often
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
    )
    goals.expect(
        path,
        2,
        "schedule.every_minutes: Input should be a valid integer, "
        "unable to parse string as an integer",
    )


def test_wrong_boolean_is_reported_with_its_line(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id, create_missing: sometimes}
            map_all_columns: true
        """,
    )
    goals.expect(
        path,
        5,
        "goals[0].match.create_missing: Input should be a valid boolean, unable to interpret input",
    )


BUCKET_RULES = "may contain only lower-case letters, digits, dots and hyphens, and must start and end with a letter or digit"


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ("CRM-Exports", BUCKET_RULES),
        ("crm_exports", BUCKET_RULES),
        ("-crm-exports", BUCKET_RULES),
        ("crm-exports-", BUCKET_RULES),
        ("ab", "must be 3 to 63 characters long"),
        ("a" * 64, "must be 3 to 63 characters long"),
        ("192.168.10.1", "must not look like an IP address"),
        ("crm..exports", "must not contain '..', '.-' or '-.'"),
        ("crm.-exports", "must not contain '..', '.-' or '-.'"),
        ("xn--crm", "uses a prefix or suffix S3 reserves"),
    ],
)
def test_bad_bucket_name_is_reported_with_the_line_of_the_bucket(
    goals: GoalsFolder, bucket: str, reason: str
) -> None:
    path = goals.write(
        "crm.yaml",
        f"""
        goals:
          - type: import-profiles
            name: nightly
            source:
              prefix: daily/
              bucket: "{bucket}"
            match: {{column: customer_id}}
            map_all_columns: true
        """,
    )
    goals.expect(path, 6, f"goals[0].source.bucket: bucket name {bucket!r} {reason}")


def test_bad_bucket_name_in_an_export_destination_is_reported(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: CRM_IN}
            columns:
              - {header: id, value: profile_id}
        """,
    )
    goals.expect(path, 4, f"goals[0].destination.bucket: bucket name 'CRM_IN' {BUCKET_RULES}")


@pytest.mark.parametrize(
    "bucket", ["crm", "crm-exports", "crm.exports.eu", "a" * 63, "1st-bucket", "10.0.0.1.x"]
)
def test_good_bucket_names_are_accepted(goals: GoalsFolder, bucket: str) -> None:
    goals.write(
        "crm.yaml",
        f"""
        goals:
          - type: import-profiles
            name: nightly
            source: {{bucket: "{bucket}"}}
            match: {{column: customer_id}}
            map_all_columns: true
        """,
    )
    goal = goals.load().connection("crm").goals[0]
    assert isinstance(goal, ImportProfilesGoal)
    assert goal.source.bucket == bucket


def test_sum_of_dates_is_reported_on_the_mapping(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            mappings:
              - {column: email, property: email}
              - {column: birth, property: birth_date, rule: sum, type: date}
        """,
    )
    goals.expect(
        path, 8, "goals[0].mappings[1]: rule sum adds numbers; column 'birth' has type date"
    )


def test_unknown_rule_is_reported_with_its_line(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            mappings:
              - column: email
                property: email
                rule: replace
        """,
    )
    goals.expect(
        path,
        9,
        "goals[0].mappings[0].rule: Input should be 'set', 'set_if_empty', 'add' or 'sum'",
    )


def test_duplicate_goal_names_are_reported_at_the_second_name(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
          - type: export-profiles
            destination: {bucket: crm-in}
            name: nightly
            columns:
              - {header: id, value: profile_id}
        """,
    )
    goals.expect(path, 9, "goals[1].name: goal names must be unique in a connection: nightly")


def test_missing_goals_is_reported(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", "name: CRM\nstorage:\n  region: eu-west-1\n")
    goals.expect(path, 1, "missing required key 'goals'")


def test_empty_goals_list_is_reported_on_the_goals_key(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", "name: CRM\ngoals: []\n")
    goals.expect(path, 2, "goals: List should have at least 1 item after validation, not 0")


def test_missing_source_bucket_is_reported_on_the_source_key(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source:
              prefix: daily/
            match: {column: customer_id}
            map_all_columns: true
        """,
    )
    goals.expect(path, 4, "missing required key 'goals[0].source.bucket'")


def test_missing_match_is_reported_on_the_goal(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        name: CRM
        goals:
          - name: nightly
            type: import-profiles
            source: {bucket: crm-exports}
            map_all_columns: true
        """,
    )
    goals.expect(path, 3, "missing required key 'goals[0].match'")


def test_import_goal_without_mappings_is_reported(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
        """,
    )
    goals.expect(path, 2, "goals[0]: an import goal needs `mappings` or `map_all_columns: true`")


def test_unknown_goal_type_is_reported_at_the_type_key(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - name: nightly
            source: {bucket: crm-exports}
            type: import-profile
            match: {column: customer_id}
        """,
    )
    goals.expect(
        path,
        4,
        "goals[0].type: unknown goal type 'import-profile'; "
        "expected 'import-profiles', 'export-profiles', 'import-groups'",
    )


def test_goal_without_type_is_reported_on_the_goal(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - name: nightly
            source: {bucket: crm-exports}
        """,
    )
    goals.expect(
        path, 2, "goals[0]: missing key 'type' (import-profiles, export-profiles or import-groups)"
    )


@pytest.mark.parametrize(
    ("column", "given"),
    [
        ("{header: Email, value: profile_id, property: email}", "value, property"),
        ("{header: Email, property: email, text: CDP}", "property, text"),
        ("{header: Email}", "none"),
    ],
)
def test_export_column_needs_exactly_one_of_value_property_text(
    goals: GoalsFolder, column: str, given: str
) -> None:
    path = goals.write(
        "crm.yaml",
        f"""
        goals:
          - type: export-profiles
            name: out
            destination: {{bucket: crm-in}}
            columns:
              - {{header: id, value: profile_id}}
              - {column}
        """,
    )
    goals.expect(
        path,
        7,
        "goals[0].columns[1]: column 'Email' needs exactly one of value, property or text; "
        f"given: {given}",
    )


def test_duplicate_export_headers_are_reported_at_the_second_header(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            columns:
              - {header: id, value: profile_id}
              - {header: email, property: email}
              - {header: id, property: customer_id}
        """,
    )
    goals.expect(path, 8, "goals[0].columns[2].header: duplicate column headers: id")


def test_export_goal_reads_the_contract_keys(goals: GoalsFolder) -> None:
    goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: high-value-out
            destination: {bucket: crm-in, directory: "cdp/%SEGMENT_NAME%/", file_name: latest}
            mode: incremental
            format: {field_separator: ",", header: true}
            compression: gzip
            manifest: true
            columns:
              - {header: id, value: profile_id}
              - {header: Email, property: email}
              - {header: segments, value: segments}
              - {header: source, text: CDP}
        """,
    )
    goal = goals.load().connection("crm").goal("high-value-out")
    assert isinstance(goal, ExportProfilesGoal)
    assert (goal.segment, goal.mode, goal.compression, goal.manifest) == (
        "all",
        "incremental",
        "gzip",
        True,
    )
    assert goal.destination.directory == "cdp/%SEGMENT_NAME%/"
    assert [column.header for column in goal.columns] == ["id", "Email", "segments", "source"]


def test_invalid_notification_address_is_reported(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        """
        notifications:
          email: [ops@example.com, not-an-address]
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: crm-exports}
            match: {column: customer_id}
            map_all_columns: true
        """,
    )
    goals.expect(path, 2, "notifications.email: not an email address: not-an-address")


def test_every_problem_of_a_file_is_reported_in_one_go(goals: GoalsFolder) -> None:
    goals.write(
        "crm.yaml",
        """
        storage:
          regoin: eu-west-1
        schedule:
          every_hours: 5
        goals:
          - type: import-profiles
            name: nightly
            source: {bucket: Crm}
            match: {column: customer_id}
            map_all_columns: true
        """,
    )
    assert sorted(goals.problems()) == [
        "crm.yaml:2: unknown key 'regoin' in storage",
        "crm.yaml:4: schedule.every_hours: every_hours must be one of 3, 6, 8, 12, 24, got 5",
        f"crm.yaml:8: goals[0].source.bucket: bucket name 'Crm' {BUCKET_RULES}",
    ]


def test_s3_timeouts_and_attempts_are_read_per_connection(goals: GoalsFolder) -> None:
    goals.write(
        "crm.yaml",
        MINIMAL.replace(
            "  region: eu-west-1\n",
            "  region: eu-west-1\n  connect_timeout_seconds: 0.5\n"
            "  read_timeout_seconds: 90\n  max_attempts: 5\n",
        ),
    )
    storage = goals.load().connection("crm").storage
    assert (
        storage.connect_timeout_seconds,
        storage.read_timeout_seconds,
        storage.max_attempts,
    ) == (0.5, 90, 5)


def test_s3_timeouts_default_to_the_s3_clients_own(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", MINIMAL)
    storage = goals.load().connection("crm").storage
    assert (storage.connect_timeout_seconds, storage.read_timeout_seconds) == (None, None)
    assert storage.max_attempts is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "connect_timeout_seconds: 0",
            "storage.connect_timeout_seconds: Input should be greater than 0",
        ),
        (
            "read_timeout_seconds: -1",
            "storage.read_timeout_seconds: Input should be greater than 0",
        ),
        (
            "read_timeout_seconds: soon",
            "storage.read_timeout_seconds: Input should be a valid number, unable to parse "
            "string as a number",
        ),
        ("max_attempts: 0", "storage.max_attempts: Input should be greater than or equal to 1"),
        ("max_attempts: 50", "storage.max_attempts: Input should be less than or equal to 10"),
    ],
)
def test_a_bad_s3_timeout_or_attempt_count_is_reported_with_its_line(
    goals: GoalsFolder, line: str, message: str
) -> None:
    path = goals.write(
        "crm.yaml", MINIMAL.replace("  region: eu-west-1\n", f"  region: eu-west-1\n  {line}\n")
    )
    goals.expect(path, 3, message)
