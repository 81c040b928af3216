"""Ed25519 signatures of run manifests: tamper evidence that survives re-sealing.

`MANIFEST.sha256` alone shows accidental change only: whoever can write a run
directory can also re-write its manifest. A signature over the manifest's exact bytes
can only be made with the lab's private key, so a run that was edited and re-sealed
no longer verifies against the lab's public key.

The private key lives only on the machines that seal runs (`rig report`); every machine
that checks runs (`rig verify`) has the public key, named in the lab config
(reports/lab_config.py). See docs/keys.md.

`RUN/MANIFEST.sha256.sig` is a small JSON file:

    {"algorithm": "ed25519",
     "key_fingerprint": "sha256:<hex of SHA-256 of the raw 32-byte public key>",
     "manifest_sha256": "<hex of SHA-256 of MANIFEST.sha256>",
     "signature": "<base64 of the 64-byte signature over the bytes of MANIFEST.sha256>",
     "signed_utc": "2026-05-04T09:12:33Z"}

Only `signature` is evidence. The other fields are not signed; they let `rig verify`
say *why* a check failed (another key, a re-written manifest) instead of only "invalid".
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from drivers.errors import ConfigError, RigError
from reports.rundir import MANIFEST_NAME, SIGNATURE_NAME, write_atomic

__all__ = ["SIGNATURE_NAME", "check_signature", "generate_keypair", "key_fingerprint", "load_private_key",
           "load_public_key", "short_fingerprint", "sign_manifest"]

ALGORITHM = "ed25519"
_FIELDS = ("algorithm", "key_fingerprint", "manifest_sha256", "signature")
_GENERATE = "rig keys generate"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ keys

def key_fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Names a key pair in one short string that both halves agree on, so a signature
    can say which key made it without carrying the key itself."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def short_fingerprint(fingerprint: str) -> str:
    """Enough of a fingerprint to tell the lab's keys apart on one line."""
    return fingerprint[: len("sha256:") + 16] + "…"


def _read_pem(path: Path, role: str, setting: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {role} key file; fix lab config {setting} or create the pair "
                          f"with `{_GENERATE}`")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {role} key ({exc.strerror}); check its owner and mode") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{path}: not a PEM key file; point lab config {setting} at the .{'key' if role == 'private' else 'pub'} "
                          f"file `{_GENERATE}` wrote")
    return data


