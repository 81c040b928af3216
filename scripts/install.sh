#!/usr/bin/env bash
# Install the project into .venv (what both README commands do first), then load the
# emulator's compiled kernel once: numba caches it beside its source, so the emulators
# that runs and tests start later load it in ~0.1 s instead of each compiling it (~8 s of
# a core, several at once when tests start rig runs side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/python -c "from rigs.emulator.kernel import warm_up; warm_up()"
