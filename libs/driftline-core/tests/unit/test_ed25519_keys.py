"""Ed25519 keys from settings: a PEM file, the dev key, and a clear error for another kind."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_core.crypto.ed25519 import private_key, public_key
from driftline_core.errors import ConfigurationError

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def test_pem_files_and_the_dev_key(tmp_path) -> None:
    key = Ed25519PrivateKey.generate()
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    loaded = private_key(str(priv), b"d" * 32, "X")
    assert loaded.public_key().public_bytes(*RAW) == key.public_key().public_bytes(*RAW)
    assert public_key(str(pub), b"d" * 32, "X").public_bytes(*RAW) == key.public_key().public_bytes(
        *RAW
    )
    dev = Ed25519PrivateKey.from_private_bytes(b"d" * 32).public_key().public_bytes(*RAW)
    assert private_key(None, b"d" * 32, "X").public_key().public_bytes(*RAW) == dev
    assert public_key(None, b"d" * 32, "X").public_bytes(*RAW) == dev


def test_another_kind_of_key_is_refused_by_name(tmp_path) -> None:
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigurationError, match="DRIFTLINE_X must be an Ed25519 private key"):
        private_key(str(ec), b"d" * 32, "DRIFTLINE_X")
