"""`connector schema`: the JSON Schemas editors check goal files with, held to `validate`'s verdicts.

Every case is written into a goals folder, then judged twice: by the `jsonschema` library with
the shipped schema, and by `connector validate`. The two must agree, and agree with the case.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from connector.cli import main
from connector.config.schema import connection_schema, render, segments_schema
from connector.config.yaml_source import load_yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "goals"
SHIPPED = {
    "connection": EXAMPLES / "connection.schema.json",
    "segments": EXAMPLES / "segments.schema.json",
}
ENVIRON = {"CRM_KEY_ID": "schema-test-key-id-7a1c", "CRM_SECRET": "schema-test-secret-3e9d"}
Data = dict[str, Any]


def _schema_errors(path: Path) -> list[str]:
    """The shipped schema's errors for a goal file, read as an editor sees it: plain JSON data."""
    kind = "segments" if path.stem == "segments" else "connection"
    schema = json.loads(SHIPPED[kind].read_text(encoding="utf-8"))
    data = load_yaml(path, ENVIRON).data
    as_json = json.loads(json.dumps(data, default=lambda value: value.isoformat()))
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for error in validator.iter_errors(as_json)]


@pytest.fixture
def goals_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty goals folder the CLI reads, as the operator would give it."""
    for name in list(os.environ):
        if name.upper().startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    folder = tmp_path / "goals"
    folder.mkdir()
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(tmp_path / "connector.db"))
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    return folder


def _validate(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["validate"])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- the shipped files


def test_shipped_schemas_equal_the_generated_ones() -> None:
    stale = [
        path.name
        for path, schema in (
            (SHIPPED["connection"], connection_schema()),
            (SHIPPED["segments"], segments_schema()),
        )
        if path.read_text(encoding="utf-8") != render(schema)
    ]
    assert stale == [], (
        "a model changed: regenerate with `connector schema > goals/connection.schema.json` "
        "and `connector schema --segments > goals/segments.schema.json`"
    )


@pytest.mark.parametrize("kind", ["connection", "segments"])
def test_shipped_schemas_are_valid_draft_2020_12(kind: str) -> None:
    schema = json.loads(SHIPPED[kind].read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _fields(schema: Data) -> Iterator[tuple[str, Data]]:
    yield from ((f"(top).{name}", field) for name, field in schema["properties"].items())
    for model, definition in schema["$defs"].items():
        for name, field in definition.get("properties", {}).items():
            yield f"{model}.{name}", field


@pytest.mark.parametrize("kind", ["connection", "segments"])
def test_every_field_has_a_title_and_a_description_for_editors(kind: str) -> None:
    schema = json.loads(SHIPPED[kind].read_text(encoding="utf-8"))
    missing = [
        name
        for name, field in _fields(schema)
        if not field.get("title") or not field.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize("name", ["crm.yaml", "segments.yaml"])
def test_example_goals_name_their_schema_on_the_first_line(name: str) -> None:
    kind = "segments" if name == "segments.yaml" else "connection"
    first = (EXAMPLES / name).read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema=./{kind}.schema.json"


def test_every_example_goal_file_passes_the_schema_and_validate(
    goals_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {path.name for path in files} >= {"crm.yaml", "segments.yaml"}
    for path in files:
        assert _schema_errors(path) == [], path.name
        (goals_dir / path.name).write_bytes(path.read_bytes())
    assert _validate(capsys) == (0, "")


def test_the_command_prints_the_schema_as_json() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CONNECTOR_")}
    for args, kind in ((["schema"], "connection"), (["schema", "--segments"], "segments")):
        done = subprocess.run(
            [sys.executable, "-m", "connector", *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == json.loads(SHIPPED[kind].read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the same verdicts as validate

BASE_CONNECTION: Data = {
    "name": "CRM",
    "storage": {"region": "eu-west-1"},
    "schedule": {"timezone": "Europe/Amsterdam", "every_minutes": 30},
    "goals": [
        {
            "type": "import-profiles",
            "name": "customers",
            "source": {"bucket": "crm-exports", "prefix": "in/"},
            "format": {"field_separator": ";"},
            "match": {"column": "id", "property": "customer_id", "create_missing": True},
            "mappings": [{"column": "email", "property": "email", "rule": "set"}],
        },
        {
            "type": "import-groups",
            "name": "households",
            "group_type": "household",
            "source": {"bucket": "crm-exports", "prefix": "groups/"},
            "match": {"column": "household_id"},
        },
        {
            "type": "export-profiles",
            "name": "out",
            "segment": "vip",
            "destination": {"bucket": "crm-in"},
            "columns": [{"header": "id", "value": "profile_id"}],
        },
    ],
}
BASE_SEGMENTS: Data = {
    "segments": [{"id": "vip", "where": {"property": "vip", "equals": True}}],
}
Change = Callable[[Data], object]


def _importing(data: Data) -> Data:
    return data["goals"][0]


def _groups(data: Data) -> Data:
    return data["goals"][1]


def _exporting(data: Data) -> Data:
    return data["goals"][2]


def _condition(data: Data) -> Data:
    return data["segments"][0]["where"]


REJECTED: dict[str, tuple[str, Change]] = {
    "typo at the top": ("crm.yaml", lambda d: d.update(enabeld=True)),
    "typo in a format": ("crm.yaml", lambda d: _importing(d)["format"].update(field_seperator=",")),
    "typo in a mapping": ("crm.yaml", lambda d: _importing(d)["mappings"][0].update(rul="set")),
    "typo in a destination": (
        "crm.yaml",
        lambda d: _exporting(d)["destination"].update(file_nmae="x"),
    ),
    "typo in a schedule": ("crm.yaml", lambda d: d["schedule"].update(every_minute=5)),
    "typo in a segment": ("segments.yaml", lambda d: d["segments"][0].update(wehre={})),
    "typo in a condition": ("segments.yaml", lambda d: _condition(d).update(equal=1)),
    "rule name": ("crm.yaml", lambda d: _importing(d)["mappings"][0].update(rule="overwrite")),
    "rule name in capitals": (
        "crm.yaml",
        lambda d: _importing(d)["mappings"][0].update(rule="Set"),
    ),
    "two schedule forms": ("crm.yaml", lambda d: d["schedule"].update(every_hours=6)),
    "no schedule form": ("crm.yaml", lambda d: d["schedule"].pop("every_minutes")),
    "every_hours not a choice": ("crm.yaml", lambda d: d.update(schedule={"every_hours": 5})),
    "times_per_day not dividing a day": (
        "crm.yaml",
        lambda d: d.update(schedule={"times_per_day": 7}),
    ),
    "day of month 32": ("crm.yaml", lambda d: d.update(schedule={"days_of_month": [1, 32]})),
    "weekday misspelled": ("crm.yaml", lambda d: d.update(schedule={"days_of_week": ["monday"]})),
    "at out of range": ("crm.yaml", lambda d: d["schedule"].update(at="25:00")),
    "minutes as text": ("crm.yaml", lambda d: d["schedule"].update(every_minutes="thirty")),
    "goals as a mapping": ("crm.yaml", lambda d: d.update(goals={"customers": {}})),
    "no goals": ("crm.yaml", lambda d: d.update(goals=[])),
    "enabled as a number": ("crm.yaml", lambda d: d.update(enabled=5)),
    "files as one text": ("crm.yaml", lambda d: _importing(d)["source"].update(files="*.csv")),
    "unknown goal type": ("crm.yaml", lambda d: _importing(d).update(type="import-segments")),
    "goal name with a space": ("crm.yaml", lambda d: _importing(d).update(name="my goal")),
    "bucket name with capitals": (
        "crm.yaml",
        lambda d: _importing(d)["source"].update(bucket="CRM"),
    ),
    "compression enum": ("crm.yaml", lambda d: _exporting(d).update(compression="zip")),
    "mode enum": ("crm.yaml", lambda d: _exporting(d).update(mode="delta")),
    "normalize enum": ("crm.yaml", lambda d: _importing(d)["match"].update(normalize="upper")),
    "value type enum": ("crm.yaml", lambda d: _importing(d)["mappings"][0].update(type="string")),
    "after_import enum": ("crm.yaml", lambda d: _importing(d).update(after_import="delete")),
    "separator of two characters": (
        "crm.yaml",
        lambda d: _importing(d)["format"].update(field_separator=";;"),
    ),
    "date format without %": (
        "crm.yaml",
        lambda d: _importing(d)["format"].update(date_format="dd-mm-yyyy"),
    ),
    "sum of dates": (
        "crm.yaml",
        lambda d: _importing(d)["mappings"][0].update(rule="sum", type="date"),
    ),
    "nothing to import": ("crm.yaml", lambda d: _importing(d).pop("mappings")),
    "headerless without columns": (
        "crm.yaml",
        lambda d: _importing(d)["format"].update(header=False),
    ),
    "columns with a header": ("crm.yaml", lambda d: _importing(d)["format"].update(columns=["id"])),
    "two age limits": (
        "crm.yaml",
        lambda d: _importing(d)["source"].update(modified_since="2024-05-01", max_age_days=7),
    ),
    "normalized profile ids": (
        "crm.yaml",
        lambda d: _importing(d)["match"].update(property="profile_id", normalize="lowercase"),
    ),
    "replace without members": ("crm.yaml", lambda d: _groups(d).update(members_mode="replace")),
    "two column sources": (
        "crm.yaml",
        lambda d: _exporting(d)["columns"].append({"header": "x", "property": "a", "text": "b"}),
    ),
    "column without a source": (
        "crm.yaml",
        lambda d: _exporting(d)["columns"].append({"header": "x"}),
    ),
    "groups column without a type": (
        "crm.yaml",
        lambda d: _exporting(d)["columns"].append({"header": "g", "value": "groups"}),
    ),
    "hash of a text": (
        "crm.yaml",
        lambda d: _exporting(d)["columns"].append({"header": "t", "text": "x", "hash": "sha256"}),
    ),
    "condition without an operator": ("segments.yaml", lambda d: _condition(d).pop("equals")),
    "operator without a property": ("segments.yaml", lambda d: _condition(d).pop("property")),
    "all and any at once": (
        "segments.yaml",
        lambda d: d["segments"][0].update(where={"all": [], "any": []}),
    ),
    "segment id with a space": ("segments.yaml", lambda d: d["segments"][0].update(id="v i p")),
}

ACCEPTED: dict[str, tuple[str, Change]] = {
    "the base files": ("crm.yaml", lambda d: None),
    "a null beside the one schedule form": (
        "crm.yaml",
        lambda d: d.update(schedule={"every_minutes": None, "every_hours": 6, "at": "01:15"}),
    ),
    "weekday of month": (
        "crm.yaml",
        lambda d: d.update(schedule={"weekday_of_month": {"ordinal": "last", "weekday": "fri"}}),
    ),
    "days of month": ("crm.yaml", lambda d: d.update(schedule={"days_of_month": [1, 15, 31]})),
    "no schedule: on demand": ("crm.yaml", lambda d: d.pop("schedule")),
    "a headerless tab-separated file": (
        "crm.yaml",
        lambda d: _importing(d).update(
            format={"header": False, "columns": ["id", "email"], "field_separator": "tab"},
            after_import={"move_to": "archive/"},
        ),
    ),
    "map all columns": (
        "crm.yaml",
        lambda d: _importing(d).update(mappings=[], map_all_columns=True, property_prefix="crm_"),
    ),
    "members replaced": (
        "crm.yaml",
        lambda d: _groups(d).update(members={"column": "ids"}, members_mode="replace"),
    ),
    "a file name pattern and every column kind": (
        "crm.yaml",
        lambda d: _exporting(d).update(
            destination={
                "bucket": "crm-in",
                "file_name": {"pattern": "%DESTINATION%_%CUSTOM_TEXT%.csv", "custom_text": "a"},
            },
            columns=[
                {"header": "id", "value": "profile_id", "hash": "sha256"},
                {"header": "s", "value": "segments", "segments": ["vip"]},
                {"header": "g", "value": "groups", "group_type": "household"},
                {"header": "t", "text": "CDP"},
                {"header": "e", "property": "email", "hash": "email_lc_sha256"},
            ],
        ),
    ),
    "combined operators and nesting": (
        "segments.yaml",
        lambda d: d["segments"][0].update(
            where={
                "any": [
                    {"property": "age", "gte": 18, "lt": 65},
                    {"all": [{"property": "country", "one_of": ["NL", "NO"]}]},
                ]
            }
        ),
    ),
}


def _write_case(goals_dir: Path, file: str, change: Change) -> Path:
    connection = copy.deepcopy(BASE_CONNECTION)
    segments = copy.deepcopy(BASE_SEGMENTS)
    change(segments if file == "segments.yaml" else connection)
    (goals_dir / "crm.yaml").write_text(yaml.safe_dump(connection, sort_keys=False), "utf-8")
    (goals_dir / "segments.yaml").write_text(yaml.safe_dump(segments, sort_keys=False), "utf-8")
    return goals_dir / file


@pytest.mark.parametrize(("file", "change"), REJECTED.values(), ids=REJECTED.keys())
def test_schema_and_validate_both_reject(
    goals_dir: Path, capsys: pytest.CaptureFixture[str], file: str, change: Change
) -> None:
    path = _write_case(goals_dir, file, change)

    schema_errors = _schema_errors(path)
    code, err = _validate(capsys)

    assert schema_errors != []
    assert code == 2  # a configuration error
    assert f"{file}:" in err


@pytest.mark.parametrize(("file", "change"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_schema_and_validate_both_accept(
    goals_dir: Path, capsys: pytest.CaptureFixture[str], file: str, change: Change
) -> None:
    path = _write_case(goals_dir, file, change)

    assert _schema_errors(path) == []
    assert _validate(capsys) == (0, "")


def test_a_typo_is_rejected_by_the_real_command_too(goals_dir: Path) -> None:
    """The operator's view: the same file fails the schema and `connector validate`, naming it."""
    path = _write_case(
        goals_dir, "crm.yaml", lambda d: _importing(d)["format"].update(field_seperator=";")
    )
    done = subprocess.run(
        [sys.executable, "-m", "connector", "validate"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
        timeout=60,
    )
    assert done.returncode == 2  # a configuration error
    assert "crm.yaml:" in done.stderr
    assert "field_seperator" in done.stderr
    assert any("field_seperator" in error for error in _schema_errors(path))


def test_a_variable_passes_the_schema_where_its_value_will_be_checked(
    goals_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor sees `${VAR}` itself (the loader replaces it later): numbers, booleans,
    bucket names and enums written as variables are not flagged; `validate` checks the values."""
    monkeypatch.setenv("CRM_MINUTES", "30")
    monkeypatch.setenv("CRM_BUCKET", "crm-exports")
    path = _write_case(
        goals_dir,
        "crm.yaml",
        lambda d: (
            d.update(enabled="${CRM_ENABLED:-true}", schedule={"every_minutes": "${CRM_MINUTES}"}),
            _importing(d)["source"].update(bucket="${CRM_BUCKET}"),
            _importing(d)["mappings"][0].update(rule="${CRM_RULE:-set}"),
        ),
    )
    schema = json.loads(SHIPPED["connection"].read_text(encoding="utf-8"))
    as_the_editor_sees_it = yaml.safe_load(path.read_text(encoding="utf-8"))

    assert list(jsonschema.Draft202012Validator(schema).iter_errors(as_the_editor_sees_it)) == []
    assert _validate(capsys) == (0, "")

    monkeypatch.setenv("CRM_MINUTES", "thirty")
    assert _validate(capsys)[0] == 2  # a configuration error


def test_the_readme_examples_pass_the_schema(tmp_path: Path) -> None:
    """The configuration reference's blocks, assembled as tests/docs does, flag nothing."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text("utf-8"), re.S)
    goals = [block for block in blocks if block.lstrip().startswith("- type:")]
    connection = next(block for block in blocks if block.startswith("id: crm"))
    connection = connection.replace(
        "goals: [...]", "goals:\n" + "\n".join(textwrap.indent(goal, "  ") for goal in goals)
    )
    (tmp_path / "crm.yaml").write_text(connection, encoding="utf-8")
    segments = next(block for block in blocks if block.startswith("segments:"))
    (tmp_path / "segments.yaml").write_text(segments, encoding="utf-8")

    assert len(goals) == 3
    assert _schema_errors(tmp_path / "crm.yaml") == []
    assert _schema_errors(tmp_path / "segments.yaml") == []
