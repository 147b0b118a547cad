"""Issue 15 item 10: `history`, `profiles`, `groups` and `segments` read a store, never make one.

Where `database` names no store they say `no store at PATH`, exit 4 (not found) and write
nothing: no SQLite file, no folder, no PostgreSQL table.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from connector.cli import main
from connector.cli.exit_codes import ExitCode
from connector.storage import SQLiteStore, open_store

READ_COMMANDS = [
    ["history"],
    ["history", "crm", "--json"],
    ["history", "--run", "1"],
    ["profiles", "get", "p1"],
    ["profiles", "find", "email", "ann@example.com"],
    ["profiles", "dump", "--json"],
    ["groups", "get", "household", "H1"],
    ["segments"],
]


@pytest.fixture
def goals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "goals"
    folder.mkdir()
    connection = {
        "id": "crm",
        "storage": {"region": "eu-west-1", "access_key_id": "k", "secret_access_key": "s"},
        "goals": [
            {
                "type": "import-profiles",
                "name": "customers",
                "source": {"bucket": "crm-exports", "files": ["*.csv"]},
                "match": {"column": "id", "property": "customer_id", "create_missing": True},
                "mappings": [{"column": "email", "property": "email", "rule": "set"}],
            }
        ],
    }
    (folder / "crm.yaml").write_text(yaml.safe_dump(connection), "utf-8")
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(folder))
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    return folder


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_a_read_command_on_a_missing_sqlite_store_creates_nothing(
    goals: Path,
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "state" / "connector.db"
    monkeypatch.setenv("CONNECTOR_DATABASE", str(path))

    assert main(argv) == ExitCode.NOT_FOUND

    captured = capsys.readouterr()
    assert captured.err == f"error: no store at {path} (a run creates it)\n"
    assert captured.out == ""
    assert not path.parent.exists()  # neither the file nor its folder


def test_an_empty_file_is_no_store_and_stays_empty(
    goals: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What earlier read commands left behind: a 0-byte file is not a store either."""
    path = tmp_path / "connector.db"
    path.touch()
    monkeypatch.setenv("CONNECTOR_DATABASE", str(path))

    assert main(["history"]) == ExitCode.NOT_FOUND

    assert f"no store at {path}" in capsys.readouterr().err
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connector.db", "goals"]  # no -wal


def test_a_read_command_on_an_existing_store_reads_it(
    goals: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "connector.db"
    SQLiteStore(path).close()
    monkeypatch.setenv("CONNECTOR_DATABASE", str(path))

    assert main(["profiles", "dump", "--json"]) == ExitCode.OK
    assert main(["segments", "--json"]) == ExitCode.OK
    assert '"id": "all"' in capsys.readouterr().out


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.mark.postgres
@pytest.mark.parametrize("argv", [["history"], ["profiles", "dump"], ["segments"]], ids=" ".join)
def test_a_read_command_on_a_postgresql_schema_without_a_store_creates_no_table(
    goals: Path,
    postgres_url: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONNECTOR_DATABASE", postgres_url)

    assert main(argv) == ExitCode.NOT_FOUND

    error = capsys.readouterr().err
    assert error.startswith("error: no store at postgresql://")
    assert "holds no connector store" in error
    assert _tables(postgres_url) == []

    open_store(postgres_url).close()  # as a run opens it: the store is made
    assert "schema_version" in _tables(postgres_url)
    assert main(argv) == ExitCode.OK


@pytest.mark.postgres
def test_a_postgresql_url_naming_a_missing_schema_is_no_store(
    goals: Path, postgres: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTOR_DATABASE", f"{postgres}?options=-csearch_path%3Dno_such_schema")

    assert main(["history"]) == ExitCode.NOT_FOUND

    assert "error: no store at postgresql://" in capsys.readouterr().err
