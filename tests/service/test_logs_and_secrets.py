"""Structured logs (JSON lines off a terminal), and no secret in a log, history row or mail.

Planted secrets: the S3 key id and secret key come from the environment
through `${VAR}` in the goal file, the SMTP password from
CONNECTOR_SMTP_PASSWORD. The daemon and `connector run` must register them
for redaction, and they must never show anywhere an operator can read.
"""

from __future__ import annotations

import json
import logging
import signal
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from service_support import (
    CONNECTION,
    S3_KEY_ID,
    S3_SECRET,
    SECRET_ENV,
    SMTP_PASSWORD,
    SMTP_USER,
    NotifyListener,
    connector,
    eventually,
    password_authenticator,
    running_daemon,
    service_settings,
    smtp_server,
    start_daemon,
    wait_until,
    write_connection,
)

from connector.logging import REDACTED, configure_logging, redact_text, register_secrets
from connector.settings import load_settings

Events = list[MutableMapping[str, Any]]


def unique_secret(kind: str) -> str:
    """A value no other test registered: redaction is process-wide and never forgets."""
    return f"{kind}-{uuid.uuid4().hex}"


# -- registration ---------------------------------------------------------------------------


async def test_the_daemon_registers_every_goal_file_secret_it_loads(
    root: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, log_events: Events
) -> None:
    key_id, secret, smtp_password = (unique_secret(k) for k in ("key", "secret", "smtp"))
    later_secret = unique_secret("later")
    monkeypatch.setenv("SVC_S3_KEY_ID", key_id)
    monkeypatch.setenv("SVC_S3_SECRET", secret)
    goals = root / "goals"
    write_connection(goals, endpoint, secrets_from_env=True)
    settings = service_settings(root, smtp_password=smtp_password)
    async with running_daemon(settings) as daemon:
        for value in (key_id, secret, smtp_password):
            assert redact_text(f"before {value} after") == f"before {REDACTED} after"
        structlog.get_logger("test").info("echo", detail=f"secret is {secret}", items=[key_id])
        # a connection added later brings its own secret; the reload registers it
        monkeypatch.setenv("SVC_S3_SECRET", later_secret)
        write_connection(goals, endpoint, "shop", secrets_from_env=True)
        await eventually(
            lambda: daemon.workspace is not None and "shop" in daemon.workspace.connections,
            what="the reload",
        )
        assert redact_text(later_secret) == REDACTED
    [echo] = [event for event in log_events if event["event"] == "echo"]
    assert echo["detail"] == f"secret is {REDACTED}"
    assert echo["items"] == [REDACTED]
    assert secret not in str(log_events)


def test_loading_settings_registers_the_smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    password = unique_secret("smtp")
    monkeypatch.setenv("CONNECTOR_SMTP_PASSWORD", password)
    settings = load_settings(None)
    assert settings.smtp_password is not None
    assert redact_text(f"login {password}") == f"login {REDACTED}"


def test_redaction_blanks_secret_fields_and_values_and_keeps_the_shape(
    log_events: Events,
) -> None:
    secret = unique_secret("value")
    register_secrets([secret, None, "abc"])  # empty and too-short values are ignored
    log = structlog.get_logger("test")
    log.info(
        "shapes",
        password="hunter2",  # named like a secret: blanked whatever its value
        nested={"token": "t", "url": f"https://user:{secret}@host/", "n": 3},
        items=["plain", secret],
        count=7,
        path=Path(f"/tmp/{secret}"),
    )
    [event] = log_events
    assert event["password"] == REDACTED
    assert event["nested"] == {"token": REDACTED, "url": f"https://user:{REDACTED}@host/", "n": 3}
    assert event["items"] == ["plain", REDACTED]
    assert event["count"] == 7
    assert event["path"] == f"/tmp/{REDACTED}"
    assert redact_text("abc") == "abc"


def test_a_secret_containing_another_is_blanked_whole() -> None:
    short = unique_secret("s")
    long = f"{short}-and-more"
    register_secrets([short])
    register_secrets([long])
    assert redact_text(f"[{long}]") == f"[{REDACTED}]"


