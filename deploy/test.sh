#!/usr/bin/env bash
# Install what the test suite needs on a Debian machine (as root), start the services
# it talks to, then run ruff, mypy, the handbook's build and pytest (arguments go to pytest).
# Every step is skipped when already done, so a second run goes straight to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }
die() { printf 'deploy/test.sh: %s\n' "$*" >&2; exit 1; }

# Debian packages the tests use: ActiveMQ (plus the jars its STOMP map transformation
# needs), the Nagios plugins the probe tests run, Chromium for the dashboard test,
# Perl's Net::STOMP for the interop client test, xmllint for the rendered ActiveMQ
# configuration, Nagios and Icinga 2 for the nagios-bridge tests (each run by its test
# with a configuration of its own, not as a system service), and the database/broker servers
# when the machine does not have them yet.
need=()
want() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need+=("$1"); }
for pkg in activemq libxstream-java libjettison-java default-jre-headless \
    monitoring-plugins-basic monitoring-plugins-standard chromium chromium-driver libxml2-utils \
    libnet-stomp-perl nagios4-core icinga2; do
    want "$pkg"
done
fresh_pg=0 fresh_maria=0
command -v pg_ctlcluster >/dev/null || { need+=(postgresql); fresh_pg=1; }
[ -x /usr/sbin/mariadbd ] || { need+=(mariadb-server); fresh_maria=1; }
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)

if ((${#need[@]})); then
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${need[*]}"
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -q
    timeout 1500 apt-get install -y -q --no-install-recommends "${need[@]}"
else
    log "Debian packages already installed"
fi

wait_port() { # name port seconds
    local i
    for ((i = 0; i < $3 * 2; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.5
    done
    die "$1 is not answering on 127.0.0.1:$2 after $3 s"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
wait_port PostgreSQL 5432 60
if ((fresh_pg)); then
    # The fixtures log in as postgres over TCP without a password, as on the dev machines.
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -1)
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main reload
fi

if ! port_open 3306; then
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
fi
wait_port MariaDB 3306 60
if ((fresh_maria)); then
    mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
fi

if command -v rabbitmq-server >/dev/null; then
    if ! port_open 5672; then
        log "starting RabbitMQ"
        rabbitmq-server -detached
    fi
    wait_port RabbitMQ 5672 120
    if ! port_open 61613; then
        log "enabling RabbitMQ's STOMP plugin"
        timeout 120 rabbitmq-plugins enable rabbitmq_stomp
        wait_port "RabbitMQ STOMP" 61613 60
    fi
fi

# Always: CI runs from a fresh clone, whose path the editable install must point at.
log "pip install -e .[test]"
timeout 900 python -m pip install -q --disable-pip-version-check -e '.[test]'

log "ruff check msgbus tests"
python -m ruff check msgbus tests
log "mypy msgbus tests"
python -m mypy msgbus tests
# The handbook: its generated reference, every internal link and anchor; a warning fails.
log "mkdocs build --strict"
site=$(mktemp -d /tmp/msgbus-site.XXXXXX)
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"
log "pytest $*"
# A hang guard only: pytest-timeout already bounds each test.
exec timeout 2700 python -m pytest "$@"
