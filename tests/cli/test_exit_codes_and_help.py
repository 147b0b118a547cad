"""Issue 15 items 11 and 12: one exit-code table for every command, shown by `--help` and the
README; help text on every argument and option; examples at the end of every command's help
(and the examples parse)."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.cli.exit_codes import MEANINGS, ExitCode
from connector.cli.main import build_parser
from connector.storage import RunCounts, RunStatus, SQLiteStore, Trigger

README = Path(__file__).resolve().parents[2] / "README.md"


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("connector",)
) -> Iterator[tuple[str, argparse.ArgumentParser, list[argparse.Action]]]:
    """Every parser under `parser` (itself included), with the listing entries of its
    subcommands (the `help=` each shows in its parent's list)."""
    listed: list[argparse.Action] = []
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed += action._choices_actions
            children += [(name, sub) for name, sub in action.choices.items()]
    yield " ".join(path), parser, listed
    for name, sub in children:
        yield from commands(sub, (*path, name))


def example_lines(epilog: str) -> list[str]:
    return [line.strip() for line in epilog.splitlines() if line.startswith("  connector ")]


def test_every_argument_and_option_of_every_command_has_help_text() -> None:
    missing = [
        f"{name}: {'/'.join(action.option_strings) or action.dest}"
        for name, parser, listed in commands(build_parser())
        for action in [*parser._actions, *listed]
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []


def test_every_command_help_ends_with_examples_that_parse() -> None:
    parser = build_parser()
    for name, sub, _ in commands(parser):
        assert sub.formatter_class is argparse.RawDescriptionHelpFormatter, name
        epilog = sub.epilog or ""
        assert "examples:\n" in epilog, f"{name} has no examples"
        lines = example_lines(epilog.split("exit codes:")[0])
        assert 1 <= len(lines) <= 3, (name, lines)  # one to three (draft shows three forms)
        for line in lines:
            argv = shlex.split(line.split(" > ")[0])[1:]
            words = [word for word in argv if not word.startswith("-")]
            assert set(name.split()[1:]) <= set(words), (name, line)  # an example of this command
            parser.parse_args(argv)  # an example that does not parse exits 2 here
        shown = sub.format_help().rstrip()
        assert shown.endswith(epilog.rstrip()), name  # the examples (and codes) end the help
        assert epilog.startswith("examples:\n"), name


def test_connector_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])

    assert stopped.value.code == 0
    out = capsys.readouterr().out
    table = out[out.index("exit codes:") :].splitlines()[1:]
    assert [line.split()[0] for line in table] == ["0", "1", "2", "3", "4", "130"]
    for code in ExitCode:
        assert f"  {int(code):<5}{MEANINGS[code]}" in table


def test_the_readme_has_the_same_exit_code_table() -> None:
    text = README.read_text("utf-8")
    section = text[text.index("## Command line") : text.index("## Configuration reference")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "|" in line[2:]]
    codes = {row.split("|")[1].strip() for row in rows}
    assert {str(int(code)) for code in ExitCode} <= codes


# -- the codes, command by command -------------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SQLiteStore:
    """A goals folder with connection `crm` and a store with one run of it."""
    goals = tmp_path / "goals"
    goals.mkdir()
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
    (goals / "crm.yaml").write_text(yaml.safe_dump(connection), "utf-8")
    (goals / "idle.yaml").write_text(yaml.safe_dump({**connection, "id": "idle"}), "utf-8")
    database = tmp_path / "connector.db"
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.setenv("CONNECTOR_GOALS_DIR", str(goals))
    monkeypatch.setenv("CONNECTOR_DATABASE", str(database))
    monkeypatch.setenv("CONNECTOR_LOG_FORMAT", "json")
    store = SQLiteStore(database)
    run = store.start_run("crm", None, Trigger.MANUAL)
    store.finish_run(run.id, RunStatus.SUCCESS, RunCounts(files=1))
    store.close()
    return store


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "UNKNOWN"], "no connection 'UNKNOWN'"),
        (["history", "--run", "999"], "no run 999"),
        (["run", "nope"], "no connection 'nope'"),
        (["run", "crm", "--goal", "nope"], "connection 'crm' has no goal 'nope'"),
        (["scan", "crm", "nope"], "connection 'crm' has no goal 'nope'"),
        (["schedule", "nope"], "no connection 'nope'"),
        (["profiles", "get", "nobody"], "no profile with id 'nobody'"),
        (["groups", "get", "household", "H9"], "no household group with id 'H9'"),
    ],
)
def test_what_does_not_exist_exits_4(
    setup: SQLiteStore, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == ExitCode.NOT_FOUND == 4

    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # no empty table


def test_history_of_a_known_connection_without_runs_is_ok_and_empty(
    setup: SQLiteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "idle", "--json"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["history", "crm", "--json"]) == 0
    assert '"connection": "crm"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["nonsense"], ["history", "--limit", "0"], ["history", "--since", "yesterday"], ["run"]],
)
def test_wrong_usage_exits_2(
    setup: SQLiteStore, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)

    assert stopped.value.code == ExitCode.USAGE == 2
    assert "error:" in capsys.readouterr().err


def test_an_invalid_goals_folder_exits_2(
    setup: SQLiteStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "goals" / "broken.yaml").write_text("id: broken\ngoals: [\n", "utf-8")

    assert main(["validate"]) == main(["run", "crm"]) == ExitCode.USAGE
    assert "broken.yaml:" in capsys.readouterr().err
