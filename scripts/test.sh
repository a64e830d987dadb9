#!/usr/bin/env bash
# Set up (idempotent) and run voxa's tests and lint. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests benchmarks
set +e
# pyproject's testpaths and addopts make this run tests/ and the docstring examples in src/voxa
# (--doctest-modules); arguments narrow it as usual, e.g. scripts/test.sh tests/tse -m "not slow"
python -m pytest -p no:cacheprovider -rs "$@"
rc=$?
set -e
# pytest's 5 means "no tests collected": that is a failure here, not a pass
if [ "$rc" -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi
exit "$rc"
