#!/usr/bin/env bash
# Set up (idempotent) and run voxa's main job: `voxa demo`, on real data if it finds some.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
voxa demo "$@"
