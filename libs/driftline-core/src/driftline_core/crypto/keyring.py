"""Per-tenant data keys: generated on first use, versioned, rotated, re-wrapped, destroyed.

Only wrapped keys are stored, each with the id of the KEK that wrapped it. A destroyed tenant
keeps its key rows (version, dates) but not their wrapped bytes, so nothing encrypted under
them can be decrypted again.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import asyncpg

from ..db.pool import HasPool
from ..errors import DriftlineError
from .kek import KekRing, KeyEncryptionKey

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
    async def wrapped_not_under(self, kek_id: str, limit: int) -> list[StoredKey]: ...
    async def replace_wrapping(self, key: StoredKey, old_kek_id: str) -> bool: ...
    async def versions(self, tenant_id: str) -> list[dict[str, object]]: ...


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

    async def wrapped_not_under(self, kek_id: str, limit: int) -> list[StoredKey]:
        return [k for k in self.keys.values() if k.wrapped and k.kek_id != kek_id][:limit]

    async def replace_wrapping(self, key: StoredKey, old_kek_id: str) -> bool:
        cur = self.keys.get((key.tenant_id, key.version))
        if cur is None or cur.wrapped is None or cur.kek_id != old_kek_id:
            return False
        self.keys[(key.tenant_id, key.version)] = key
        return True

    async def versions(self, tenant_id: str) -> list[dict[str, object]]:
        return [
            {
                "version": k.version,
                "kek_id": k.kek_id,
                "created_at": k.created_at,
                "destroyed": k.wrapped is None,
            }
            for (t, _), k in sorted(self.keys.items())
            if t == tenant_id
        ]


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

    async def wrapped_not_under(self, kek_id: str, limit: int) -> list[StoredKey]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM keyring.data_keys WHERE wrapped IS NOT NULL AND kek_id <> $1 "
            "ORDER BY tenant_id, version LIMIT $2",
            kek_id,
            limit,
        )
        return [k for k in map(self._row, rows) if k is not None]

    async def replace_wrapping(self, key: StoredKey, old_kek_id: str) -> bool:
        """Compare-and-set: only if the key is still wrapped under `old_kek_id` (another
        process may have re-wrapped or destroyed it meanwhile)."""
        result = await self._db.pool.execute(
            "UPDATE keyring.data_keys SET wrapped = $3, kek_id = $4, rewrapped_at = now() "
            "WHERE tenant_id = $1 AND version = $2 AND kek_id = $5 AND wrapped IS NOT NULL",
            key.tenant_id,
            key.version,
            key.wrapped,
            key.kek_id,
            old_kek_id,
        )
        return str(result).endswith(" 1")

    async def versions(self, tenant_id: str) -> list[dict[str, object]]:
        rows = await self._db.pool.fetch(
            "SELECT version, kek_id, created_at, rewrapped_at, destroyed_at "
            "FROM keyring.data_keys WHERE tenant_id = $1 ORDER BY version",
            tenant_id,
        )
        return [{**dict(r), "destroyed": r["destroyed_at"] is not None} for r in rows]


class DataKeyring:
    """Unwrapped data keys cached in memory for `cache_ttl_s` (a destroyed key stops
    working in every process within that time)."""

    def __init__(
        self, store: KeyStore, kek: KekRing | KeyEncryptionKey, cache_ttl_s: float = 30.0
    ) -> None:
        self._store = store
        self._keks = kek if isinstance(kek, KekRing) else KekRing(kek)
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
        key = await self._call(
            self._keks.get(stored.kek_id), "unwrap", stored.wrapped, self._aad(tenant_id, version)
        )
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

    async def versions(self, tenant_id: str) -> list[dict[str, object]]:
        """The tenant's key versions with dates and KEK ids (never key material)."""
        return await self._store.versions(tenant_id)

    async def rewrap(self, batch: int = 500) -> int:
        """Re-wrap every data key not under the current KEK (after a KEK rotation).
        The data keys themselves do not change, so no data is re-encrypted. Returns how many."""
        current, n = self._keks.current, 0
        while True:
            todo = await self._store.wrapped_not_under(current.key_id, batch)
            if not todo:
                return n
            for k in todo:
                aad = self._aad(k.tenant_id, k.version)
                assert k.wrapped is not None
                key = await self._call(self._keks.get(k.kek_id), "unwrap", k.wrapped, aad)
                wrapped = await self._call(current, "wrap", key, aad)
                n += await self._store.replace_wrapping(
                    StoredKey(k.tenant_id, k.version, wrapped, current.key_id, k.created_at),
                    k.kek_id,
                )

    async def destroy(self, tenant_id: str) -> int:
        """Crypto-shred: destroy every data key of the tenant. Returns how many."""
        n = await self._store.destroy(tenant_id)
        self.forget(tenant_id)
        return n

    def forget(self, tenant_id: str) -> None:
        """Drop this process's cached keys of a tenant (on news of its erasure or rotation),
        so the next use reads the store instead of waiting for the cache to expire."""
        self._cache = {k: v for k, v in self._cache.items() if k[0] != tenant_id}
        self._current.pop(tenant_id, None)

    async def _create(self, tenant_id: str, version: int) -> StoredKey:
        key = os.urandom(32)
        kek = self._keks.current
        wrapped = await self._call(kek, "wrap", key, self._aad(tenant_id, version))
        return await self._store.add(
            StoredKey(tenant_id, version, wrapped, kek.key_id, datetime.now(UTC))
        )

    @staticmethod
    async def _call(
        kek: KeyEncryptionKey, op: Literal["wrap", "unwrap"], data: bytes, aad: bytes
    ) -> bytes:
        """A cloud KMS call leaves the event loop; a local one does not need to."""
        fn = kek.wrap if op == "wrap" else kek.unwrap
        if kek.remote:
            return await asyncio.to_thread(fn, data, aad)
        return fn(data, aad)
