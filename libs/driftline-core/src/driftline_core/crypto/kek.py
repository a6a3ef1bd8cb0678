"""Key-encryption keys. Locally: 32 random bytes from a file or the environment, or a
passphrase stretched with scrypt (the salt stored beside the wrapped keys). In the clouds:
a KMS (AWS KMS, GCP KMS, Azure Key Vault) implements the same two calls."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, SecretStr

from ..errors import ConfigurationError

__all__ = ["KekSettings", "KeyEncryptionKey", "LocalKek", "kek_from_settings"]

DEV_KEK = base64.b64encode(b"driftline-dev-key-not-for-prod!!").decode()


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys; `key_id` names the KEK version that wrapped a key."""

    @property
    def key_id(self) -> str: ...
    def wrap(self, data_key: bytes, aad: bytes) -> bytes: ...
    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...


class LocalKek:
    """AES-256-GCM key wrapping with a local 256-bit key."""

    def __init__(self, key: bytes, key_id: str = "local-1") -> None:
        if len(key) != 32:
            raise ConfigurationError("a local KEK must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self._key_id = key_id

    @property
    def key_id(self) -> str:
        return self._key_id

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes, key_id: str = "local-1") -> LocalKek:
        key = hashlib.scrypt(
            passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=2**26, dklen=32
        )
        return cls(key, key_id)

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], aad)


class KekSettings(BaseModel):
    """`DRIFTLINE_KEK__*`: where the key-encryption key comes from."""

    provider: str = "local"  # local | aws-kms | gcp-kms | azure-keyvault
    key_id: str = "local-1"
    key_b64: SecretStr = SecretStr(DEV_KEK)  # 32 bytes, base64
    key_file: str | None = None  # a file holding the base64 key (e.g. a mounted secret)
    passphrase: SecretStr | None = None  # alternatively, stretched with scrypt
    salt_b64: str | None = None


def kek_from_settings(s: KekSettings) -> KeyEncryptionKey:
    if s.provider != "local":
        raise ConfigurationError(
            f"KEK provider {s.provider!r} needs its cloud adapter (see docs/security.md)"
        )
    if s.passphrase is not None:
        if not s.salt_b64:
            raise ConfigurationError("a KEK passphrase needs DRIFTLINE_KEK__SALT_B64")
        return LocalKek.from_passphrase(
            s.passphrase.get_secret_value(), base64.b64decode(s.salt_b64), s.key_id
        )
    raw = Path(s.key_file).read_text().strip() if s.key_file else s.key_b64.get_secret_value()
    return LocalKek(base64.b64decode(raw), s.key_id)
