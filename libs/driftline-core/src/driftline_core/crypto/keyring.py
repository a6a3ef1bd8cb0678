"""Per-tenant data keys: generated on first use, versioned, rotated, destroyed.

Only wrapped keys are stored. A destroyed tenant keeps its key rows (version, dates) but
not their wrapped bytes, so nothing encrypted under them can be decrypted again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import asyncpg

from ..db.pool import HasPool
from ..errors import DriftlineError
from .kek import KeyEncryptionKey

__all__ = ["DataKeyring", "KeyDestroyedError", "MemoryKeyStore", "PostgresKeyStore", "StoredKey"]

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "keyring"


class KeyDestroyedError(DriftlineError):
    """The tenant's data keys were destroyed (crypto-shredding): the data is gone."""

    code = "key_destroyed"


@dataclass(frozen=True)
class StoredKey:
    tenant_id: str
    version: int
    wrapped: bytes | None  # None once destroyed
    kek_id: str
    created_at: datetime


class KeyStore(Protocol):
    async def latest(self, tenant_id: str) -> StoredKey | None: ...
    async def get(self, tenant_id: str, version: int) -> StoredKey | None: ...
    async def add(self, key: StoredKey) -> StoredKey: ...
    async def destroy(self, tenant_id: str) -> int: ...


class MemoryKeyStore:
    """For unit tests and single-process tools."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, int], StoredKey] = {}

    async def latest(self, tenant_id: str) -> StoredKey | None:
        versions = [k for (t, _), k in self.keys.items() if t == tenant_id]
        return max(versions, key=lambda k: k.version, default=None)

    async def get(self, tenant_id: str, version: int) -> StoredKey | None:
        return self.keys.get((tenant_id, version))

    async def add(self, key: StoredKey) -> StoredKey:
        existing = self.keys.get((key.tenant_id, key.version))
        if existing is not None:
            return existing  # another writer won the race; use its key
        self.keys[(key.tenant_id, key.version)] = key
        return key

    async def destroy(self, tenant_id: str) -> int:
        n = 0
        for k in [k for (t, _), k in self.keys.items() if t == tenant_id and k.wrapped]:
            self.keys[(tenant_id, k.version)] = StoredKey(
                tenant_id, k.version, None, k.kek_id, k.created_at
            )
            n += 1
        return n


class PostgresKeyStore:
    """Wrapped keys in the shared `keyring` schema (the platform's local KMS store)."""

    def __init__(self, db: HasPool) -> None:
        self._db = db

    @staticmethod
    def _row(r: asyncpg.Record | None) -> StoredKey | None:
        if r is None:
            return None
        return StoredKey(r["tenant_id"], r["version"], r["wrapped"], r["kek_id"], r["created_at"])

    async def latest(self, tenant_id: str) -> StoredKey | None:
        return self._row(
            await self._db.pool.fetchrow(
                "SELECT * FROM keyring.data_keys WHERE tenant_id = $1 "
                "ORDER BY version DESC LIMIT 1",
                tenant_id,
            )
        )

    async def get(self, tenant_id: str, version: int) -> StoredKey | None:
        return self._row(
            await self._db.pool.fetchrow(
                "SELECT * FROM keyring.data_keys WHERE tenant_id = $1 AND version = $2",
                tenant_id,
                version,
            )
        )

    async def add(self, key: StoredKey) -> StoredKey:
        await self._db.pool.execute(
            "INSERT INTO keyring.data_keys (tenant_id, version, wrapped, kek_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, version) DO NOTHING",
            key.tenant_id,
            key.version,
            key.wrapped,
            key.kek_id,
            key.created_at,
        )
        stored = await self.get(key.tenant_id, key.version)
        assert stored is not None
        return stored

    async def destroy(self, tenant_id: str) -> int:
        result = await self._db.pool.execute(
            "UPDATE keyring.data_keys SET wrapped = NULL, destroyed_at = now() "
            "WHERE tenant_id = $1 AND wrapped IS NOT NULL",
            tenant_id,
        )
        return int(result.split()[-1])


class DataKeyring:
    """Unwrapped data keys cached in memory for `cache_ttl_s` (a destroyed key stops
    working in every process within that time)."""

    def __init__(self, store: KeyStore, kek: KeyEncryptionKey, cache_ttl_s: float = 30.0) -> None:
        self._store = store
        self._kek = kek
        self._ttl = cache_ttl_s
        self._cache: dict[tuple[str, int], tuple[float, bytes]] = {}
        self._current: dict[str, tuple[float, int]] = {}

    @staticmethod
    def _aad(tenant_id: str, version: int) -> bytes:
        return f"driftline:data-key:{tenant_id}:{version}".encode()

    async def current(self, tenant_id: str) -> tuple[int, bytes]:
        """The version and key new data is encrypted under (created on first use)."""
        now = time.monotonic()
        cached = self._current.get(tenant_id)
        if cached and now - cached[0] < self._ttl:
            return cached[1], await self.key(tenant_id, cached[1])
        latest = await self._store.latest(tenant_id)
        if latest is None:
            latest = await self._create(tenant_id, 1)
        if latest.wrapped is None:
            raise KeyDestroyedError(f"the data keys of tenant {tenant_id} were destroyed")
        self._current[tenant_id] = (now, latest.version)
        return latest.version, await self.key(tenant_id, latest.version)

    async def key(self, tenant_id: str, version: int) -> bytes:
        now = time.monotonic()
        hit = self._cache.get((tenant_id, version))
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        stored = await self._store.get(tenant_id, version)
        if stored is None or stored.wrapped is None:
            self._cache.pop((tenant_id, version), None)
            raise KeyDestroyedError(
                f"data key v{version} of tenant {tenant_id} does not exist or was destroyed"
            )
        key = self._kek.unwrap(stored.wrapped, self._aad(tenant_id, version))
        self._cache[(tenant_id, version)] = (now, key)
        return key

    async def rotate(self, tenant_id: str) -> int:
        latest = await self._store.latest(tenant_id)
        version = (latest.version + 1) if latest else 1
        if latest is not None and latest.wrapped is None:
            raise KeyDestroyedError(f"tenant {tenant_id} was erased; its keys cannot rotate")
        await self._create(tenant_id, version)
        self._current.pop(tenant_id, None)
        return version

    async def destroy(self, tenant_id: str) -> int:
        """Crypto-shred: destroy every data key of the tenant. Returns how many."""
        n = await self._store.destroy(tenant_id)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != tenant_id}
        self._current.pop(tenant_id, None)
        return n

    async def _create(self, tenant_id: str, version: int) -> StoredKey:
        key = os.urandom(32)
        wrapped = self._kek.wrap(key, self._aad(tenant_id, version))
        return await self._store.add(
            StoredKey(tenant_id, version, wrapped, self._kek.key_id, datetime.now(UTC))
        )
