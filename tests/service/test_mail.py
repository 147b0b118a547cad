"""Run mail through a real SMTP server (aiosmtpd on 127.0.0.1): when, what, and how safely.

- A run that does not succeed is always mailed; a success only with `on_success`.
- The subject names connection, goals and status; the body has the counts and
  the first errors and rejected rows.
- A mail server that is down or refuses the login never breaks a run: the run
  is recorded, the failure logged.
- STARTTLS verifies the server's certificate: a self-signed one (made here
  with `cryptography`) is refused until it is trusted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import MutableMapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from service_support import (
    CONNECTION,
    GOAL,
    SMTP_PASSWORD,
    SMTP_USER,
    closed_port,
    customers_csv,
    eventually,
    finished_runs,
    fire_now,
    import_goal,
    password_authenticator,
    put_files,
    running_daemon,
    service_settings,
    smtp_server,
    write_connection,
)

from connector.service.daemon import Daemon
from connector.service.mail import send_mail
from connector.service.notify import SystemdNotifier
from connector.settings import Settings
from connector.storage import RunStatus

Events = list[MutableMapping[str, Any]]
OPS = ["ops@example.com", "data@example.com"]


def smtp_settings(root: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_username": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "smtp_sender": "connector@example.com",
        "smtp_timeout": 5,
        **overrides,
    }
    return service_settings(root, **values)


async def test_a_failed_run_is_mailed_with_counts_and_first_errors(
    root: Path, endpoint: str
) -> None:
    orders = import_goal("orders", bucket="no-such-bucket")
    write_connection(root / "goals", endpoint, emails=OPS, goals=[import_goal(), orders])
    bad = set(range(3, 15))  # twelve rows with a non-number in a `sum` column
    await put_files(endpoint, {"in/a.csv": customers_csv(30, bad_points=bad)})
    with smtp_server(authenticator=password_authenticator, auth_require_tls=False) as (
        smtp,
        mailbox,
    ):
        settings = smtp_settings(root, smtp.port)
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            [mail] = await eventually(lambda: mailbox.received, what="the mail")
        [run] = finished_runs(settings.database)
    assert run.status is RunStatus.FAILURE
    assert mail.authenticated
    assert mail.envelope_from == "connector@example.com"
    assert sorted(mail.recipients) == sorted(OPS)
    assert mail.message["From"] == "connector@example.com"
    assert CONNECTION in mail.subject
    assert f"{GOAL}, orders" in mail.subject
    assert "failure" in mail.subject
    body = mail.body
    assert f"Run: {run.id} (schedule), status failure" in body
    assert "Files: 1 imported" in body
    assert "Rows: 30 read, 18 applied, 12 rejected" in body
    assert "Profiles: 18 created, 0 updated" in body
    errors = body.split("Errors:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("  - orders: ")
    assert "no-such-bucket" in errors[0]
    rejected = body.split("First rejected rows:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(rejected) == 10  # the first ten of twelve
    assert rejected[0].startswith("  - in/a.csv:4 column 'points'")  # C00003 is on line 4
    assert f"connector history --run {run.id}" in body


async def test_a_success_is_mailed_only_when_the_connection_asks(root: Path, endpoint: str) -> None:
    goals = root / "goals"
    write_connection(goals, endpoint, emails=OPS, on_success=False)
    await put_files(endpoint, {"in/a.csv": customers_csv(3)})
    with smtp_server() as (smtp, mailbox):
        settings = smtp_settings(root, smtp.port, smtp_username=None, smtp_password=None)
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            await eventually(lambda: finished_runs(settings.database), what="the first run")
            await eventually(lambda: not daemon._runs, what="the run (and its mail) to end")
            assert mailbox.received == []
            write_connection(goals, endpoint, emails=OPS, on_success=True)
            await eventually(
                lambda: (
                    daemon.workspace is not None
                    and daemon.workspace.connections[CONNECTION].notifications.on_success
                ),
                what="the reload",
            )
            await put_files(endpoint, {"in/b.csv": customers_csv(2, start=4)})
            fire_now(daemon)
            [mail] = await eventually(lambda: mailbox.received, what="the success mail")
    runs = finished_runs(settings.database)
    assert [run.status for run in runs] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert not mail.authenticated  # no username configured: no login
    assert "success" in mail.subject
    assert "Rows: 2 read, 2 applied, 0 rejected" in mail.body
    assert "Errors:" not in mail.body


async def test_a_partial_run_is_mailed_even_without_on_success(root: Path, endpoint: str) -> None:
    write_connection(root / "goals", endpoint, emails=OPS, on_success=False)
    await put_files(endpoint, {"in/a.csv": customers_csv(4, bad_points={2})})
    with smtp_server() as (smtp, mailbox):
        settings = smtp_settings(root, smtp.port, smtp_username=None, smtp_password=None)
        async with running_daemon(settings) as daemon:
            fire_now(daemon)
            [mail] = await eventually(lambda: mailbox.received, what="the mail")
    assert "partial" in mail.subject
    assert "in/a.csv:3 column 'points'" in mail.body


async def test_a_mail_server_that_is_down_never_breaks_a_run(
    root: Path, endpoint: str, log_events: Events
) -> None:
    write_connection(root / "goals", endpoint, emails=OPS)  # no bucket: the run fails
    settings = smtp_settings(root, closed_port())
    async with running_daemon(settings) as daemon:
        fire_now(daemon)
        [run] = await eventually(lambda: finished_runs(settings.database), what="the run")
        [not_sent] = await eventually(
            lambda: [e for e in log_events if e["event"] == "mail not sent"], what="the log line"
        )
        await eventually(lambda: not daemon._runs, what="the run task to end")
        # the daemon goes on: the next fire runs as usual
        await put_files(endpoint, {"in/a.csv": customers_csv(1)})
        fire_now(daemon)
        await eventually(lambda: len(finished_runs(settings.database)) == 2, what="run two")
    assert run.status is RunStatus.FAILURE
    assert not_sent["level"] == "error"
    assert not_sent["connection"] == CONNECTION
    assert not_sent["server"] == "127.0.0.1"
    assert "refused" in not_sent["error"].lower()
    assert not [e for e in log_events if e["event"] == "scheduled run failed unexpectedly"]


def test_a_refused_login_is_logged_not_raised(log_events: Events) -> None:
    message = EmailMessage()
    message["Subject"] = "test"
    message["To"] = "ops@example.com"
    message.set_content("body")
    with smtp_server(authenticator=password_authenticator, auth_require_tls=False) as (
        smtp,
        mailbox,
    ):
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            smtp_username=SMTP_USER,
            smtp_password="wrong-password",
            smtp_timeout=5,
        )
        assert send_mail(settings, message) is False
    assert mailbox.received == []
    [not_sent] = [e for e in log_events if e["event"] == "mail not sent"]
    assert "535" in not_sent["error"]  # authentication failed
    assert "wrong-password" not in str(log_events)


# -- STARTTLS --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "cert.pem"
    key_file = folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def tls_server_options(certificate: tuple[Path, Path]) -> dict[str, Any]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return {
        "tls_context": context,
        "require_starttls": True,
        "authenticator": password_authenticator,
    }


def test_starttls_refuses_a_certificate_it_cannot_verify(
    certificate: tuple[Path, Path], log_events: Events
) -> None:
    message = EmailMessage()
    message["Subject"] = "over TLS"
    message["To"] = "ops@example.com"
    message.set_content("body")
    with smtp_server(**tls_server_options(certificate)) as (smtp, mailbox):
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=True,
            smtp_username=SMTP_USER,
            smtp_password=SMTP_PASSWORD,
            smtp_timeout=5,
        )
        assert send_mail(settings, message) is False
    assert mailbox.received == []
    [not_sent] = [e for e in log_events if e["event"] == "mail not sent"]
    assert "CERTIFICATE_VERIFY_FAILED" in not_sent["error"]


def test_starttls_with_a_trusted_certificate_sends_encrypted_and_logged_in(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL reads SSL_CERT_FILE when the default context loads its trust store
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    message = EmailMessage()
    message["Subject"] = "over TLS"
    message["To"] = "ops@example.com"
    message.set_content("body")
    with smtp_server(**tls_server_options(certificate)) as (smtp, mailbox):
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=True,
            smtp_username=SMTP_USER,
            smtp_password=SMTP_PASSWORD,
            smtp_timeout=5,
        )
        assert send_mail(settings, message) is True
    [mail] = mailbox.received
    assert mail.tls
    assert mail.authenticated
    assert mail.subject == "over TLS"


def test_no_smtp_host_means_no_mail_and_a_note(log_events: Events) -> None:
    message = EmailMessage()
    message["Subject"] = "nowhere"
    message.set_content("body")
    assert send_mail(Settings(), message) is False
    assert [e["event"] for e in log_events] == ["no smtp_host configured; mail not sent"]


def tls_settings(port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": True,
        "smtp_username": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "smtp_timeout": 5,
        **extra,
    }
    return Settings(**values)


def tls_message() -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "over TLS"
    message["To"] = "ops@example.com"
    message.set_content("body")
    return message


def test_smtp_ca_file_trusts_a_private_ca(certificate: tuple[Path, Path]) -> None:
    with smtp_server(**tls_server_options(certificate)) as (smtp, mailbox):
        settings = tls_settings(smtp.port, smtp_ca_file=certificate[0])
        assert send_mail(settings, tls_message()) is True
    [mail] = mailbox.received
    assert mail.tls


def test_a_certificate_for_another_host_name_is_refused_clearly(
    certificate: tuple[Path, Path], log_events: Events
) -> None:
    # the certificate names 127.0.0.1; the server is reached as "localhost"
    with smtp_server(**tls_server_options(certificate)) as (smtp, mailbox):
        settings = tls_settings(smtp.port, smtp_host="localhost", smtp_ca_file=certificate[0])
        assert send_mail(settings, tls_message()) is False
    assert mailbox.received == []
    [not_sent] = [e for e in log_events if e["event"] == "mail not sent"]
    assert not_sent["error"].startswith(f"cannot verify the SMTP server localhost:{smtp.port}: ")
    assert "mismatch" in not_sent["error"].lower()
    assert "smtp_ca_file" in not_sent["error"]


def test_tls_verify_off_sends_to_an_unverified_server_and_the_daemon_warns(
    certificate: tuple[Path, Path], log_events: Events, tmp_path: Path
) -> None:
    with smtp_server(**tls_server_options(certificate)) as (smtp, mailbox):
        settings = tls_settings(smtp.port, smtp_tls_verify=False)
        assert send_mail(settings, tls_message()) is True
    assert mailbox.received[0].tls
    (tmp_path / "goals").mkdir()
    daemon_settings = tls_settings(
        smtp.port, smtp_tls_verify=False, goals_dir=tmp_path / "goals", watch_goals=False
    )

    async def start_and_stop() -> int:
        daemon = Daemon(daemon_settings, SystemdNotifier(address=""))
        served = asyncio.create_task(daemon.serve())
        while not any(e["event"] == "daemon started" for e in log_events):
            await asyncio.sleep(0.01)
        daemon.request_stop()
        return await served

    assert asyncio.run(start_and_stop()) == 0
    [warning] = [e for e in log_events if e["event"].startswith("smtp_tls_verify is off")]
    assert warning["log_level"] == "warning"


def test_a_missing_ca_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(smtp_ca_file=tmp_path / "nope.pem")
    assert "smtp_ca_file" in str(raised.value)
    assert "no such file" in str(raised.value)
