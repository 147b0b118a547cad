"""The goals folder as a whole: the shipped examples, and what one file cannot check alone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connector.config import ExportProfilesGoal, ImportGroupsGoal, ImportProfilesGoal
from connector.config import load_workspace as load_workspace_directly
from connector.errors import ConfigError

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

EXAMPLES = Path(__file__).resolve().parents[2] / "goals"
CRM_ENV = {"CRM_KEY_ID": "AKIAEXAMPLEKEY", "CRM_SECRET": "example-secret-value"}

IMPORT_GOAL = """
goals:
  - type: import-profiles
    name: nightly
    source: {bucket: crm-exports}
    match: {column: customer_id}
    map_all_columns: true
"""

EXPORT_GOAL = """
goals:
  - type: export-profiles
    name: out
    destination: {{bucket: crm-in}}
    segment: {segment}
    columns:
      - {{header: id, value: profile_id}}
"""

SEGMENTS = """
segments:
  - id: high-value
    where: {property: total_spent, gte: 1000}
"""


def test_shipped_examples_validate(tmp_path: Path) -> None:
    folder = tmp_path / "goals"
    shutil.copytree(EXAMPLES, folder)
    workspace = load_workspace_directly(folder, CRM_ENV)
    assert sorted(workspace.connections) == ["crm"]
    assert sorted(workspace.segments) == ["high-value", "newsletter"]
    crm = workspace.connection("crm")
    assert crm.title == "CRM exchange"
    assert [type(goal) for goal in crm.goals] == [
        ImportProfilesGoal,
        ImportGroupsGoal,
        ExportProfilesGoal,
    ]
    assert crm.schedule is not None
    assert (crm.schedule.form, crm.schedule.every_minutes) == ("every_minutes", 30)
    assert crm.storage.endpoint_url is None  # ${CRM_S3_ENDPOINT:-} left empty: AWS itself
    assert crm.storage.access_key_id is not None
    assert crm.storage.access_key_id.get_secret_value() == "AKIAEXAMPLEKEY"


def test_shipped_examples_without_their_variables_name_each_missing_one(tmp_path: Path) -> None:
    folder = tmp_path / "goals"
    shutil.copytree(EXAMPLES, folder)
    with pytest.raises(ConfigError) as caught:
        load_workspace_directly(folder, {"CRM_S3_ENDPOINT": "http://127.0.0.1:9000"})
    crm = folder / "crm.yaml"
    lines = crm.read_text().splitlines()
    key_line = next(n for n, text in enumerate(lines, 1) if "${CRM_KEY_ID}" in text)
    secret_line = next(n for n, text in enumerate(lines, 1) if "${CRM_SECRET}" in text)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{crm}:{key_line}: environment variable CRM_KEY_ID is not set (used as ${{CRM_KEY_ID}})",
        f"{crm}:{secret_line}: environment variable CRM_SECRET is not set "
        "(used as ${CRM_SECRET})",
    ]


def test_duplicate_connection_ids_across_two_files_are_reported_on_the_second(
    goals: GoalsFolder,
) -> None:
    goals.write("a-crm.yaml", "id: crm" + IMPORT_GOAL)
    second = goals.write("b-crm.yaml", "name: Second CRM\nid: crm" + IMPORT_GOAL)
    goals.expect(second, 2, "connection id 'crm' is also used by a-crm.yaml")


def test_an_id_that_collides_with_another_files_stem_is_reported(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", IMPORT_GOAL)
    other = goals.write("other.yaml", "id: crm" + IMPORT_GOAL)
    goals.expect(other, 1, "connection id 'crm' is also used by crm.yaml")


def test_unknown_segment_in_an_export_goal_is_reported_on_the_segment_key(
    goals: GoalsFolder,
) -> None:
    goals.write("segments.yaml", SEGMENTS)
    path = goals.write("crm.yaml", EXPORT_GOAL.format(segment="high-valu"))
    goals.expect(path, 5, "unknown segment 'high-valu' (segments: all, high-value)")


def test_known_segment_and_the_builtin_all_segment_are_accepted(goals: GoalsFolder) -> None:
    goals.write("segments.yaml", SEGMENTS)
    goals.write("crm.yaml", EXPORT_GOAL.format(segment="high-value"))
    goals.write("everyone.yaml", EXPORT_GOAL.format(segment="all"))
    workspace = goals.load()
    assert sorted(workspace.connections) == ["crm", "everyone"]


def test_unknown_segment_in_a_segments_column_is_reported_on_its_line(goals: GoalsFolder) -> None:
    goals.write("segments.yaml", SEGMENTS)
    path = goals.write(
        "crm.yaml",
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            columns:
              - {header: id, value: profile_id}
              - header: segments
                value: segments
                segments: [high-value, low-value]
        """,
    )
    goals.expect(path, 9, "unknown segment(s): low-value")


