"""Ed25519 keys from settings: a PEM file, or a fixed development key (which each service's
settings refuse outside dev). Used for audit checkpoints and report manifests."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigurationError

__all__ = ["private_key", "public_key"]


def private_key(path: str | None, dev_seed: bytes, setting: str) -> Ed25519PrivateKey:
    """The private key in the PEM file at `path`, or the dev key when no file is set;
    `setting` names the environment variable in the error."""
    if path is None:
        return Ed25519PrivateKey.from_private_bytes(dev_seed)
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{setting} must be an Ed25519 private key (PEM)")
    return key


def public_key(path: str | None, dev_seed: bytes, setting: str) -> Ed25519PublicKey:
    """The public key in the PEM file at `path`, or the dev key's public half."""
    if path is None:
        return Ed25519PrivateKey.from_private_bytes(dev_seed).public_key()
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{setting} must be an Ed25519 public key (PEM)")
    return key
