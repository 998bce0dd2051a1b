#!/usr/bin/env bash
# Install grokinterp with its test and LLC extras into .venv and run the whole check: lint, format, tests.
# torch is pinned to 2.13.0 so that pip never pulls a multi-GB CUDA build on a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet torch==2.13.0 -e ".[test,llc]"
# The report tests open the HTML in headless Chromium (Debian's package); they skip without it.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q
