"""The README's configuration examples are real: assembled into a goals folder, they validate."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from connector.config import load_workspace

README = Path(__file__).resolve().parents[2] / "README.md"
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def _blocks() -> list[str]:
    return _YAML_BLOCK.findall(README.read_text(encoding="utf-8"))


def _goal_blocks(blocks: list[str]) -> list[str]:
    return [block for block in blocks if block.lstrip().startswith("- type:")]


def test_readme_shows_a_connection_every_goal_type_and_segments() -> None:
    blocks = _blocks()
    kinds = {re.search(r"type: (\S+)", block)[1] for block in _goal_blocks(blocks)}  # type: ignore[index]
    assert kinds == {"import-profiles", "import-groups", "export-profiles"}
    assert any(block.startswith("id: crm") for block in blocks)
    assert any(block.startswith("segments:") for block in blocks)


def test_readme_examples_validate_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks()
    connection = next(block for block in blocks if block.startswith("id: crm"))
    goals = "\n".join(textwrap.indent(block, "  ") for block in _goal_blocks(blocks))
    connection = connection.replace("goals: [...]", "goals:\n" + goals)
    (tmp_path / "crm.yaml").write_text(connection, encoding="utf-8")
    segments = next(block for block in blocks if block.startswith("segments:"))
    (tmp_path / "segments.yaml").write_text(segments, encoding="utf-8")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "partner.asc").write_text("placeholder key file\n", encoding="utf-8")
    environ = {
        "CRM_KEY_ID": "readme-example-key-id-5d1f",
        "CRM_SECRET": "readme-example-secret-9b2c",
    }

    workspace = load_workspace(tmp_path, environ)

    crm = workspace.connection("crm")
    assert [goal.type for goal in crm.goals] == [
        "import-profiles",
        "import-groups",
        "export-profiles",
    ]
    assert crm.schedule is not None
    assert crm.schedule.every_minutes == 30
    assert set(workspace.segments) == {"high-value"}


def test_example_goals_folder_validates() -> None:
    goals_dir = README.parent / "goals"
    workspace = load_workspace(
        goals_dir,
        {"CRM_KEY_ID": "readme-example-key-id-5d1f", "CRM_SECRET": "readme-example-secret-9b2c"},
    )
    assert "crm" in workspace.connections
