#!/usr/bin/env bash
# Install (into .venv) and run the main job against the embedded emulated table.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
exec .venv/bin/rig "${@:-run}"
