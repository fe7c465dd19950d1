#!/usr/bin/env bash
# The two commands of the README:
#   ./manage.sh run   — set up, build the embedded SQLite database, create the admin (password printed once), serve
#   ./manage.sh test  — set up, then run every test against a throwaway PostgreSQL cluster it starts itself
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

venv() {
  local requirements=$1 stamp=.venv/.installed-$1
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
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

case "${1:-}" in
  run)
    shift
    venv requirements.txt
    export FLASK_APP=wsgi
    .venv/bin/flask db upgrade
    .venv/bin/flask pbx first-run
    exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}" "$@"
    ;;
  test)
    shift
    venv requirements-dev.txt
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: $0 run|test [args…]" >&2
    exit 2
    ;;
esac
