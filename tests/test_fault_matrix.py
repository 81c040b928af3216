"""CI's share of the fault matrix: the nominal table through the full suites, and a
representative third of the defect catalogue, each through the tests of its own
requirements (`--focus`: what CI's time allows); every defect must be caught by a
requirement it is mapped to and the nominal table must pass everything.
The whole matrix (20 nominal seeds, every defect) is `rig faults matrix --save docs/fault-matrix`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rigs.emulator.faults import CATALOGUE

ROOT = Path(__file__).resolve().parent.parent
#: one defect from each family: release shape, hidden force error, phase-specific
#: switch, setpoint interlock, ramp rate, latch; and from the defects that live in part of
#: the parameter space: a low force only, high forces only, one refusal, one latch; and from
#: the contract items the coverage map found untried: a corner, a relatch, a read-only register
REPRESENTATIVE = ["slow-release", "gain-error", "switch-ignored-in-hold", "overlimit-setpoint-accepted",
                  "fast-ramp", "estop-no-latch", "instant-release", "low-force-offset", "slow-release-high-force",
                  "reset-with-switch-pressed", "start-after-watchdog-trip", "setpoint-limit-off-by-one",
                  "reset-clears-mains-latch", "residual-writable"]


def test_catalogue_is_large_enough_and_mapped():
    assert len(CATALOGUE) >= 14
    from verification.spec import load_spec

    ids = set(load_spec("lumbar").quantity_ids)  # a requirement, or one quantity of it (ER-NORISE.rise)
    for entry in CATALOGUE.values():
        assert set(entry.requirements) <= ids, entry.name
        assert set(entry.collateral) <= ids - set(entry.requirements), entry.name  # documented, and not its own
        assert all(why.strip() for why in entry.collateral.values()), entry.name


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_representative_third_of_the_defects_is_caught(tmp_path, after_nominal_run):
    assert len(REPRESENTATIVE) * 3 >= len(CATALOGUE)
    proc = subprocess.run(
        [sys.executable, "-m", "rigcli", "faults", "matrix", "--seeds", "1", "--trials", "4", "--jobs", "3", "--focus",
         "--only", ",".join(REPRESENTATIVE), "--work-dir", str(tmp_path), "--save", str(tmp_path / "matrix")],
        cwd=ROOT, capture_output=True, text=True, timeout=880, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "false-fail rate 0/1" in proc.stdout and f"defects caught: {len(REPRESENTATIVE)}/{len(REPRESENTATIVE)}" in proc.stdout
    assert "new collateral FAILs: 0" in proc.stdout  # no check blamed a requirement a defect did not break
    assert (tmp_path / "matrix.md").exists()
