"""Field encryption under a tenant's current data key: AES-256-GCM with associated data
`tenant|purpose|record id`, so a ciphertext moved to another record, purpose or tenant
does not decrypt. Token: `dl1.<key version>.<base64url(nonce || ciphertext)>`."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DriftlineError
from .keyring import DataKeyring

__all__ = ["DecryptionError", "FieldCipher"]


class DecryptionError(DriftlineError):
    code = "decryption_failed"


def _aad(tenant_id: str, purpose: str, record_id: str) -> bytes:
    return f"{tenant_id}|{purpose}|{record_id}".encode()


class FieldCipher:
    def __init__(self, keyring: DataKeyring) -> None:
        self._keyring = keyring

    async def encrypt(self, tenant_id: str, purpose: str, record_id: str, plaintext: bytes) -> str:
        version, key = await self._keyring.current(tenant_id)
        nonce = os.urandom(12)
        ct = AESGCM(key).encrypt(nonce, plaintext, _aad(tenant_id, purpose, record_id))
        return f"dl1.{version}.{base64.urlsafe_b64encode(nonce + ct).decode().rstrip('=')}"

    async def decrypt(self, tenant_id: str, purpose: str, record_id: str, token: str) -> bytes:
        try:
            tag, version_s, body = token.split(".", 2)
            if tag != "dl1":
                raise ValueError(tag)
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            version = int(version_s)
        except ValueError as e:
            raise DecryptionError(f"not a Driftline ciphertext: {e}") from e
        key = await self._keyring.key(tenant_id, version)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(tenant_id, purpose, record_id))
        except InvalidTag as e:
            raise DecryptionError(
                "ciphertext does not belong to this tenant, purpose and record"
            ) from e

    @staticmethod
    def key_version(token: str) -> int:
        return int(token.split(".", 2)[1])
