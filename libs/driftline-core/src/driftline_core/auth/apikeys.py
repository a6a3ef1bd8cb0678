"""Tenant-scoped API keys: `dlk_<prefix>_<secret>`. Only SHA-256 of the secret is stored
(the secret has 192 bits of entropy, so a slow hash adds nothing); lookups go by prefix and
compare in constant time.

Revocation (`revoke`, `tenant_erased`, `invalidate`) takes effect at once in the process
that makes it: the cache is dropped, and a lookup that was already in flight when it happened
may answer its own request but never stores its (possibly stale) answer. With `revocations`
set (ingestion), the revocation is then published on `driftline.revocations.v1`, and every
other process drops its cache when it arrives (`revocations.RevocationListener`, decision 37;
measured across processes in tests/e2e/test_revocation.py). Without the push (Kafka away), a
process caches a verified key for at most `cache_ttl_s` (default 1 s).

The ingestion service owns the tables (schema `ingestion`) and issues keys; other services
pass `schema="ingestion"` and only verify."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..db.pool import HasPool
from ..events.audit import Actor
from .permissions import SCOPES, scope_permissions

if TYPE_CHECKING:
    from .revocations import RevocationPublisher

__all__ = ["SCOPES", "ApiKeys", "Principal"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key or an operator (user) with a session. `key_id` is the
    key's or the user's id; `scopes` the permissions granted (see permissions.py)."""

    tenant_id: str
    key_id: str
    name: str
    scopes: frozenset[str]
    kind: Literal["api_key", "user"] = "api_key"
    role: str | None = None
    session_id: str | None = None

    @property
    def actor_id(self) -> str:
        return f"user:{self.name}" if self.kind == "user" else f"key:{self.name or self.key_id}"

    def actor(self, ip: str | None = None) -> Actor:
        return Actor(type="user" if self.kind == "user" else "api_key", id=self.actor_id, ip=ip)

    def can(self, permission: str) -> bool:
        return permission in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, db: HasPool, cache_ttl_s: float = 1.0, schema: str | None = None) -> None:
        self._db = db
        self._ttl = cache_ttl_s
        self._schema = schema
        self._q = f'"{schema}".' if schema else ""
        # set where keys are revoked (ingestion): revocations are pushed to other processes
        self.revocations: RevocationPublisher | None = None
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        # bumped by every invalidation: a lookup stores its answer only if none happened
        # while it ran (it may have read the row before the revocation committed)
        self._generation = 0

    @property
    def db(self) -> HasPool:
        return self._db

    @property
    def schema(self) -> str | None:
        """The schema of the `api_keys` and `tenants` tables (None: the search path's)."""
        return self._schema

    @property
    def cache_ttl_s(self) -> float:
        """How long another process may still accept a key after its revocation."""
        return self._ttl

    def invalidate(self) -> None:
        """Forget every cached verification (after a revocation or an erasure commits)."""
        self._generation += 1
        self._cache.clear()

    async def create(
        self, tenant_id: str, name: str, scopes: set[str], created_by: str
    ) -> tuple[str, str]:
        """Returns (key id, the key). The key is shown once and never stored."""
        unknown = set(scopes) - SCOPES
        if unknown or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
        key_id, prefix, secret = uuid.uuid4(), secrets.token_hex(6), secrets.token_urlsafe(24)
        await self._db.pool.execute(
            "INSERT INTO api_keys (id, tenant_id, prefix, hash, scopes, created_by, name) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            key_id,
            tenant_id,
            prefix,
            _hash(secret),
            sorted(scopes),
            created_by,
            name,
        )
        return str(key_id), f"dlk_{prefix}_{secret}"

    async def verify(self, token: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        generation = self._generation
        principal = await self._lookup(token)
        if generation != self._generation:
            return principal  # revoked meanwhile: answer this request, cache nothing
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now, principal)
        return principal

    async def _lookup(self, token: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "dlk":
            return None
        row = await self._db.pool.fetchrow(
            f"SELECT k.id, k.tenant_id, k.hash, k.scopes, k.name FROM {self._q}api_keys k "
            f"JOIN {self._q}tenants t ON t.id = k.tenant_id "
            "WHERE k.prefix = $1 AND k.revoked_at IS NULL AND t.erased_at IS NULL",
            parts[1],
        )
        if row is None or not hmac.compare_digest(row["hash"], _hash(parts[2])):
            return None
        return Principal(
            row["tenant_id"], str(row["id"]), row["name"], scope_permissions(row["scopes"])
        )

    async def revoke(self, tenant_id: str, key_id: str, actor: str | None = None) -> bool:
        try:
            kid = uuid.UUID(key_id)
        except ValueError:
            return False
        result = await self._db.pool.execute(
            "UPDATE api_keys SET revoked_at = now() "
            "WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
            kid,
            tenant_id,
        )
        self.invalidate()
        revoked = str(result).endswith(" 1")
        if revoked and self.revocations is not None:
            await self.revocations.publish("api_key", tenant_id, str(kid), actor)
        return revoked

    async def tenant_erased(self, tenant_id: str, actor: str | None = None) -> None:
        """After an erasure committed: this process's cache now, other processes' on the
        revocation record."""
        self.invalidate()
        if self.revocations is not None:
            await self.revocations.publish("tenant", tenant_id, tenant_id, actor)

    async def list(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT id, name, prefix, scopes, created_by, created_at, revoked_at FROM api_keys "
            "WHERE tenant_id = $1 ORDER BY created_at",
            tenant_id,
        )
        return [{**dict(r), "id": str(r["id"])} for r in rows]

    async def create_tenant(self, tenant_id: str, name: str) -> bool:
        result = await self._db.pool.execute(
            "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            tenant_id,
            name,
        )
        return str(result).endswith(" 1")
