"""The project installs without a deprecation from its build backend: `project.license` as
a TOML table warns on every install with setuptools today and fails its builds after
2027-02-18; an SPDX expression (setuptools >= 77) is the form that stays."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_is_an_spdx_expression_and_the_backend_can_read_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert isinstance(project["project"]["license"], str)  # not {text = …}
    assert not any(c.startswith("License ::") for c in project["project"].get("classifiers", []))
    requires = project["build-system"]["requires"]
    setuptools = next(r for r in requires if r.replace(" ", "").startswith("setuptools>="))
    assert tuple(int(x) for x in setuptools.split(">=")[1].split(".")) >= (77,)


def test_an_editable_install_says_nothing_of_the_license(tmp_path):
    """What `pip install -e .` prints, without installing (the editable metadata is built
    in an isolated environment from build-system.requires, as a real install does)."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-e", str(ROOT), "--no-deps", "--dry-run",
                           "--disable-pip-version-check"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-2000:]
    assert "Would install traction-rig" in out
    assert "license" not in out.lower(), out[-2000:]
