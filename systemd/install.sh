#!/bin/sh
# Install connector as a systemd service; safe to run again (an upgrade is the same command).
#
#   sudo systemd/install.sh                      # from a checkout, onto this host
#   systemd/install.sh --root /tmp/img --source .   # into a folder (packaging, tests)
#
# Layout (under --root, "/" by default):
#   /opt/connector/                  a virtual environment created here, in place: its scripts
#                                    name /opt/connector/bin/python, so it is never copied
#   /etc/connector/                  root:connector 0750 (the unit's ConfigurationDirectory)
#     settings.yaml                  root:connector 0640, from config/settings.yaml if absent
#     connector.env                  root:root 0600, secrets; read by systemd, never overwritten
#     goals/                         root:connector 0750, the connection files
#   /etc/systemd/system/connector.service
#   /var/lib/connector/              made by systemd at start (StateDirectory=), connector 0700
#
# Options:
#   --root DIR     install under DIR instead of /; no user, no ownership, no start
#   --source DIR   the connector checkout or sdist to install (default: this script's parent)
#   --no-user      do not create the system user `connector`
#   --no-start     enable the unit but do not start or restart it
# Environment: PYTHON (default python3) makes the venv; PIP_ARGS are extra `pip install` words.
set -eu
umask 022  # the venv and the unit are readable by all; the secrets file sets its own

ROOT=/
SOURCE=$(cd "$(dirname "$0")/.." && pwd)
CREATE_USER=yes
START=yes
PYTHON=${PYTHON:-python3}
PIP_ARGS=${PIP_ARGS:-}

die() {
    echo "install.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --root) [ $# -ge 2 ] || die "--root needs a folder"; ROOT=$2; shift 2 ;;
        --root=*) ROOT=${1#--root=}; shift ;;
        --source) [ $# -ge 2 ] || die "--source needs a folder"; SOURCE=$2; shift 2 ;;
        --source=*) SOURCE=${1#--source=}; shift ;;
        --no-user) CREATE_USER=no; shift ;;
        --no-start) START=no; shift ;;
        -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[ -f "$SOURCE/pyproject.toml" ] || die "no pyproject.toml in $SOURCE (use --source)"
SOURCE=$(cd "$SOURCE" && pwd)
[ -d "$ROOT" ] || die "no such folder: $ROOT"
ROOT=$(cd "$ROOT" && pwd)
if [ "$ROOT" = / ]; then
    P=
    ON_HOST=yes
else
    P=$ROOT
    ON_HOST=no
    CREATE_USER=no
    START=no
fi
# ownership is set only on the host itself, as root: a --root tree belongs to whoever builds it
OWN=no
if [ "$ON_HOST" = yes ] && [ "$(id -u)" = 0 ]; then
    OWN=yes
fi

PREFIX=$P/opt/connector
CONF=$P/etc/connector
UNIT_DIR=$P/etc/systemd/system

step() {
    echo "==> $*"
}

# -- the system user -------------------------------------------------------------------
if [ "$CREATE_USER" = yes ] && ! getent passwd connector >/dev/null; then
    step "system user connector"
    if getent group connector >/dev/null; then group_option="--gid connector"; else group_option="--user-group"; fi
    # shellcheck disable=SC2086
    useradd --system $group_option --home-dir /var/lib/connector --no-create-home \
        --shell /usr/sbin/nologin --comment "connector daemon" connector
fi
if [ "$OWN" = yes ] && ! getent group connector >/dev/null; then
    die "no group connector: create the user (drop --no-user) or the group first"
fi

# -- the virtual environment, in place ------------------------------------------------
# A venv's scripts start with `#!<its own path>/bin/python`: one copied or moved from
# elsewhere runs the wrong interpreter, so such a venv is rebuilt here (--clear).
if [ -e "$PREFIX" ] && [ ! -f "$PREFIX/pyvenv.cfg" ] && [ -n "$(ls -A "$PREFIX")" ]; then
    die "$PREFIX exists and is not a virtual environment (an older install?): move it away first"
fi
made_here=no
case $(head -n 1 "$PREFIX/bin/pip" 2>/dev/null) in
    "#!$PREFIX/bin/python" | "#!$PREFIX/bin/python3" | "#!$PREFIX/bin/python3."[0-9]*) made_here=yes ;;
esac
if [ -f "$PREFIX/pyvenv.cfg" ] && [ "$made_here" = no ]; then
    step "virtual environment $PREFIX was made elsewhere: recreating it"
    "$PYTHON" -m venv --clear "$PREFIX"
elif [ ! -x "$PREFIX/bin/python" ]; then
    step "virtual environment $PREFIX"
    "$PYTHON" -m venv "$PREFIX"
fi
step "pip install $SOURCE"
# shellcheck disable=SC2086
"$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$SOURCE"
"$PREFIX/bin/connector" --version >/dev/null || die "$PREFIX/bin/connector does not start"
# the service's user must reach the venv's base interpreter too (not one under /root)
if [ "$OWN" = yes ] && command -v runuser >/dev/null && getent passwd connector >/dev/null \
    && ! runuser -u connector -- "$PREFIX/bin/connector" --version >/dev/null 2>&1; then
    die "user connector cannot run $PREFIX/bin/connector: its python ($PYTHON) must be" \
        "readable by all, not under /root; remove $PREFIX and run again with" \
        "PYTHON=/usr/bin/python3"
fi

# -- /etc/connector: settings, secrets, goals -------------------------------------------
step "configuration in $CONF"
install -d -m 0750 "$CONF" "$CONF/goals"
if [ ! -e "$CONF/settings.yaml" ]; then
    install -m 0640 "$SOURCE/config/settings.yaml" "$CONF/settings.yaml"
fi
if [ ! -e "$CONF/connector.env" ]; then
    # umask first: the file is never readable by others, not even for an instant
    (umask 077 && cp "$SOURCE/systemd/connector.env.example" "$CONF/connector.env")
fi
chmod 0750 "$CONF" "$CONF/goals"
chmod 0640 "$CONF/settings.yaml"
chmod 0600 "$CONF/connector.env"
if [ "$OWN" = yes ]; then
    chown root:connector "$CONF" "$CONF/goals" "$CONF/settings.yaml"
    chown root:root "$CONF/connector.env"
fi

# -- the unit and its documentation ---------------------------------------------------
step "unit $UNIT_DIR/connector.service"
install -d -m 0755 "$UNIT_DIR" "$P/usr/share/doc/connector"
install -m 0644 "$SOURCE/systemd/connector.service" "$UNIT_DIR/connector.service"
install -m 0644 "$SOURCE/README.md" "$P/usr/share/doc/connector/README.md"

# -- enable, and start or restart on the host -------------------------------------------
if ! command -v systemctl >/dev/null; then
    echo "systemctl not found: enable connector.service by hand" >&2
elif [ "$ON_HOST" = no ]; then
    systemctl --root="$ROOT" --quiet enable connector.service
elif [ ! -d /run/systemd/system ]; then
    systemctl --quiet enable connector.service
    echo "systemd is not running here: the unit is enabled, not started" >&2
else
    systemctl daemon-reload
    if [ "$START" = no ]; then
        systemctl --quiet enable connector.service
    elif systemctl --quiet is-active connector.service; then
        systemctl --quiet enable connector.service
        systemctl restart connector.service  # the new code
    else
        systemctl --quiet enable --now connector.service
    fi
fi
step "done: $PREFIX/bin/connector $("$PREFIX/bin/connector" --version)"
