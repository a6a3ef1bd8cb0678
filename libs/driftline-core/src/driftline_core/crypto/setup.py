"""Build the keyring a service uses: its own small pool on the shared `keyring` schema
(whose migrations it applies at start), the KEK from settings, and a FieldCipher."""

from __future__ import annotations

from dataclasses import dataclass

from ..db.pool import Database
from ..settings import PostgresSettings
from .cipher import FieldCipher
from .kek import KekSettings, kek_from_settings
from .keyring import MIGRATIONS, SCHEMA, DataKeyring, PostgresKeyStore

__all__ = ["Keyring", "build_keyring"]


@dataclass
class Keyring:
    database: Database
    keyring: DataKeyring
    cipher: FieldCipher


def build_keyring(postgres: PostgresSettings, kek: KekSettings, service: str) -> Keyring:
    db = Database(
        postgres.model_copy(update={"min_pool": 1, "max_pool": 3}),
        SCHEMA,
        migrations_dir=MIGRATIONS,
        application=f"driftline-{service}-keyring",
    )
    ring = DataKeyring(PostgresKeyStore(db), kek_from_settings(kek))
    return Keyring(db, ring, FieldCipher(ring))
