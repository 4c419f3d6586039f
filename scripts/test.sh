#!/usr/bin/env bash
# Set up, then lint (ruff), type-check (mypy) and run the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/browser.sh  # headless Chromium for the report's browser test
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
