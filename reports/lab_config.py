"""The lab config: what a whole lab shares, not one bench — where results go (the
results database) and the key pair that signs run manifests.

A rig file describes one bench; a lab has many benches writing to one database and
signing with one key, so those settings live in one file the benches share:

    database: postgresql+psycopg://rig@db.lab.example/traction   # or sqlite:////srv/rig/history.sqlite
    signing:
      public_key: /etc/traction-rig/lab-signing.pub    # checks signatures (rig verify)
      private_key: /etc/traction-rig/lab-signing.key   # signs manifests (rig report, rig run)

Found by `--lab FILE`, else `$TRACTION_RIG_LAB`, else `/etc/traction-rig/lab.yaml`
when it exists; with none, results go to the SQLite file beside the run directories and
nothing is signed. Relative key paths are relative to the lab config's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drivers.errors import ConfigError

LAB_ENV = "TRACTION_RIG_LAB"
SYSTEM_LAB = Path("/etc/traction-rig/lab.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SigningConfig(_Strict):
    public_key: Path | None = Field(None, description="PEM Ed25519 public key: runs must carry a valid signature")
    private_key: Path | None = Field(None, description="PEM Ed25519 private key: manifests are signed with it")


class LabConfig(_Strict):
    database: str | None = Field(None, min_length=1, description="SQLAlchemy URL of the results database")
    signing: SigningConfig = SigningConfig()
    source: Path | None = Field(None, exclude=True)


def lab_path(explicit: str | Path | None = None) -> Path | None:
    """The lab config that applies, or None (explicit > $TRACTION_RIG_LAB > /etc)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(LAB_ENV)
    if env:
        return Path(env)
    return SYSTEM_LAB if SYSTEM_LAB.is_file() else None


def load_lab(explicit: str | Path | None = None) -> LabConfig:
    path = lab_path(explicit)
    if path is None:
        return LabConfig()
    origin = "--lab" if explicit else f"${LAB_ENV}" if os.environ.get(LAB_ENV) else "lab config"
    if not path.is_file():
        raise ConfigError(f"{path}: no such lab config (from {origin}); fix the path or unset it")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (database:, signing:) at the top level")
    try:
        lab = LabConfig(**data, source=path)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        why = "unknown key (known: database, signing.public_key, signing.private_key)" \
            if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{path}: {key}: {why}") from None
    base = path.resolve().parent
    resolve = (lambda p: p if p is None or p.is_absolute() else base / p)
    signing = SigningConfig(public_key=resolve(lab.signing.public_key), private_key=resolve(lab.signing.private_key))
    return lab.model_copy(update={"signing": signing})
