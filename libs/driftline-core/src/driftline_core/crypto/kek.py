"""Key-encryption keys (KEKs): they wrap the tenants' data keys and never leave their home.

Locally: 32 random bytes from a file or the environment, or a passphrase stretched with
scrypt and a stored salt. In the clouds: a KMS key (AWS KMS, GCP Cloud KMS, Azure Key
Vault) behind the same two calls, `wrap` and `unwrap`. Every wrap binds associated data
(tenant and data-key version), so a wrapped key cannot be moved to another tenant.

A `KekRing` holds the current KEK and the retired ones: data keys are wrapped under the
current one and unwrapped under whichever wrapped them (the store keeps its `key_id`), until
`DataKeyring.rewrap` moves them all to the current KEK.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError
from ..settings import DEV_KEK, KekSettings

__all__ = [
    "DEV_KEK",
    "AwsKmsKek",
    "AzureKeyVaultKek",
    "GcpKmsKek",
    "KekRing",
    "KekSettings",
    "KeyEncryptionKey",
    "LocalKek",
    "kek_from_settings",
]


class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys; `key_id` names this KEK (stored beside each wrapped key).
    `remote` KEKs make network calls, so callers run them off the event loop."""

    @property
    def key_id(self) -> str: ...
    @property
    def remote(self) -> bool: ...
    def wrap(self, data_key: bytes, aad: bytes) -> bytes: ...
    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...


class LocalKek:
    """AES-256-GCM key wrapping with a local 256-bit key."""

    remote = False

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
        if len(salt) < 16:
            raise ConfigurationError("a KEK passphrase salt must be at least 16 random bytes")
        key = hashlib.scrypt(
            passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=2**26, dklen=32
        )
        return cls(key, key_id)

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:12], wrapped[12:], aad)


class AwsKmsKek:
    """AWS KMS symmetric key: `Encrypt`/`Decrypt` with the associated data as the
    encryption context (logged by CloudTrail, so it names tenant and version, no secrets).
    `client` is a boto3 KMS client (`boto3.client("kms", region_name=...)`)."""

    remote = True

    def __init__(self, client: Any, key_arn: str) -> None:
        self._client = client
        self._key = key_arn

    @property
    def key_id(self) -> str:
        return f"aws-kms:{self._key}"

    @staticmethod
    def _context(aad: bytes) -> dict[str, str]:
        return {"driftline": aad.decode()}

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        out = self._client.encrypt(
            KeyId=self._key, Plaintext=data_key, EncryptionContext=self._context(aad)
        )
        return bytes(out["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        out = self._client.decrypt(
            KeyId=self._key, CiphertextBlob=wrapped, EncryptionContext=self._context(aad)
        )
        return bytes(out["Plaintext"])


class GcpKmsKek:
    """GCP Cloud KMS symmetric key: `encrypt`/`decrypt` with additional authenticated data.
    `client` is a `google.cloud.kms.KeyManagementServiceClient`; `key_name` the key's
    resource name (projects/.../locations/.../keyRings/.../cryptoKeys/...)."""

    remote = True

    def __init__(self, client: Any, key_name: str) -> None:
        self._client = client
        self._key = key_name

    @property
    def key_id(self) -> str:
        return f"gcp-kms:{self._key}"

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        out = self._client.encrypt(
            request={"name": self._key, "plaintext": data_key, "additional_authenticated_data": aad}
        )
        return bytes(out.ciphertext)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        out = self._client.decrypt(
            request={"name": self._key, "ciphertext": wrapped, "additional_authenticated_data": aad}
        )
        return bytes(out.plaintext)


class AzureKeyVaultKek:
    """Azure Key Vault RSA key: `wrapKey`/`unwrapKey` with RSA-OAEP-256. Key Vault's wrap
    takes no associated data, so the data key is wrapped together with SHA-256 of the
    associated data and checked on unwrap. `client` is an
    `azure.keyvault.keys.crypto.CryptographyClient` for the key."""

    remote = True
    ALGORITHM = "RSA-OAEP-256"

    def __init__(self, client: Any, key_url: str) -> None:
        self._client = client
        self._key = key_url

    @property
    def key_id(self) -> str:
        return f"azure-keyvault:{self._key}"

    def wrap(self, data_key: bytes, aad: bytes) -> bytes:
        out = self._client.wrap_key(self.ALGORITHM, data_key + hashlib.sha256(aad).digest())
        return bytes(out.encrypted_key)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        out = bytes(self._client.unwrap_key(self.ALGORITHM, wrapped).key)
        key, digest = out[:-32], out[-32:]
        if digest != hashlib.sha256(aad).digest():
            raise ValueError("the wrapped key belongs to another tenant or version")
        return key


class KekRing:
    """The current KEK (wraps) and retired ones (unwrap only), by key id."""

    def __init__(self, current: KeyEncryptionKey, retired: Mapping[str, KeyEncryptionKey] = {}):
        self.current = current
        self._all = {**retired, current.key_id: current}

    @property
    def key_id(self) -> str:
        return self.current.key_id

    def get(self, key_id: str) -> KeyEncryptionKey:
        kek = self._all.get(key_id)
        if kek is None:
            raise ConfigurationError(
                f"a data key is wrapped under KEK {key_id!r}, which is neither current nor "
                "retired (DRIFTLINE_KEK__RETIRED)"
            )
        return kek


def _local(key_b64: str, key_id: str) -> LocalKek:
    try:
        raw = base64.b64decode(key_b64, validate=True)
    except ValueError as e:
        raise ConfigurationError(f"KEK {key_id!r} is not valid base64") from e
    return LocalKek(raw, key_id)


def _cloud(s: KekSettings) -> KeyEncryptionKey:
    if not s.kms_key:
        raise ConfigurationError(f"KEK provider {s.provider} needs DRIFTLINE_KEK__KMS_KEY")
    try:
        if s.provider == "aws-kms":
            import boto3  # type: ignore[import-not-found,import-untyped,unused-ignore]

            return AwsKmsKek(boto3.client("kms", region_name=s.region), s.kms_key)
        if s.provider == "gcp-kms":
            from google.cloud import kms  # type: ignore[import-not-found,import-untyped,unused-ignore]

            return GcpKmsKek(kms.KeyManagementServiceClient(), s.kms_key)
        from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found,import-untyped,unused-ignore]
        from azure.keyvault.keys.crypto import CryptographyClient  # type: ignore[import-not-found,import-untyped,unused-ignore]

        return AzureKeyVaultKek(CryptographyClient(s.kms_key, DefaultAzureCredential()), s.kms_key)
    except ImportError as e:
        raise ConfigurationError(
            f"KEK provider {s.provider} needs its SDK: pip install 'driftline-core[{s.provider}]'"
        ) from e


def kek_from_settings(s: KekSettings) -> KekRing:
    if s.provider != "local":
        current: KeyEncryptionKey = _cloud(s)
    elif s.passphrase is not None:
        if not s.salt_b64:
            raise ConfigurationError("a KEK passphrase needs DRIFTLINE_KEK__SALT_B64")
        current = LocalKek.from_passphrase(
            s.passphrase.get_secret_value(), base64.b64decode(s.salt_b64), s.key_id
        )
    else:
        raw = Path(s.key_file).read_text().strip() if s.key_file else s.key_b64.get_secret_value()
        current = _local(raw, s.key_id)
    retired = {kid: _local(v.get_secret_value(), kid) for kid, v in s.retired.items()}
    return KekRing(current, retired)
