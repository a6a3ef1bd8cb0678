"""Envelope encryption: a key-encryption key (KEK) wraps per-tenant, versioned AES-256-GCM
data keys; fields are encrypted with associated data binding tenant, purpose and record id.
Destroying a tenant's data keys makes everything encrypted under them unreadable."""

from .cipher import FieldCipher
from .kek import KeyEncryptionKey, LocalKek, kek_from_settings
from .keyring import DataKeyring, KeyDestroyedError, MemoryKeyStore, PostgresKeyStore

__all__ = [
    "DataKeyring",
    "FieldCipher",
    "KeyDestroyedError",
    "KeyEncryptionKey",
    "LocalKek",
    "MemoryKeyStore",
    "PostgresKeyStore",
    "kek_from_settings",
]
