"""`systemd/install.sh` run for real into a temporary root: the venv, /etc/connector, the unit.

The script is what the README tells an operator to run. Here it installs under `--root`
(no user, no ownership, no start), with the machine's pip and package index, once for the
module; each test then checks one promise on that tree: it starts where it was created,
systemd accepts the unit as installed, the hardening score holds, a second run keeps the
operator's secrets and settings, and a venv copied from elsewhere is rebuilt in place.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_systemd_unit import parse_unit, require_systemd_analyze

from connector import __version__

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "systemd" / "install.sh"
UNIT = REPO / "systemd" / "connector.service"
README = REPO / "README.md"
INSTALL_TIMEOUT = 600  # pip builds the project and installs its dependencies
MAX_EXPOSURE = 2.0


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the install script as the README does, with POSIX sh, into `root`."""
    result = subprocess.run(
        ["sh", str(SCRIPT), "--root", str(root), "--source", str(REPO), *extra],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def bare_env(**extra: str) -> dict[str, str]:
    """No venv on PATH, no PYTHONPATH: what a service manager gives a process."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One install into a temporary root, shared by the module's tests."""
    root = tmp_path_factory.mktemp("host")
    install(root)
    return root


def test_the_unit_the_script_and_the_settings_name_the_same_paths() -> None:
    service = parse_unit(UNIT.read_text("utf-8"))["Service"]
    [start] = service["ExecStart"]
    assert start == "/opt/connector/bin/connector daemon"
    assert service["EnvironmentFile"] == ["/etc/connector/connector.env"]  # required, no "-"
    assert service["ConfigurationDirectory"] == ["connector"]
    assert service["ConfigurationDirectoryMode"] == ["0750"]
    environment = dict(item.split("=", 1) for item in service["Environment"])
    assert environment["CONNECTOR_CONFIG"] == "/etc/connector/settings.yaml"
    settings = (REPO / "config" / "settings.yaml").read_text("utf-8")
    assert f"goals_dir: {environment['CONNECTOR_GOALS_DIR']} " in settings
    assert f"database: {environment['CONNECTOR_DATABASE']} " in settings
    script = SCRIPT.read_text("utf-8")
    for fragment in ("$P/opt/connector", "$P/etc/connector", '"$CONF/connector.env"'):
        assert fragment in script, fragment
    section = README.read_text("utf-8").split("## Running as a service", 1)[1].split("\n## ", 1)[0]
    assert "sudo systemd/install.sh" in section
    assert "cp -r" not in section
    for path in ("/opt/connector/bin/connector", "/etc/connector/connector.env"):
        assert path in section, path


@pytest.mark.slow
def test_the_install_lays_out_the_venv_the_configuration_and_the_unit(installed: Path) -> None:
    etc = installed / "etc" / "connector"
    assert mode(etc) == 0o750
    assert mode(etc / "goals") == 0o750
    assert mode(etc / "settings.yaml") == 0o640
    assert mode(etc / "connector.env") == 0o600
    assert (etc / "settings.yaml").read_text("utf-8") == (
        REPO / "config" / "settings.yaml"
    ).read_text("utf-8")
    # every line of a fresh secrets file is a comment: nothing takes effect until edited
    secrets = (etc / "connector.env").read_text("utf-8").splitlines()
    assert secrets
    assert all(line.startswith("#") for line in secrets if line.strip())
    unit = installed / "etc" / "systemd" / "system" / "connector.service"
    assert unit.read_text("utf-8") == UNIT.read_text("utf-8")
    assert mode(unit) == 0o644
    if shutil.which("systemctl"):  # `systemctl --root` enables it offline
        wanted = installed / "etc" / "systemd" / "system" / "multi-user.target.wants"
        link = (wanted / "connector.service").readlink()
        assert link == Path("/etc/systemd/system/connector.service")
    assert (installed / "usr" / "share" / "doc" / "connector" / "README.md").is_file()
    # a --root install makes no state folder: systemd does, owned by the service's user
    assert not (installed / "var" / "lib" / "connector").exists()


@pytest.mark.slow
def test_the_installed_connector_starts_where_it_was_created(installed: Path) -> None:
    venv = installed / "opt" / "connector"
    assert (venv / "pyvenv.cfg").is_file()
    assert (venv / "bin" / "connector").read_text("utf-8").splitlines()[0] == (
        f"#!{venv}/bin/python"
    )
    version = subprocess.run(
        [venv / "bin" / "connector", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare_env(),
        cwd="/",
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"connector {__version__}"
    # the installed settings file as the daemon reads it (its paths moved under the root)
    etc = installed / "etc" / "connector"
    validate = subprocess.run(
        [venv / "bin" / "connector", "--config", etc / "settings.yaml", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare_env(
            CONNECTOR_GOALS_DIR=str(etc / "goals"),
            CONNECTOR_DATABASE=str(installed / "connector.db"),
        ),
        cwd="/",
        check=False,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "segments: 0 defined" in validate.stdout


@pytest.mark.slow
def test_systemd_analyze_verifies_the_unit_as_installed(installed: Path) -> None:
    analyze = require_systemd_analyze()
    # the root must look like a host: systemd's own units, and the /bin/kill of ExecReload
    units = installed / "usr" / "lib" / "systemd" / "system"
    if not units.exists():
        shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    kill = installed / Path(os.path.realpath("/bin/kill")).relative_to("/")
    kill.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath("/bin/kill"), kill)
    if not (installed / "bin").exists():
        (installed / "bin").symlink_to(kill.parent.relative_to(installed))
    result = subprocess.run(
        [analyze, "verify", f"--root={installed}", "connector.service"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if "connector" in line]
    assert ours == [], ours


@pytest.mark.slow
def test_the_installed_unit_is_exposed_at_most_2_0(installed: Path) -> None:
    analyze = require_systemd_analyze()
    result = subprocess.run(
        [analyze, "security", "--offline=yes", f"--root={installed}", "connector.service"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    found = re.search(r"Overall exposure level for connector\.service: (\d+\.\d+)", output)
    assert found is not None, output
    assert float(found.group(1)) <= MAX_EXPOSURE, output


@pytest.mark.slow
def test_a_second_run_keeps_the_operators_secrets_and_settings(installed: Path) -> None:
    etc = installed / "etc" / "connector"
    secrets = etc / "connector.env"
    secrets.write_text("CRM_SECRET=kept-as-is\n", "utf-8")
    secrets.chmod(0o644)  # a careless edit
    settings = etc / "settings.yaml"
    settings.write_text(settings.read_text("utf-8") + "log_level: debug\n", "utf-8")
    goal = etc / "goals" / "crm.yaml"
    shutil.copy(REPO / "goals" / "crm.yaml", goal)

    result = install(installed)

    assert "virtual environment" not in result.stdout  # reused, not made again
    assert secrets.read_text("utf-8") == "CRM_SECRET=kept-as-is\n"
    assert mode(secrets) == 0o600
    assert settings.read_text("utf-8").endswith("log_level: debug\n")
    assert goal.read_text("utf-8") == (REPO / "goals" / "crm.yaml").read_text("utf-8")
    venv = installed / "opt" / "connector"
    version = subprocess.run(
        [venv / "bin" / "connector", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare_env(),
        check=False,
    )
    assert version.stdout.strip() == f"connector {__version__}", version.stderr


@pytest.mark.slow
def test_a_venv_copied_from_elsewhere_is_rebuilt_in_place(installed: Path, tmp_path: Path) -> None:
    """The README's old `cp -r` step: the copy's scripts still run the original's python."""
    elsewhere = installed / "opt" / "connector"
    copy = tmp_path / "opt" / "connector"
    shutil.copytree(elsewhere, copy, symlinks=True)
    assert f"#!{elsewhere}/bin/python" in (copy / "bin" / "pip").read_text("utf-8")

    result = install(tmp_path)

    assert "was made elsewhere: recreating it" in result.stdout
    for script in ("pip", "connector"):
        first = (copy / "bin" / script).read_text("utf-8").splitlines()[0]
        assert re.fullmatch(rf"#!{re.escape(str(copy))}/bin/python[0-9.]*", first), script
    version = subprocess.run(
        [copy / "bin" / "connector", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare_env(),
        check=False,
    )
    assert version.stdout.strip() == f"connector {__version__}", version.stderr


def test_the_script_refuses_a_folder_that_is_not_a_venv(tmp_path: Path) -> None:
    """An older install (a source tree in /opt/connector) is never installed over."""
    (tmp_path / "opt" / "connector").mkdir(parents=True)
    (tmp_path / "opt" / "connector" / "README.md").write_text("old\n", "utf-8")
    result = subprocess.run(
        ["sh", str(SCRIPT), "--root", str(tmp_path), "--source", str(REPO)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "is not a virtual environment" in result.stderr
    assert not (tmp_path / "etc").exists()


def test_the_script_names_a_bad_argument() -> None:
    result = subprocess.run(
        ["sh", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "unknown argument: --bogus" in result.stderr
