"""Run notifications by email: always on failure, on success when a connection asks.

A mail server that is down never breaks a run: sending happens after the
run is recorded, and a failure to send is logged, not raised. Messages
pass through the log redaction, so a secret never reaches a mailbox.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

import structlog

from connector.config import Connection
from connector.goals.runner import changed_files_note
from connector.redaction import redact_text
from connector.settings import Settings
from connector.storage import RowReject, RunRecord, RunStatus

log = structlog.get_logger("connector.mail")
_FIRST_PROBLEMS = 10


def should_mail(connection: Connection, record: RunRecord) -> bool:
    if not connection.notifications.email or record.dry_run:
        return False
    return record.status is not RunStatus.SUCCESS or connection.notifications.on_success


def compose_run_mail(
    settings: Settings,
    connection: Connection,
    record: RunRecord,
    errors: list[str],
    rejects: list[RowReject],
) -> EmailMessage:
    goal = record.goal or _goal_names(connection)
    message = EmailMessage()
    message["Subject"] = f"[connector] {connection.id} / {goal}: {record.status} (run {record.id})"
    message["From"] = settings.smtp_sender
    message["To"] = ", ".join(connection.notifications.email)
    counts = record.counts
    lines = [
        f"Connection: {connection.title} ({connection.id})",
        f"Goal: {goal}",
        f"Run: {record.id} ({record.trigger}), status {record.status}",
        f"Started: {record.started_at.isoformat()}",
        f"Ended: {record.ended_at.isoformat() if record.ended_at else '-'}",
        "",
        f"Files: {counts.files} imported, {counts.files_skipped} already imported",
        f"Rows: {counts.rows_read} read, {counts.rows_applied} applied, "
        f"{counts.rows_rejected} rejected, {counts.rows_skipped} skipped",
        f"Profiles: {counts.profiles_created} created, {counts.profiles_updated} updated, "
        f"{counts.profiles_exported} exported; {counts.unique_profiles} unique",
        f"Groups: {counts.groups_created} created, {counts.groups_updated} updated, "
        f"{counts.groups_deleted} deleted; {counts.members_removed} members removed",
    ]
    note = changed_files_note(counts)
    if note:
        lines.append(f"Note: {note}")
    if errors:
        lines += ["", "Errors:", *(f"  - {error}" for error in errors[:_FIRST_PROBLEMS])]
    if rejects:
        lines += ["", "First rejected rows:", *(f"  - {r}" for r in rejects[:_FIRST_PROBLEMS])]
    lines += ["", f"All details: connector history --run {record.id}"]
    message.set_content(redact_text("\n".join(lines)))
    message.replace_header("Subject", redact_text(message["Subject"]))
    return message


def _goal_names(connection: Connection, shown: int = 3) -> str:
    """The goals a whole-connection run ran, for a subject line: "a, b, c (+2 more)"."""
    names = [goal.name for goal in connection.goals if goal.enabled]
    if not names:
        return "no goals"
    more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def compose_config_mail(
    settings: Settings, recipients: list[str], problems: list[str]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "[connector] goal files invalid: previous configuration kept"
    message["From"] = settings.smtp_sender
    message["To"] = ", ".join(recipients)
    body = [
        "The goals folder changed, but the new files are invalid.",
        "The daemon keeps running with the previous configuration until they are fixed.",
        "",
        *problems,
    ]
    message.set_content(redact_text("\n".join(body)))
    return message


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system's trust store (plus `smtp_ca_file`), verifying certificate and host name
    unless `smtp_tls_verify` is off."""
    context = ssl.create_default_context()
    if settings.smtp_ca_file is not None:
        context.load_verify_locations(cafile=settings.smtp_ca_file)
    if not settings.smtp_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def warn_unverified_tls(settings: Settings) -> None:
    """Said once at start: mail then goes to whoever answers on the SMTP address."""
    if settings.smtp_host and not settings.smtp_tls_verify:
        log.warning(
            "smtp_tls_verify is off: the SMTP server's certificate and host name are not "
            "checked (for a test server only)",
            server=settings.smtp_host,
        )


def send_mail(settings: Settings, message: EmailMessage) -> bool:
    """Send through the configured SMTP server; False (and a log line) if it fails."""
    if not settings.smtp_host:
        log.info("no smtp_host configured; mail not sent", subject=message["Subject"])
        return False
    try:
        if settings.smtp_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.smtp_timeout,
                context=tls_context(settings),
            )
        else:
            client = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
            )
        with client:
            if settings.smtp_starttls and not settings.smtp_ssl:
                client.starttls(context=tls_context(settings))
            if settings.smtp_username and settings.smtp_password is not None:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.send_message(message)
    except ssl.SSLCertVerificationError as error:
        log.error(  # noqa: TRY400 -- a configuration problem, not a bug; no trace
            "mail not sent",
            subject=message["Subject"],
            server=settings.smtp_host,
            error=(
                f"cannot verify the SMTP server {settings.smtp_host}:{settings.smtp_port}: "
                f"{error.verify_message} ({error}); trust its CA with smtp_ca_file, or "
                "connect by the name its certificate holds"
            ),
        )
        return False
    except (OSError, smtplib.SMTPException) as error:
        log.error(  # noqa: TRY400 -- a mail server down is not a bug; no trace
            "mail not sent",
            subject=message["Subject"],
            server=settings.smtp_host,
            error=redact_text(str(error)),
        )
        return False
    log.info("mail sent", subject=message["Subject"], to=message["To"])
    return True


async def notify_run(
    settings: Settings,
    connection: Connection,
    record: RunRecord,
    errors: list[str],
    rejects: list[RowReject],
) -> None:
    if should_mail(connection, record):
        message = compose_run_mail(settings, connection, record, errors, rejects)
        await asyncio.to_thread(send_mail, settings, message)
