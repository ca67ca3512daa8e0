"""Ed25519 signing of a bundle's manifest. The private key never enters the bundle."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE = "manifest.sig"


class SigningError(ValueError):
    """A key or signature problem; the message is one sentence."""


def keygen(prefix: Path) -> tuple[Path, Path]:
    """Write ``<prefix>.key`` (PKCS#8 PEM, mode 0600) and ``<prefix>.pub``; refuse to overwrite."""
    private_path, public_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} already exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        public_path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise SigningError(f"cannot write {exc.filename or private_path}: "
                           f"{exc.strerror or exc}") from None
    return private_path, public_path


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path} is not an Ed25519 private key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise SigningError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{path} is not an Ed25519 public key")
    return key


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign_manifest(run_dir: Path, private: Ed25519PrivateKey) -> Path:
    manifest = (Path(run_dir) / "manifest.json").read_bytes()
    path = Path(run_dir) / SIGNATURE
    path.write_text(base64.b64encode(private.sign(manifest)).decode("ascii") + "\n")
    return path


def check_signature(run_dir: Path, public: Ed25519PublicKey) -> str | None:
    """None when ``manifest.sig`` is a valid signature of ``manifest.json``; else the problem."""
    sig_path = Path(run_dir) / SIGNATURE
    if not sig_path.is_file():
        return f"{SIGNATURE}: missing (the bundle is not signed)"
    try:
        signature = base64.b64decode(sig_path.read_text().strip(), validate=True)
        public.verify(signature, (Path(run_dir) / "manifest.json").read_bytes())
    except (ValueError, InvalidSignature):
        return f"{SIGNATURE}: does not verify against this public key"
    return None
