#!/usr/bin/env bash
# Sets up voxa in .venv/ of this checkout: system packages (best effort), torch CPU wheel first, then voxa
# with its dev and bench extras. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

apt_pkgs="libsndfile1 espeak-ng sox libjemalloc2 asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav asterisk-core-sounds-en asterisk-core-sounds-es asterisk-core-sounds-fr asterisk-core-sounds-it asterisk-core-sounds-ru klettres-data"
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[setup] installing system packages:$missing" >&2
  ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null) \
    || echo "[setup] warning: could not install some system packages ($missing); the tests that need them will skip" >&2
fi

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first, so that nothing below pulls a multi-GB CUDA build
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,bench]"
# benchmark peer whose numpy<2 pin it does not need (see pyproject.toml)
python -c "import pyctcdecode" 2>/dev/null || python -m pip install -q --no-deps "pyctcdecode==0.5.0" "pygtrie>=2.1,<3"
echo "[setup] voxa installed in $(pwd)/.venv" >&2
