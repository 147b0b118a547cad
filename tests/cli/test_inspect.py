"""The read-only commands: `connector profiles ...`, `groups get`, `history`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main, output
from connector.storage import (
    Group,
    Profile,
    RowReject,
    RunCounts,
    RunStatus,
    SQLiteStore,
    Trigger,
)

SEGMENTS_YAML = """\
segments:
  - id: dutch
    name: Dutch customers
    where: {property: country, one_of: [NL]}
"""

CONNECTION_YAML = """\
name: Shop
storage: {region: eu-west-1, access_key_id: test, secret_access_key: test}
goals:
  - type: import-profiles
    name: customers
    source: {bucket: shop-exports, files: ["*.csv"]}
    match: {column: customer_id, property: customer_id, create_missing: true}
    mappings:
      - {column: email, property: email, rule: set}
"""


class _CurrentStream:
    """Writes to whatever `sys.<name>` is when written to, so capsys sees it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, text: str) -> int:
        stream = getattr(sys, self._name)
        return int(stream.write(text))

    def flush(self) -> None:
        getattr(sys, self._name).flush()


@pytest.fixture(autouse=True)
def _output_follows_capsys(monkeypatch: pytest.MonkeyPatch) -> None:
    """connector.cli.output binds sys.stdout/sys.stderr as default arguments at import
    time, before capsys swaps them; point those defaults at the current streams."""
    for function, name in (
        (output.print_json, "stdout"),
        (output.print_table, "stdout"),
        (output.print_properties, "stdout"),
        (output.fail, "stderr"),
    ):
        defaults = dict(function.__kwdefaults__ or {})
        defaults["stream"] = _CurrentStream(name)
        monkeypatch.setattr(function, "__kwdefaults__", defaults)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    goals = tmp_path / "goals"
    goals.mkdir()
    (goals / "segments.yaml").write_text(SEGMENTS_YAML, encoding="utf-8")
    (goals / "shop.yaml").write_text(CONNECTION_YAML, encoding="utf-8")
    path = tmp_path / "connector.db"
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_DATABASE", str(path))
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(goals))
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    return path


@pytest.fixture
def store(database: Path) -> Iterator[SQLiteStore]:
    """The store the commands read, filled with a few profiles and groups."""
    with SQLiteStore(database) as opened:
        assert isinstance(opened, SQLiteStore)
        opened.ensure_unique_properties(["email"])
        with opened.transaction() as tx:
            tx.save_profiles(
                [
                    Profile("p2", {"email": ["bob@example.com"], "country": ["BE"]}),
                    Profile(
                        "p1",
                        {
                            "email": ["ann@example.com"],
                            "country": ["NL"],
                            "tags": ["vip", "nieuwsbrief ✉"],
                            "name": ["Zoë"],
                        },
                    ),
                    Profile("p3", {"country": ["NL"]}),
                ]
            )
            tx.save_groups(
                [
                    Group("household", "h1", {"size": ["2"], "street": ["Dorpsstraat 1"]}),
                    Group("company", "c1", {"name": ["Acme"]}),
                ]
            )
            tx.add_members("household", [("h1", "p1"), ("h1", "p2")])
            tx.add_members("company", [("c1", "p1")])
        yield opened


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "expected JSON lines on stdout"
    return [json.loads(line) for line in lines]


# -- profiles get ------------------------------------------------------------------


def test_profiles_get_prints_properties_and_groups(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "get", "p1"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "profile p1"
    assert "email    ann@example.com" in out
    assert "tags     vip | nieuwsbrief ✉" in out
    assert "name     Zoë" in out
    assert "[company]  c1" in out
    assert "[household]  h1" in out


def test_profiles_get_json_has_properties_and_groups(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "get", "p1", "--json"]) == 0

    captured = capsys.readouterr()
    [document] = json_lines(captured.out)
    assert document["id"] == "p1"
    assert document["properties"] == {
        "email": ["ann@example.com"],
        "country": ["NL"],
        "tags": ["vip", "nieuwsbrief ✉"],
        "name": ["Zoë"],
    }
    assert document["groups"] == {"company": ["c1"], "household": ["h1"]}
    assert document["change_seq"] == store.change_seq()
    assert document["created_at"] is not None
    assert "✉" in captured.out  # written as text, not \\u escapes


def test_profiles_get_unknown_id_exits_4_not_found_with_a_message(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "get", "nobody", "--json"]) == 4

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: no profile with id 'nobody'\n"


# -- profiles find -------------------------------------------------------------------


def test_profiles_find_by_unique_property(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "find", "email", "bob@example.com", "--json"]) == 0

    [document] = json_lines(capsys.readouterr().out)
    assert document["id"] == "p2"
    assert document["properties"]["email"] == ["bob@example.com"]


def test_profiles_find_by_non_unique_property_lists_every_match(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "find", "country", "NL", "--json"]) == 0

    assert [d["id"] for d in json_lines(capsys.readouterr().out)] == ["p1", "p3"]


