"""Ed25519 signatures of run manifests: a run that was edited and re-sealed
(`write_manifest` again) still passes the manifest check, and only the signature
catches it. Synthetic runs, reports without PDF: fast, nothing timed."""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.errors import ConfigError
from reports import render
from reports.lab_config import LAB_ENV
from reports.manifest import MANIFEST_NAME, run_files, verify_manifest, write_manifest
from reports.signing import (SIGNATURE_NAME, check_signature, generate_keypair, key_fingerprint, load_public_key,
                             sign_manifest)
from rigcli.main import main as rig_main
from tests.synthetic_run import build_run


@pytest.fixture(autouse=True)
def no_ambient_lab(monkeypatch):
    """Only the --lab each test passes applies, never the machine's own lab config."""
    monkeypatch.delenv(LAB_ENV, raising=False)
    monkeypatch.setattr("reports.lab_config.SYSTEM_LAB", Path("/nonexistent/traction-rig/lab.yaml"))


def write_lab(path: Path, public: Path | None = None, private: Path | None = None) -> Path:
    signing = {k: str(v) for k, v in (("public_key", public), ("private_key", private)) if v is not None}
    path.write_text(json.dumps({"signing": signing}) if signing else "", encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed_run(tmp_path_factory, keys) -> Path:
    run = build_run(tmp_path_factory.mktemp("runs") / "run")
    written = render.render_report(run, max_plots=0, pdf=False, signing_key=keys[0])
    assert [p.name for p in written] == ["report.html", MANIFEST_NAME, SIGNATURE_NAME]
    return run


@pytest.fixture
def run(signed_run, tmp_path) -> Path:
    """A private copy of the signed run, free to tamper with."""
    return Path(shutil.copytree(signed_run, tmp_path / "run"))


@pytest.fixture
def lab(keys, tmp_path) -> Path:
    return write_lab(tmp_path / "lab.yaml", public=keys[1], private=keys[0])


def verify(run: Path, lab: Path, capsys) -> tuple[int, list[str], str]:
    code = rig_main(["verify", str(run), "--lab", str(lab)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


# ------------------------------------------------------------------ keys

def test_generate_keypair_private_key_is_0600_and_never_overwritten(tmp_path):
    old_umask = os.umask(0)  # even a permissive umask must not make the private key readable by others
    try:
        key, pub = generate_keypair(tmp_path, name="bench")
    finally:
        os.umask(old_umask)
    assert (key.name, pub.name) == ("bench.key", "bench.pub")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = key.read_bytes(), pub.read_bytes()
    with pytest.raises(ConfigError, match="exists; refusing to overwrite"):
        generate_keypair(tmp_path, name="bench")
    pub.unlink()  # half a pair is still refused: the private key is there
    with pytest.raises(ConfigError, match="bench.key: exists"):
        generate_keypair(tmp_path, name="bench")
    assert key.read_bytes() == before[0]
    key, pub = generate_keypair(tmp_path, name="bench", force=True)
    assert key.read_bytes() != before[0]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.key", "bench.pub"]  # no temporary left


def test_keys_generate_cli_prints_paths_fingerprint_and_lab_snippet(tmp_path, capsys):
    assert rig_main(["keys", "generate", "--out", str(tmp_path / "k"), "--name", "lab"]) == 0
    out = capsys.readouterr().out
    key, pub = (tmp_path / "k" / "lab.key").resolve(), (tmp_path / "k" / "lab.pub").resolve()
    assert str(key) in out and str(pub) in out
    assert key_fingerprint(load_public_key(pub)) in out
    assert f"  public_key: {pub}" in out and f"  private_key: {key}" in out and "signing:" in out
    assert rig_main(["keys", "generate", "--out", str(tmp_path / "k"), "--name", "lab"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err and "--force" in err


# ------------------------------------------------------------------ verify

def test_signed_run_verifies(run, lab, capsys):
    assert SIGNATURE_NAME not in run_files(run)  # written after the manifest, so not listed in it
    assert verify_manifest(run) == []
    code, out, _ = verify(run, lab, capsys)
    assert code == 0
    assert out[-1].startswith(f"{run}: ") and "files verified, signature valid (key sha256:" in out[-1]


def test_edited_and_resealed_run_is_refused(run, lab, capsys):
    with open(run / "record.jsonl", "a", encoding="utf-8") as f:
        f.write('{"event": "note", "text": "added later"}\n')
    write_manifest(run)  # re-sealed: the manifest alone can no longer tell
    assert verify_manifest(run) == []
    code, out, _ = verify(run, lab, capsys)
    assert code == 1
    assert out == [f"{SIGNATURE_NAME}: signature does not match {MANIFEST_NAME}: the manifest was re-written "
                   "after signing: edited and re-sealed?"]


def test_edit_without_resealing_is_still_named_by_the_manifest(run, lab, capsys):
    (run / "series" / sorted(os.listdir(run / "series"))[0]).write_text("t_s,force_n\n0,0\n")
    code, out, _ = verify(run, lab, capsys)
    assert code == 1 and len(out) == 1 and out[0].startswith("edited: series/")


def test_signature_made_with_another_key_is_refused(run, lab, tmp_path, capsys):
    other_key, _ = generate_keypair(tmp_path / "other")
    sign_manifest(run, other_key)
    code, out, _ = verify(run, lab, capsys)
    assert code == 1
    assert len(out) == 1 and out[0].startswith(f"{SIGNATURE_NAME}: made with another key (sha256:")


def test_missing_signature_is_refused_when_a_public_key_is_configured(run, lab, capsys):
    (run / SIGNATURE_NAME).unlink()
    code, out, _ = verify(run, lab, capsys)
    assert code == 1
    assert len(out) == 1 and out[0].startswith(f"{SIGNATURE_NAME}: missing: the run is not signed")


@pytest.mark.parametrize("edit, expected", [
    (lambda doc: "{not json", "garbled (not JSON)"),
    (lambda doc: json.dumps({k: v for k, v in doc.items() if k != "signature"}), "garbled (needs algorithm"),
    (lambda doc: json.dumps({**doc, "algorithm": "rsa"}), "algorithm 'rsa', expected 'ed25519'"),
    (lambda doc: json.dumps({**doc, "signature": "!!"}), "garbled (signature is not base64)"),
    (lambda doc: json.dumps({**doc, "signature": "AAAA"}), "an Ed25519 signature has 64 bytes, this one 3"),
    (lambda doc: json.dumps({**doc, "manifest_sha256": "0" * 64}), "the signature file was edited"),
], ids=["not-json", "no-signature", "algorithm", "not-base64", "short", "digest-field"])
def test_garbled_signature_file_is_refused(run, lab, capsys, edit, expected):
    path = run / SIGNATURE_NAME
    path.write_text(edit(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")
    code, out, _ = verify(run, lab, capsys)
    assert code == 1
    assert len(out) == 1 and out[0].startswith(f"{SIGNATURE_NAME}: ") and expected in out[0]


def test_without_a_public_key_the_signature_is_noted_not_checked(run, keys, tmp_path, capsys):
    for lab in (write_lab(tmp_path / "empty.yaml"), write_lab(tmp_path / "sealer.yaml", private=keys[0])):
        code, out, _ = verify(run, lab, capsys)
        assert code == 0
        assert out[0] == "note: signature present, not checked: no public key (lab config signing.public_key)"
        assert out[1].endswith("files verified")
    (run / SIGNATURE_NAME).unlink()  # unsigned and nothing to check it with: as before signatures
    code, out, _ = verify(run, tmp_path / "empty.yaml", capsys)
    assert code == 0 and len(out) == 1 and out[0].endswith("files verified")


# ------------------------------------------------------------------ report

def test_report_cli_signs_with_the_lab_private_key(keys, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(render, "render_report", functools.partial(render.render_report, pdf=False))
    run = build_run(tmp_path / "run")
    lab = write_lab(tmp_path / "lab.yaml", public=keys[1], private=keys[0])
    assert rig_main(["report", str(run), "--lab", str(lab), "--max-plots", "0"]) == 0
    assert [Path(p).name for p in capsys.readouterr().out.split()] == ["report.html", MANIFEST_NAME, SIGNATURE_NAME]
    assert check_signature(run, keys[1]) == []


def test_rerendering_without_a_key_removes_the_stale_signature(run, keys):
    written = render.render_report(run, max_plots=0, pdf=False)
    assert [p.name for p in written] == ["report.html", MANIFEST_NAME]
    assert not (run / SIGNATURE_NAME).exists()
    assert verify_manifest(run) == []
    render.render_report(run, max_plots=0, pdf=False, signing_key=keys[0])  # and it can be signed again
    assert check_signature(run, keys[1]) == []


# ------------------------------------------------------------------ bad key files

@pytest.fixture
def bad_keys(tmp_path, keys) -> dict[str, Path]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    files = {
        "missing": tmp_path / "nope.pub",
        "not-pem": tmp_path / "text.pub",
        "ec-public": tmp_path / "ec.pub",
        "ec-private": tmp_path / "ec.key",
        "ed-private": keys[0],
        "ed-public": keys[1],
    }
    files["not-pem"].write_text("this is not a key\n")
    files["ec-public"].write_bytes(ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    files["ec-private"].write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("rig: ")
    return captured.err


@pytest.mark.parametrize("which, expected", [
    ("missing", "no such public key file"),
    ("not-pem", "not a PEM key file"),
    ("ec-public", "key, not Ed25519"),
    ("ed-private", "a private key; lab config signing.public_key must name the public key"),
])
def test_bad_public_key_is_one_line_exit_2(run, bad_keys, tmp_path, capsys, which, expected):
    lab = write_lab(tmp_path / "lab.yaml", public=bad_keys[which])
    assert rig_main(["verify", str(run), "--lab", str(lab)]) == 2
    err = one_line_error(capsys)
    assert str(bad_keys[which]) in err and expected in err


@pytest.mark.parametrize("which, expected", [
    ("missing", "no such private key file"),
    ("not-pem", "not a PEM key file"),
    ("ec-private", "key, not Ed25519"),
    ("ed-public", "a public key; signing needs the private key"),
])
def test_bad_private_key_is_one_line_exit_2_and_the_run_is_untouched(run, bad_keys, tmp_path, capsys, which, expected):
    before = {p: (run / p).read_bytes() for p in [*run_files(run), MANIFEST_NAME, SIGNATURE_NAME]}
    lab = write_lab(tmp_path / "lab.yaml", private=bad_keys[which])
    assert rig_main(["report", str(run), "--lab", str(lab), "--max-plots", "0"]) == 2
    err = one_line_error(capsys)
    assert str(bad_keys[which]) in err and expected in err
    assert {p: (run / p).read_bytes() for p in before} == before  # refused before anything was re-written