def _not_ed25519(path: Path, key, setting: str) -> ConfigError:
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "") or "other"
    return ConfigError(f"{path}: {kind} key, not Ed25519; lab config {setting} needs a key from `{_GENERATE}`")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key, or one line saying what is wrong with the file (never a traceback:
    the person at the bench needs the fix, not the parser's internals)."""
    setting = "signing.private_key"
    data = _read_pem(path, "private", setting)
    if b"PUBLIC KEY-----" in data:
        raise ConfigError(f"{path}: a public key; signing needs the private key (the .key file beside it) "
                          f"in lab config {setting}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: there is nobody at a bench to type a passphrase
        raise ConfigError(f"{path}: the private key is encrypted; use an unencrypted key protected by file mode "
                          f"0600 (`{_GENERATE}`)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path}: not a readable PEM private key; fix lab config {setting} or create the pair "
                          f"with `{_GENERATE}`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _not_ed25519(path, key, setting)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The checking key. A private key is refused here: machines that only verify must
    not hold it, and accepting it would hide that it was copied there."""
    setting = "signing.public_key"
    data = _read_pem(path, "public", setting)
    if b"PRIVATE KEY-----" in data:
        raise ConfigError(f"{path}: a private key; lab config {setting} must name the public key (.pub) — "
                          "do not copy the private key to machines that only verify")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path}: not a readable PEM public key; fix lab config {setting} or create the pair "
                          f"with `{_GENERATE}`") from None
    if not isinstance(key, Ed25519PublicKey):
        raise _not_ed25519(path, key, setting)
    return key


def _write_new(path: Path, data: bytes, mode: int, replace: bool) -> None:
    """Create `path` with `mode` from its first byte (O_EXCL: a private key is never
    world-readable, not even between open and chmod). With `replace`, a temporary file
    is created that way and renamed over the old one, so a crash leaves the old key."""
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have taken bits away; make it exactly `mode`
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        target.unlink(missing_ok=True)
        raise


def generate_keypair(out_dir: Path, name: str = "lab-signing", force: bool = False) -> tuple[Path, Path]:
    """Write NAME.key (private, 0600) and NAME.pub into OUT_DIR; returns (key, pub).

    Overwriting needs `force`: runs signed with the old key verify only with the old
    public key, so losing it silently would make a lab's archive unverifiable."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"--name {name!r}: a plain file name is needed (e.g. lab-signing)")
    out_dir = Path(out_dir)
    key_path, pub_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    existing = [p for p in (key_path, pub_path) if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]}: exists; refusing to overwrite a key pair (runs signed with it would "
                          "no longer verify) — choose another --name or --out, or pass --force")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_new(key_path, private_pem, 0o600, replace=force)
        _write_new(pub_path, public_pem, 0o644, replace=force)
    except FileExistsError as exc:  # appeared since the check above
        raise ConfigError(f"{exc.filename}: exists; refusing to overwrite (pass --force)") from None
    except OSError as exc:
        raise ConfigError(f"{exc.filename or out_dir}: cannot write the key pair ({exc.strerror}); "
                          "choose a writable --out") from None
    return key_path, pub_path


# ------------------------------------------------------------------ signatures

def _manifest_bytes(run_dir: Path) -> bytes | None:
    try:
        return (Path(run_dir) / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return None


def sign_manifest(run_dir: Path, private_key_path: Path) -> Path:
    """Sign RUN/MANIFEST.sha256 as it is on disk now; returns RUN/MANIFEST.sha256.sig.

    Called right after the manifest is written, so what is signed is exactly what
    `rig verify` will read back."""
    run_dir = Path(run_dir)
    key = load_private_key(private_key_path)
    manifest = _manifest_bytes(run_dir)
    if manifest is None:
        raise RigError(f"{run_dir}: no {MANIFEST_NAME} to sign (`rig report` writes it)")
    document = {
        "algorithm": ALGORITHM,
        "key_fingerprint": key_fingerprint(key),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
        "signed_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return write_atomic(run_dir / SIGNATURE_NAME, (json.dumps(document, indent=1) + "\n").encode("utf-8"))


def _read_signature(path: Path) -> tuple[dict | None, str | None]:
    """The signature document, or why it cannot be used (one line)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"{SIGNATURE_NAME}: unreadable ({exc.strerror})"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, f"{SIGNATURE_NAME}: garbled (not JSON); re-sign the run with `rig report`"
    if not isinstance(doc, dict) or any(not isinstance(doc.get(k), str) for k in _FIELDS):
        return None, f"{SIGNATURE_NAME}: garbled (needs {', '.join(_FIELDS)}); re-sign the run with `rig report`"
    if doc["algorithm"] != ALGORITHM:
        return None, f"{SIGNATURE_NAME}: algorithm {doc['algorithm']!r}, expected {ALGORITHM!r}"
    fingerprint = doc["key_fingerprint"]
    if not (fingerprint.startswith("sha256:") and _HEX64.match(fingerprint[7:])) or not _HEX64.match(doc["manifest_sha256"]):
        return None, f"{SIGNATURE_NAME}: garbled (key_fingerprint or manifest_sha256 is not a SHA-256)"
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError):
        return None, f"{SIGNATURE_NAME}: garbled (signature is not base64)"
    if len(signature) != 64:
        return None, f"{SIGNATURE_NAME}: garbled (an Ed25519 signature has 64 bytes, this one {len(signature)})"
    return {**doc, "signature": signature}, None


def check_signature(run_dir: Path, public_key_path: Path) -> list[str]:
    """Why the run's signature does not prove its manifest came from the lab key, one
    line each ([] = valid). A bad key file is the checker's problem, not the run's:
    it raises ConfigError instead."""
    run_dir = Path(run_dir)
    key = load_public_key(public_key_path)
    path = run_dir / SIGNATURE_NAME
    if not path.is_file():
        return [f"{SIGNATURE_NAME}: missing: the run is not signed, but lab config signing.public_key "
                f"({public_key_path}) requires it"]
    doc, problem = _read_signature(path)
    if problem:
        return [problem]
    expected = key_fingerprint(key)
    if doc["key_fingerprint"] != expected:
        return [f"{SIGNATURE_NAME}: made with another key ({short_fingerprint(doc['key_fingerprint'])}, this lab's "
                f"key is {short_fingerprint(expected)}, {public_key_path}); verify with that key's lab config (--lab)"]
    manifest = _manifest_bytes(run_dir)
    if manifest is None:
        return [f"{MANIFEST_NAME}: missing, nothing the signature could be checked against"]
    try:
        key.verify(doc["signature"], manifest)
    except InvalidSignature:
        return [f"{SIGNATURE_NAME}: signature does not match {MANIFEST_NAME}: the manifest was re-written after "
                "signing: edited and re-sealed?"]
    if doc["manifest_sha256"] != hashlib.sha256(manifest).hexdigest():
        return [f"{SIGNATURE_NAME}: manifest_sha256 does not match {MANIFEST_NAME} although the signature does: "
                "the signature file was edited"]
    return []
