#!/usr/bin/env bash
# Install (into .venv) and run the main job against the embedded emulated table.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/rig "${@:-run}"