ENCRYPTED_EXPORT = """
goals:
  - type: export-profiles
    name: out
    destination: {bucket: crm-in}
    encryption:
      public_key_file: keys/partner.asc
    columns:
      - {header: id, value: profile_id}
"""


def test_missing_public_key_file_is_reported_on_its_line(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", ENCRYPTED_EXPORT)
    goals.expect(path, 6, f"public key file {goals.path / 'keys' / 'partner.asc'} not found")


def test_public_key_file_is_found_relative_to_the_goals_folder(goals: GoalsFolder) -> None:
    goals.write("keys/partner.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    goals.write("crm.yaml", ENCRYPTED_EXPORT)
    workspace = goals.load()
    goal = workspace.connection("crm").goal("out")
    assert isinstance(goal, ExportProfilesGoal)
    assert goal.encryption is not None
    key_file = workspace.resolve_path(goal.encryption.public_key_file)
    assert key_file == goals.path / "keys" / "partner.asc"


@pytest.mark.parametrize("text", ["- just\n- a list\n", "just text\n", "# nothing\n"])
def test_a_connection_file_that_is_not_a_mapping_is_reported(goals: GoalsFolder, text: str) -> None:
    path = goals.write("crm.yaml", text)
    goals.expect(path, 1, "a connection file must be a mapping")


def test_problems_of_every_file_are_reported_together(goals: GoalsFolder) -> None:
    goals.write("a.yaml", "id: [unclosed\n")
    goals.write("b.yaml", "colour: red" + IMPORT_GOAL)
    goals.write("c.yml", "storage:\n  region: ${REGION}" + IMPORT_GOAL)
    goals.write("segments.yaml", "segments:\n  - id: all\n    where: {property: x, exists: true}\n")
    assert sorted(goals.problems()) == [
        "a.yaml:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        "b.yaml:1: unknown key 'colour'",
        "c.yml:2: environment variable REGION is not set (used as ${REGION})",
        "segments.yaml:2: segments[0]: segment id 'all' is built in; choose another id",
    ]


def test_only_visible_yaml_files_are_connection_files(goals: GoalsFolder) -> None:
    goals.write("crm.yml", IMPORT_GOAL)
    goals.write("README.md", "not yaml: [\n")
    goals.write(".crm.yaml.swp", "not yaml: [\n")
    goals.write(".draft.yaml", "not yaml: [\n")
    goals.write("keys/partner.yaml", "not yaml: [\n")
    assert list(goals.load().connections) == ["crm"]


def test_missing_goals_folder_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as caught:
        load_workspace_directly(missing, {})
    assert str(caught.value) == f"{missing}: goals folder does not exist"


def test_unknown_connection_names_the_known_ones(goals: GoalsFolder) -> None:
    goals.write("crm.yaml", IMPORT_GOAL)
    workspace = goals.load()
    with pytest.raises(KeyError, match=r"no connection 'erp' .*connections: crm"):
        workspace.connection("erp")
    with pytest.raises(KeyError, match=r"has no goal 'daily' \(goals: nightly\)"):
        workspace.connection("crm").goal("daily")