def test_profiles_find_text_shows_each_profile(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "find", "country", "NL"]) == 0

    out = capsys.readouterr().out
    assert "profile p1\n" in out
    assert "profile p3\n" in out
    assert "profile p2" not in out
    assert "[household]  h1" in out


def test_profiles_find_without_match_says_so_and_exits_4_not_found(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "find", "country", "DE"]) == 4

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "no profile has country = 'DE'\n"


# -- profiles dump -------------------------------------------------------------------


def test_profiles_dump_json_is_one_profile_a_line(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profiles", "dump", "--json"]) == 0

    out = capsys.readouterr().out
    documents = json_lines(out)
    assert len(out.splitlines()) == store.count_profiles() == 3
    assert [d["id"] for d in documents] == ["p1", "p2", "p3"]
    assert documents[2]["properties"] == {"country": ["NL"]}
    for document in documents:
        assert set(document) >= {"id", "properties"}
        assert all(isinstance(values, list) for values in document["properties"].values())


def test_profiles_dump_of_an_empty_store_prints_nothing(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SQLiteStore(database).close()  # a store with nothing in it (no store at all is exit 4)

    assert main(["profiles", "dump", "--json"]) == 0

    assert capsys.readouterr().out == ""


# -- groups get ------------------------------------------------------------------------


def test_groups_get_json_has_properties_and_members(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["groups", "get", "household", "h1", "--json"]) == 0

    [document] = json_lines(capsys.readouterr().out)
    assert document["type"] == "household"
    assert document["id"] == "h1"
    assert document["properties"] == {"size": ["2"], "street": ["Dorpsstraat 1"]}
    assert document["members"] == ["p1", "p2"]


def test_groups_get_text_lists_members(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["groups", "get", "household", "h1"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("household h1\n")
    assert "street  Dorpsstraat 1" in out
    assert "members (2): p1, p2" in out


def test_groups_get_unknown_group_exits_4_not_found(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["groups", "get", "company", "h1", "--json"]) == 4

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error: no company group with id 'h1'\n"


# -- history ------------------------------------------------------------------------------


def test_history_json_lists_runs_latest_first(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    first = store.start_run("shop", "customers", Trigger.SCHEDULE)
    store.finish_run(first.id, RunStatus.SUCCESS, RunCounts(files=2, rows_read=10, rows_applied=10))
    second = store.start_run("crm", None, Trigger.MANUAL, dry_run=True)
    store.finish_run(second.id, RunStatus.FAILURE, RunCounts(), "s3://crm-exports: access denied")
    running = store.start_run("shop", None, Trigger.MANUAL)

    assert main(["history", "--json"]) == 0

    documents = json_lines(capsys.readouterr().out)
    assert [d["id"] for d in documents] == [running.id, second.id, first.id]
    assert documents[0]["status"] == "running"
    assert documents[0]["ended_at"] is None
    assert documents[1]["status"] == "failure"
    assert documents[1]["error"] == "s3://crm-exports: access denied"
    assert documents[1]["dry_run"] is True
    assert documents[2]["status"] == "success"
    assert documents[2]["connection"] == "shop"
    assert documents[2]["goal"] == "customers"
    assert documents[2]["trigger"] == "schedule"
    assert documents[2]["counts"] == RunCounts(files=2, rows_read=10, rows_applied=10).as_dict()
    assert documents[2]["ended_at"] is not None


def test_history_of_one_connection(store: SQLiteStore, capsys: pytest.CaptureFixture[str]) -> None:
    shop = store.start_run("shop", None, Trigger.MANUAL)
    store.start_run("crm", None, Trigger.MANUAL)

    assert main(["history", "shop", "--json"]) == 0

    assert [d["id"] for d in json_lines(capsys.readouterr().out)] == [shop.id]


def test_history_of_one_run_includes_its_rejects(
    store: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run = store.start_run("shop", "customers", Trigger.MANUAL)
    store.add_rejects(run.id, [RowReject("in/a.csv", 4, "points", "'x' is not a number")])
    store.finish_run(run.id, RunStatus.PARTIAL, RunCounts(rows_read=5, rows_rejected=1))

    assert main(["history", "--run", str(run.id), "--json"]) == 0

    [document] = json_lines(capsys.readouterr().out)
    assert document["status"] == "partial"
    assert document["rejects"] == ["in/a.csv:4 column 'points': 'x' is not a number"]


def test_history_text_is_a_table(store: SQLiteStore, capsys: pytest.CaptureFixture[str]) -> None:
    run = store.start_run("shop", "customers", Trigger.MANUAL)
    store.finish_run(run.id, RunStatus.SUCCESS, RunCounts(files=3))

    assert main(["history"]) == 0

    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["RUN", "CONNECTION", "STARTED"]
    assert row.split()[:2] == [str(run.id), "shop/customers"]
    assert "success" in row.split()
