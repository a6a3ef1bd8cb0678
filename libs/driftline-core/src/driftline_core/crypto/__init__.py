"""Envelope encryption: a key-encryption key (KEK) wraps per-tenant, versioned AES-256-GCM
data keys; fields are encrypted with associated data binding tenant, purpose and record id.
Destroying a tenant's data keys makes everything encrypted under them unreadable."""

from .cipher import DecryptionError, FieldCipher
from .kek import KekRing, KeyEncryptionKey, LocalKek, kek_from_settings
from .keyring import DataKeyring, KeyDestroyedError, MemoryKeyStore, PostgresKeyStore

__all__ = [
    "DataKeyring",
    "DecryptionError",
    "FieldCipher",
    "KekRing",
    "KeyDestroyedError",
    "KeyEncryptionKey",
    "LocalKek",
    "MemoryKeyStore",
    "PostgresKeyStore",
    "kek_from_settings",
]
