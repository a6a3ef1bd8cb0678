"""Retention, legal holds and archival of a tenant's trail.

The oldest records whose retention has passed form a segment (a prefix of the chain). It
is written to a gzip file in the export format, with the hash before it and the checkpoints
that cover it, so `driftline audit verify` checks it alone. Only then is it deleted, through
`audit.purge`, whose trigger lets a row go only if it is archived, expired and not under a
legal hold. The chain that remains starts from the archived segment's last hash. A dry run
says what would happen and changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from driftline_core.auditchain import public_key_pem
from driftline_core.db.pool import HasPool

from .api import EXPORT_FORMAT
from .trail import Trail

__all__ = ["Lifecycle"]


class Lifecycle:
    def __init__(self, db: HasPool, trail: Trail, archive_dir: Path) -> None:
        self._db = db
        self._trail = trail
        self._dir = archive_dir

    async def set_policy(self, tenant: str, days: int, actor: str) -> dict[str, Any]:
        await self._db.pool.execute(
            "INSERT INTO policies (tenant_id, retention_days, updated_by) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO UPDATE SET retention_days = excluded.retention_days, "
            "updated_by = excluded.updated_by, updated_at = now()",
            tenant,
            days,
            actor,
        )
        return {"tenant_id": tenant, "retention_days": days}

    async def policy(self, tenant: str) -> int | None:
        days: int | None = await self._db.pool.fetchval(
            "SELECT retention_days FROM policies WHERE tenant_id = $1", tenant
        )
        return days

    async def hold(self, tenant: str, reason: str, actor: str) -> dict[str, Any]:
        hid = uuid.uuid4()
        await self._db.pool.execute(
            "INSERT INTO holds (id, tenant_id, reason, created_by) VALUES ($1, $2, $3, $4)",
            hid,
            tenant,
            reason,
            actor,
        )
        return {"id": str(hid), "reason": reason, "created_by": actor}

    async def holds(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM holds WHERE tenant_id = $1 ORDER BY created_at", tenant
        )
        return [{**dict(r), "id": str(r["id"]), "active": r["released_at"] is None} for r in rows]

    async def release(self, tenant: str, hold_id: str, actor: str) -> bool:
        try:
            hid = uuid.UUID(hold_id)
        except ValueError:
            return False
        done = await self._db.pool.execute(
            "UPDATE holds SET released_at = now(), released_by = $3 "
            "WHERE id = $1 AND tenant_id = $2 AND released_at IS NULL",
            hid,
            tenant,
            actor,
        )
        return str(done).endswith(" 1")

    async def archives(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM archives WHERE tenant_id = $1 ORDER BY last_seq", tenant
        )
        return [dict(r) for r in rows]

    async def plan(self, tenant: str) -> dict[str, Any]:
        days = await self.policy(tenant)
        if days is None:
            return {"action": "none", "reason": "no retention period is set"}
        held = [h for h in await self.holds(tenant) if h["active"]]
        if held:
            return {
                "action": "none",
                "reason": f"under legal hold ({len(held)}): {held[0]['reason']}",
            }
        cutoff = datetime.now(UTC) - timedelta(days=days)
        row = await self._db.pool.fetchrow(
            "SELECT min(seq) AS first, "
            "(SELECT min(seq) FROM records WHERE tenant_id = $1 AND occurred_ts >= $2) AS keep "
            "FROM records WHERE tenant_id = $1",
            tenant,
            cutoff,
        )
        first = row["first"] if row else None
        if first is None:
            return {"action": "none", "reason": "the trail is empty"}
        if row["keep"] is None:
            head = await self._db.pool.fetchval(
                "SELECT max(seq) FROM records WHERE tenant_id = $1", tenant
            )
            last = int(head)
        else:
            last = int(row["keep"]) - 1
        if last < first:
            return {"action": "none", "reason": f"nothing older than {days} days"}
        return {
            "action": "archive_and_delete",
            "retention_days": days,
            "cutoff": cutoff.isoformat(),
            "first_seq": first,
            "last_seq": last,
            "records": last - first + 1,
        }

    async def run(self, tenant: str, actor: str, dry_run: bool) -> dict[str, Any]:
        plan = await self.plan(tenant)
        if dry_run or plan["action"] == "none":
            return {**plan, "dry_run": dry_run}
        first, last = plan["first_seq"], plan["last_seq"]
        entries = await self._trail.entries(tenant, first, last)
        prev = await self._trail.hash_at(tenant, first - 1)
        header = {
            "type": "header",
            "format": EXPORT_FORMAT,
            "tenant_id": tenant,
            "from_seq": first,
            "to_seq": last,
            "start": {"seq": first - 1, "hash": prev},
            "checkpoint_key": {
                "id": self._trail.key_id,
                "public_key": public_key_pem(self._trail.public_key),
            },
            "archived_at": datetime.now(UTC).isoformat(),
        }
        lines = [orjson.dumps(header)]
        lines += [orjson.dumps({"type": "record", **e}) for e in entries]
        lines += [
            orjson.dumps({"type": "checkpoint", **c})
            for c in await self._trail.checkpoints(tenant, first, last)
        ]
        data = gzip.compress(b"\n".join(lines) + b"\n")
        folder = self._dir / tenant
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"audit-{tenant}-{first:012d}-{last:012d}.jsonl.gz"
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO archives (tenant_id, first_seq, last_seq, last_hash, records, file, "
                "sha256, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                tenant,
                first,
                last,
                entries[-1]["hash"],
                len(entries),
                str(path),
                digest,
                actor,
            )
            deleted = await conn.fetchval("SELECT audit.purge($1, $2)", tenant, last)
        return {**plan, "dry_run": False, "file": str(path), "sha256": digest, "deleted": deleted}
