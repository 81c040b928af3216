"""SHA-256 manifest of a run directory, in `sha256sum` format.

`RUN/MANIFEST.sha256` lists every file under the run directory except itself, one
line each: ``<64 hex>  <path relative to RUN, with "/">``, sorted by path. It is
written by `rig report` *after* the report, so it seals the run's own files (the
record, the series CSVs) together with the report rendered from them
(`report/report.html`, `report/report.pdf`, when the report is written inside RUN).
`sha256sum -c MANIFEST.sha256` run inside RUN checks it as well as `rig verify RUN`
does, except that only `rig verify` also notices files added since.

Names with a backslash or a newline are escaped the way GNU sha256sum does (the line
starts with a backslash).

The manifest alone is not a signature: it is evidence of accidental or careless change
only, because anybody who can write the run directory can rewrite it too. When the lab
config names a private key, `rig report` also signs the manifest
(`RUN/MANIFEST.sha256.sig`, reports/signing.py), and `rig verify` with the lab's public
key then refuses a run that was edited and re-sealed. The signature is written after
the manifest, so the manifest leaves it out, as it leaves out itself.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from reports.rundir import MANIFEST_NAME, REPORT_DIR, SIGNATURE_NAME, write_atomic

__all__ = ["MANIFEST_NAME", "REPORT_PREFIX", "SIGNATURE_NAME", "ManifestError", "evidence_sha256", "hash_files",
           "read_manifest", "run_files", "sha256_file", "verify_manifest", "write_atomic", "write_manifest"]
_NOT_LISTED = frozenset({MANIFEST_NAME, SIGNATURE_NAME})
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_files(run_dir: Path) -> list[str]:
    """Every regular file under RUN (relative POSIX paths, sorted), except the manifest and
    its signature: both are written after the hashes are taken, so neither can be listed."""
    run_dir = Path(run_dir)
    found = []
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        for name in files:
            rel = (Path(root) / name).relative_to(run_dir).as_posix()
            if rel not in _NOT_LISTED:
                found.append(rel)
    return sorted(found)


def hash_files(run_dir: Path, names: list[str] | None = None) -> dict[str, str]:
    run_dir = Path(run_dir)
    return {rel: sha256_file(run_dir / rel) for rel in (run_files(run_dir) if names is None else names)}


def _escape(rel: str) -> tuple[str, str]:
    if "\\" in rel or "\n" in rel:
        return "\\", rel.replace("\\", "\\\\").replace("\n", "\\n")
    return "", rel


def _unescape(rel: str) -> str:
    out, i = [], 0
    while i < len(rel):
        if rel[i] == "\\" and i + 1 < len(rel):
            out.append("\n" if rel[i + 1] == "n" else rel[i + 1])
            i += 2
        else:
            out.append(rel[i])
            i += 1
    return "".join(out)


def write_manifest(run_dir: Path) -> Path:
    """Hash every file of the run and write RUN/MANIFEST.sha256 (atomically); returns its path."""
    run_dir = Path(run_dir)
    lines = []
    for rel, digest in hash_files(run_dir).items():
        prefix, name = _escape(rel)
        lines.append(f"{prefix}{digest}  {name}\n")
    return write_atomic(run_dir / MANIFEST_NAME, "".join(lines).encode("utf-8"))


class ManifestError(Exception):
    """No manifest, or one that cannot be read."""


def read_manifest(run_dir: Path) -> dict[str, str]:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{run_dir}: no {MANIFEST_NAME} (`rig report` writes it)")
    entries: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="\n") as f:
        for n, text in enumerate(f, 1):
            text = text.rstrip("\n")
            if not text:
                continue
            match = _LINE.match(text)
            if not match:
                raise ManifestError(f"{path}: line {n} is not '<sha256>  <path>'")
            escaped, digest, rel = match.groups()
            entries[_unescape(rel) if escaped else rel] = digest.lower()
    return entries


REPORT_PREFIX = REPORT_DIR + "/"  # what `rig report` may render again: the rest of the run is its evidence


def evidence_sha256(run_dir: Path) -> str | None:
    """SHA-256 over the manifest's lines for the run's evidence (everything but the
    report folder, which a later `rig report` may legitimately render and seal again);
    None when the run is not sealed. A results database keeps it to notice an edit."""
    try:
        entries = read_manifest(run_dir)
    except ManifestError:
        return None
    lines = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(entries.items()) if not rel.startswith(REPORT_PREFIX))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def verify_manifest(run_dir: Path, ignore_prefix: str | None = None) -> list[str]:
    """Problems found, one per file: 'edited: P', 'added: P', 'removed: P' ([] = verified).

    `ignore_prefix` leaves out the paths under it on both sides (the report re-renders
    its own folder before re-sealing)."""
    run_dir = Path(run_dir)
    expected = read_manifest(run_dir)
    present = run_files(run_dir)
    if ignore_prefix:
        expected = {k: v for k, v in expected.items() if not k.startswith(ignore_prefix)}
        present = [p for p in present if not p.startswith(ignore_prefix)]
    problems = []
    present_set = set(present)
    for rel in sorted(set(expected) | present_set):
        if rel not in present_set:
            problems.append(f"removed: {rel}")
        elif rel not in expected:
            problems.append(f"added: {rel}")
        elif sha256_file(run_dir / rel) != expected[rel]:
            problems.append(f"edited: {rel}")
    return problems
