#!/usr/bin/env bash
# Installs the portal and serves it on the embedded default (SQLite, in-process tasks) with demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
export DEBUG="${DEBUG:-true}"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py demo
echo
echo "The portal is at http://127.0.0.1:${PORT}/  (Ctrl-C stops it)"
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT}"
