#!/usr/bin/env bash
# Install (into .venv) and run the tests. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
