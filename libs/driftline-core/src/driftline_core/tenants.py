"""Which tenants exist, for consumers: a record naming a tenant that was never created is
dead-lettered (`ConsumerLoop(tenants=...)`), instead of starting an audit chain or a data
key for it (issue 18).

Ingestion owns the `tenants` table (schema `ingestion`); other services read it through the
pool they already use for API keys. A tenant, once created, is never deleted (erasure marks
it `erased_at` and its records still have to be audited), so a known tenant is cached for
good. An unknown one is looked up again every time: a tenant created a moment ago is known
at once, and only records that are dead-lettered anyway cost a query."""

from __future__ import annotations

from .db.pool import HasPool

__all__ = ["Tenants"]


class Tenants:
    def __init__(self, db: HasPool, schema: str | None = "ingestion") -> None:
        self._db = db
        self._q = f'"{schema}".' if schema else ""
        self._known: set[str] = set()

    async def exists(self, tenant_id: str) -> bool:
        if tenant_id in self._known:
            return True
        row = await self._db.pool.fetchval(
            f"SELECT 1 FROM {self._q}tenants WHERE id = $1", tenant_id
        )
        if row is None:
            return False
        if len(self._known) > 100_000:
            self._known.clear()
        self._known.add(tenant_id)
        return True

    async def unknown(self, tenant_ids: set[str]) -> set[str]:
        """The ones of `tenant_ids` that do not exist (one query for all not cached)."""
        ask = sorted(t for t in tenant_ids if t not in self._known)
        if not ask:
            return set()
        rows = await self._db.pool.fetch(
            f"SELECT id FROM {self._q}tenants WHERE id = ANY($1::text[])", ask
        )
        found = {r["id"] for r in rows}
        if len(self._known) > 100_000:
            self._known.clear()
        self._known |= found
        return set(ask) - found
