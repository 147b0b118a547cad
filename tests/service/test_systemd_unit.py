"""The shipped systemd unit: notify type, watchdog, reload, restart, state, hardening."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "connector.service"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of `Key=value` lines; a key may repeat (systemd appends or resets)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"a setting outside any section: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return parse_unit(UNIT.read_text("utf-8"))["Service"]


def test_the_daemon_tells_systemd_when_it_is_ready_and_alive(
    service: dict[str, list[str]],
) -> None:
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    [watchdog] = service["WatchdogSec"]
    assert watchdog.endswith("s")
    assert int(watchdog.removesuffix("s")) > 0


def test_reload_is_sighup_and_a_crash_restarts(service: dict[str, list[str]]) -> None:
    [reload] = service["ExecReload"]
    assert reload.split() == ["/bin/kill", "-HUP", "$MAINPID"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    [start] = service["ExecStart"]
    assert start.split()[-1] == "daemon"
    assert start.split()[0].startswith("/")


def test_state_and_configuration_directories_are_the_ones_the_settings_use(
    service: dict[str, list[str]],
) -> None:
    assert service["StateDirectory"] == ["connector"]
    assert service["ConfigurationDirectory"] == ["connector"]
    environment = dict(item.split("=", 1) for item in service["Environment"])
    assert environment["CONNECTOR_DATABASE"].startswith("/var/lib/connector/")
    assert environment["CONNECTOR_GOALS_DIR"].startswith("/etc/connector/")
    assert environment["CONNECTOR_LOG_FORMAT"] == "json"
    assert "/var/lib/connector" in service["ReadWritePaths"]


def test_the_service_is_hardened(service: dict[str, list[str]]) -> None:
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert service[key] == [value], key
    # the notify socket is AF_UNIX; S3 and SMTP need IP
    assert set(service["RestrictAddressFamilies"][0].split()) >= {"AF_UNIX", "AF_INET"}


def test_the_stop_timeout_leaves_room_for_a_graceful_stop(
    service: dict[str, list[str]],
) -> None:
    from connector.settings import Settings  # noqa: PLC0415

    [timeout] = service["TimeoutStopSec"]
    assert int(timeout.removesuffix("s")) > Settings().shutdown_timeout


def require_systemd_analyze() -> str:
    """The tool's path; without it a failure in CI (`.ci/run` installs it), else a skip."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = (
            "systemd-analyze is not installed on this machine (Debian: apt-get install systemd)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return analyze


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = require_systemd_analyze()
    # the unit as installed, with ExecStart pointing at an executable that exists here
    text = UNIT.read_text("utf-8")
    lines = [
        f"ExecStart={sys.executable} -m connector daemon" if line.startswith("ExecStart=") else line
        for line in text.splitlines()
    ]
    copy = tmp_path / "connector.service"
    copy.write_text("\n".join(lines) + "\n", "utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if "connector.service" in line]
    assert ours == [], ours