# -- JSON lines ---------------------------------------------------------------------------------


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back afterwards."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        structlog.configure(**config)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def test_json_logs_carry_library_warnings_as_json_lines_too(
    capsys: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    secret = unique_secret("lib")
    register_secrets([secret])
    configure_logging("auto")  # stderr is not a terminal here: JSON
    structlog.get_logger("connector.test").info("ours", connection="crm")
    # APScheduler reports a skipped overlapping fire through the standard library
    logging.getLogger("apscheduler.executors.default").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        f"crm {secret}",
        1,
    )
    logging.getLogger("botocore.endpoint").debug("headers: Authorization ...")  # kept quiet
    lines = capsys.readouterr().err.splitlines()
    events = [json.loads(line) for line in lines]
    assert [event["event"] for event in events] == [
        "ours",
        f'Execution of job "crm {REDACTED}" skipped: maximum number of running instances '
        "reached (1)",
    ]
    assert events[0]["connection"] == "crm"
    assert events[1]["level"] == "warning"
    assert events[1]["logger"] == "apscheduler.executors.default"
    assert all("timestamp" in event for event in events)


# -- end to end: nothing leaks -----------------------------------------------------------------


@pytest.mark.slow
def test_planted_secrets_never_reach_logs_history_or_mail(
    root: Path, endpoint: str, notify_socket: NotifyListener
) -> None:
    goals = root / "goals"
    path = write_connection(goals, endpoint, emails=["ops@example.com"], secrets_from_env=True)
    with smtp_server(authenticator=password_authenticator, auth_require_tls=False) as (
        smtp,
        mailbox,
    ):
        env = {
            **SECRET_ENV,
            "CONNECTOR_SMTP_HOST": "127.0.0.1",
            "CONNECTOR_SMTP_PORT": str(smtp.port),
            "CONNECTOR_SMTP_STARTTLS": "false",
            "CONNECTOR_SMTP_USERNAME": SMTP_USER,
            "CONNECTOR_SMTP_PASSWORD": SMTP_PASSWORD,
            "CONNECTOR_WATCH_INTERVAL": "0.2",
        }
        # a manual run that fails (its bucket does not exist) and is mailed
        run = connector(root, "run", CONNECTION, env=env)
        assert run.returncode == 1, run.stderr
        # the daemon: start, an invalid edit (rejected, mailed), stop
        log = root / "daemon.log"
        daemon = start_daemon(root, log, NOTIFY_SOCKET=str(notify_socket.path), **env)
        try:
            notify_socket.wait_for(lambda m: m.get("READY") == "1", timeout=30)
            path.write_text(path.read_text("utf-8") + "unknown_key: 1\n", "utf-8")
            mark = len(notify_socket.messages)
            notify_socket.wait_for(lambda m: m.get("RELOADING") == "1", after=mark)
            # the run's failure mail, then the invalid-configuration mail
            wait_until(lambda: len(mailbox.received) == 2, what="two mails")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=10) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    history = connector(root, "history", "--json")
    one_run = connector(root, "history", "--run", "1", "--json")
    assert history.returncode == 0
    assert one_run.returncode == 0

    # the channels were really used...
    assert [json.loads(line)["status"] for line in history.stdout.splitlines()] == ["failure"]
    assert len(mailbox.received) == 2, [m.subject for m in mailbox.received]
    assert all(mail.authenticated for mail in mailbox.received)
    daemon_log = log.read_text("utf-8")
    assert "reload rejected" in daemon_log
    # ...and no secret is in any of them
    readable = {
        "run output": run.stdout + run.stderr,
        "daemon log": daemon_log,
        "history": history.stdout + history.stderr + one_run.stdout,
        **{f"mail {n}": mail.raw for n, mail in enumerate(mailbox.received)},
    }
    for secret in (S3_SECRET, S3_KEY_ID, SMTP_PASSWORD):
        for where, text in readable.items():
            assert secret not in text, f"a planted secret is in the {where}"
