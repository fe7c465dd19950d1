#!/usr/bin/env bash
# The two commands of the README:
#   ./manage.sh run   — set up, build the embedded SQLite database, create the admin (password printed once), serve
#   ./manage.sh test  — set up, then run every test against a throwaway PostgreSQL cluster it starts itself
#   ./manage.sh test-asterisk — the real-Asterisk layer (tests/asterisk): installs ../shared/lab when it is
#                     beside the repository, then drives the lab Asterisk with sipp calls (as root)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# Debian packages a fresh machine may lack: installed when we are root, named otherwise.
need_debian_packages() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing system packages: run  sudo apt-get install $*" >&2
    exit 1
  fi
}

venv() {
  local requirements=$1 stamp=.venv/.installed-$1
  if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      need_debian_packages python3-venv
      "$PYTHON" -m venv .venv
    fi
  fi
  # Reinstall only when the requirement files changed.
  local digest
  digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}

# The tests start their own PostgreSQL 15 cluster from the server binaries (not the system service).
need_postgresql() {
  if [ -z "${TEST_DATABASE_SERVER:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need_debian_packages postgresql
  fi
}

case "${1:-}" in
  run)
    shift
    venv requirements.txt
    export FLASK_APP=wsgi
    # The development server speaks plain HTTP on 127.0.0.1: a Secure cookie would never come back.
    export PBX_SECURE_COOKIES=${PBX_SECURE_COOKIES:-off}
    .venv/bin/flask db upgrade
    .venv/bin/flask pbx first-run
    exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}" "$@"
    ;;
  test)
    shift
    need_postgresql
    # Pages are tested in Debian's chromium; Playwright's own browser download cannot work offline. The
    # shipped nginx site is tested in front of gunicorn with Debian's nginx.
    [ -x /usr/bin/chromium ] || need_debian_packages chromium
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_debian_packages nginx
    venv requirements-dev.txt
    exec .venv/bin/python -m pytest "$@"
    ;;
  test-asterisk)
    shift
    # The lab (a prebuilt Asterisk 22.10.1 in /opt/asterisk-lab, sipp) comes from ../shared/lab; setup.sh
    # changes nothing when it is installed. Without it (or not as root) the layer skips and says why.
    if [ -f ../shared/lab/setup.sh ] && [ "$(id -u)" = 0 ]; then
      bash ../shared/lab/setup.sh
    fi
    need_postgresql
    venv requirements-dev.txt
    exec .venv/bin/python -m pytest -m asterisk tests/asterisk "$@"
    ;;
  *)
    echo "usage: $0 run|test|test-asterisk [args…]" >&2
    exit 2
    ;;
esac
