"""A secret from the environment never appears in an error, even when its own field is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connector.config import load_workspace
from connector.errors import ConfigError

if TYPE_CHECKING:
    from tests.config.conftest import GoalsFolder

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
ENV = {"SECRET": SECRET, "KEY_ID": "AKIAIOSFODNN7EXAMPLE"}
GOAL = """\
goals:
  - type: import-profiles
    name: nightly
    source: {bucket: crm-exports}
    match: {column: customer_id}
    map_all_columns: true
"""


def with_storage(*storage_lines: str) -> str:
    """`storage:` on line 1, the given lines from line 2 on."""
    return "storage:\n" + "".join(f"  {line}\n" for line in storage_lines) + GOAL


def test_secret_in_an_invalid_endpoint_url_is_not_shown(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", with_storage("region: eu-west-1", "endpoint_url: ${SECRET}"))
    problem = goals.expect(
        path, 3, "storage.endpoint_url: endpoint_url must start with http:// or https://", ENV
    )
    assert SECRET not in str(problem)
    assert SECRET not in str(goals.error(ENV))


def test_access_key_without_secret_key_is_reported_without_the_key(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", with_storage("region: eu-west-1", "access_key_id: ${SECRET}"))
    goals.expect(path, 1, "storage: give both access_key_id and secret_access_key, or neither", ENV)
    assert SECRET not in str(goals.error(ENV))


def test_secret_key_without_access_key_is_reported_without_the_secret(goals: GoalsFolder) -> None:
    path = goals.write("crm.yaml", with_storage("secret_access_key: ${SECRET}"))
    goals.expect(path, 1, "storage: give both access_key_id and secret_access_key, or neither", ENV)
    assert SECRET not in str(goals.error(ENV))


@pytest.mark.parametrize(
    "storage_lines",
    [
        ["access_key_id: ${KEY_ID}", "secret_access_key: [${SECRET}]"],
        [
            "access_key_id: ${KEY_ID}",
            "secret_access_key: ${SECRET}",
            "session_token: {t: ${SECRET}}",
        ],
        ["access_key_id: ${KEY_ID}", "secret_access_key: ${SECRET}", "region: [${SECRET}]"],
        ["access_key_id: ${KEY_ID}", "secret_access_key: ${SECRET}", "endpoint_url: x${SECRET}"],
        ["access_key_id: ${KEY_ID}", "secret_access_key: ${SECRET}", "${SECRET}x: 1"],
    ],
    ids=["secret as list", "token as mapping", "region as list", "bad url", "unknown key"],
)
def test_secret_never_appears_in_any_storage_error(
    goals: GoalsFolder, storage_lines: list[str]
) -> None:
    goals.write("crm.yaml", with_storage(*storage_lines))
    error = goals.error(ENV)
    assert error.problems
    assert all(problem.file.endswith("crm.yaml") and problem.line for problem in error.problems)
    assert SECRET not in str(error)
    assert SECRET not in repr(error.problems)


def test_missing_variable_message_shows_no_other_environment_value(goals: GoalsFolder) -> None:
    path = goals.write(
        "crm.yaml",
        with_storage("access_key_id: ${KEY_ID}", "secret_access_key: ${CRM_SECRET}"),
    )
    goals.expect(path, 3, "environment variable CRM_SECRET is not set (used as ${CRM_SECRET})", ENV)
    error = goals.error(ENV)
    assert SECRET not in str(error)
    assert ENV["KEY_ID"] not in str(error)


def test_loaded_secrets_are_masked_when_printed(goals: GoalsFolder) -> None:
    goals.write(
        "crm.yaml",
        with_storage(
            "access_key_id: ${KEY_ID}",
            "secret_access_key: ${SECRET}",
            "session_token: ${SECRET}",
        ),
    )
    connection = goals.load(ENV).connection("crm")
    storage = connection.storage
    assert storage.secret_access_key is not None
    assert storage.secret_access_key.get_secret_value() == SECRET
    for text in (str(connection), repr(connection), str(storage), repr(storage)):
        assert SECRET not in text
        assert ENV["KEY_ID"] not in text


def test_a_secret_variable_used_in_a_plain_field_is_blanked_in_its_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "goals:\n"
        "  - type: import-profiles\n"
        "    name: a\n"
        "    source: {bucket: ok-bucket}\n"
        '    format: {encoding: "${PLANTED_VALUE}"}\n'
        "    match: {column: id}\n"
        "    map_all_columns: true\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        load_workspace(tmp_path, {"PLANTED_VALUE": "Pl4ntedS3cretValue"})

    assert "Pl4ntedS3cretValue" not in str(caught.value)
    assert "c.yaml:5: goals[0].format.encoding: unknown text encoding '***'" in str(caught.value)
