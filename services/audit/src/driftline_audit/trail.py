"""Appending to and reading the per-tenant hash chains in PostgreSQL.

`append` takes a batch of source events. Each is stored at most once: the source event id is
unique per tenant, so a redelivered event has no effect. A tenant's chain is extended under a
transaction-scoped advisory lock, so consumers of different partitions never interleave one
chain. Sequence numbers are given inside that transaction, and a crash before the commit
leaves neither a gap nor a duplicate.

Checkpoints sign a chain's head every `checkpoint_every_records` records or
`checkpoint_every_s` seconds. They are stored in their own table and announced on
`driftline.audit.v1`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_core.auditchain import (
    ENTRY_FIELDS,
    GENESIS,
    entry_hash,
    join,
    sign_checkpoint,
)
from driftline_core.crypto import FieldCipher, KeyDestroyedError
from driftline_core.db.pool import HasPool

from .parallel import ParallelVerifier
from .segments import VERIFY_SELECT, check_segment

__all__ = ["COLUMNS", "SHREDDED", "Item", "Trail"]

log = logging.getLogger(__name__)

SHREDDED = "shredded"  # the payload of an event whose tenant was erased before it was stored
# the hashed fields, plus a timestamp column for queries and the hash itself (row order)
COLUMNS = (*ENTRY_FIELDS[:6], "occurred_ts", *ENTRY_FIELDS[6:], "hash")


# what entries are read as: the hashed fields (source id as text) and the stored hash
SELECT = ", ".join(
    "source_id::text AS source_id" if c == "source_id" else c for c in COLUMNS if c != "occurred_ts"
)


@dataclass(frozen=True)
class Item:
    """One source event, as the trail records it (payload still in clear)."""

    tenant_id: str
    source_id: uuid.UUID
    source_topic: str
    service: str
    occurred_at: datetime
    actor: str
    action: str
    resource_type: str
    resource_id: str
    outcome: str
    payload: bytes


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


async def _nothing() -> list[asyncpg.Record]:
    return []


class Trail:
    def __init__(
        self,
        db: HasPool,
        cipher: FieldCipher,
        signing_key: Ed25519PrivateKey,
        key_id: str,
        *,
        every_records: int = 1000,
        every_s: float = 60.0,
        announce: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        parallel: ParallelVerifier | None = None,
        verify_chunk: int = 2000,
    ) -> None:
        self._db = db
        self._parallel = parallel
        self._verify_chunk = verify_chunk
        self._cipher = cipher
        self._key = signing_key
        self.key_id = key_id
        self._every_records = every_records
        self._every_s = every_s
        self._announce = announce
        self._pending: dict[str, int] = {}  # tenant -> records since its last checkpoint
        self.heads: dict[str, int] = {}  # tenant -> seq of its newest record (metrics)
        self.verifications: dict[str, tuple[bool, float]] = {}  # tenant -> (ok, when)
        self._last_checkpoint = time.monotonic()

    @property
    def public_key(self) -> Any:
        return self._key.public_key()

    async def _seal(self, item: Item) -> tuple[str, int | None]:
        try:
            token = await self._cipher.encrypt(
                item.tenant_id, "audit", str(item.source_id), item.payload
            )
        except KeyDestroyedError:
            return SHREDDED, None
        return token, FieldCipher.key_version(token)

    async def append(self, items: Sequence[Item]) -> int:
        """Store the items not stored yet; returns how many were new."""
        by_tenant: dict[str, list[Item]] = {}
        seen: set[tuple[str, uuid.UUID]] = set()
        for it in items:
            if (it.tenant_id, it.source_id) not in seen:
                seen.add((it.tenant_id, it.source_id))
                by_tenant.setdefault(it.tenant_id, []).append(it)
        sealed = {id(it): await self._seal(it) for its in by_tenant.values() for it in its}
        added: dict[str, int] = {}
        heads: dict[str, int] = {}
        async with self._db.pool.acquire() as conn, conn.transaction():
            rows: list[tuple[Any, ...]] = []
            for tenant in sorted(by_tenant):  # one lock order: no deadlock between members
                its = by_tenant[tenant]
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))", tenant
                )
                known = {
                    r["source_id"]
                    for r in await conn.fetch(
                        "SELECT source_id FROM records WHERE tenant_id = $1 "
                        "AND source_id = ANY($2::uuid[])",
                        tenant,
                        [it.source_id for it in its],
                    )
                }
                head = await conn.fetchrow(
                    "SELECT seq, hash FROM records WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
                    tenant,
                )
                seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
                for it in its:
                    if it.source_id in known:
                        continue
                    payload, version = sealed[id(it)]
                    seq += 1
                    e = {
                        "tenant_id": tenant,
                        "seq": seq,
                        "source_id": str(it.source_id),
                        "source_topic": it.source_topic,
                        "service": it.service,
                        "occurred_at": _iso(it.occurred_at),
                        "actor": it.actor,
                        "action": it.action,
                        "resource_type": it.resource_type,
                        "resource_id": it.resource_id,
                        "outcome": it.outcome,
                        "payload": payload,
                        "key_version": version,
                        "prev_hash": prev,
                    }
                    prev = entry_hash(e)
                    rows.append(
                        (
                            tenant,
                            seq,
                            it.source_id,
                            it.source_topic,
                            it.service,
                            e["occurred_at"],
                            it.occurred_at,
                            it.actor,
                            it.action,
                            it.resource_type,
                            it.resource_id,
                            it.outcome,
                            payload,
                            version,
                            e["prev_hash"],
                            prev,
                        )
                    )
                    added[tenant] = added.get(tenant, 0) + 1
                heads[tenant] = seq
            if rows:
                await conn.copy_records_to_table("records", records=rows, columns=COLUMNS)
        self.heads.update(heads)
        for tenant, n in added.items():
            self._pending[tenant] = self._pending.get(tenant, 0) + n
        await self._maybe_checkpoint()
        return sum(added.values())

    # --- checkpoints ---------------------------------------------------------------------

    async def _maybe_checkpoint(self, force: bool = False) -> None:
        due_by_time = time.monotonic() - self._last_checkpoint >= self._every_s
        for tenant, n in list(self._pending.items()):
            if n and (force or due_by_time or n >= self._every_records):
                await self.checkpoint(tenant)
        if due_by_time or force:
            self._last_checkpoint = time.monotonic()

    async def tick(self) -> None:
        """Called on a clock: checkpoint every chain that grew since its last checkpoint."""
        await self._maybe_checkpoint()

    async def flush(self) -> None:
        await self._maybe_checkpoint(force=True)

    async def checkpoint(self, tenant: str) -> dict[str, Any] | None:
        head = await self._db.pool.fetchrow(
            "SELECT seq, hash FROM records WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1", tenant
        )
        self._pending[tenant] = 0
        if head is None:
            return None
        cp: dict[str, Any] = {
            "tenant_id": tenant,
            "seq": head["seq"],
            "hash": head["hash"],
            "created_at": _iso(datetime.now(UTC)),
        }
        cp["signature"] = sign_checkpoint(self._key, cp)
        cp["key_id"] = self.key_id
        done = await self._db.pool.execute(
            "INSERT INTO checkpoints (tenant_id, seq, hash, created_at, key_id, signature) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, seq) DO NOTHING",
            tenant,
            cp["seq"],
            cp["hash"],
            cp["created_at"],
            cp["key_id"],
            cp["signature"],
        )
        if str(done).endswith(" 1") and self._announce is not None:
            await self._announce(cp)
        return cp

    # --- reading -------------------------------------------------------------------------

    async def entries(
        self, tenant: str, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.rows(tenant, from_seq, to_seq, limit)]

    async def rows(
        self, tenant: str, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None
    ) -> list[asyncpg.Record]:
        """The chain's rows as the driver gives them (read-only mappings): verifying needs
        no dict per row, which halves the cost of reading."""
        rows: list[asyncpg.Record] = await self._db.pool.fetch(
            f"SELECT {SELECT} FROM records "
            "WHERE tenant_id = $1 AND seq >= $2 AND ($3::bigint IS NULL OR seq <= $3) "
            "ORDER BY seq LIMIT $4",
            tenant,
            from_seq,
            to_seq,
            limit,
        )
        return rows

    async def query(
        self,
        tenant: str,
        *,
        after: int,
        limit: int,
        start: datetime | None = None,
        end: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries after seq `after` matching every given filter, in seq order."""
        where, args = ["tenant_id = $1", "seq > $2"], [tenant, after]
        for column, op, value in (
            ("occurred_ts", ">=", start),
            ("occurred_ts", "<", end),
            ("actor", "=", actor),
            ("action", "=", action),
            ("resource_type", "=", resource_type),
            ("resource_id", "=", resource_id),
        ):
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        args.append(limit)
        rows = await self._db.pool.fetch(
            f"SELECT {SELECT} FROM records "
            f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT ${len(args)}",
            *args,
        )
        return [dict(r) for r in rows]

    async def checkpoints(
        self, tenant: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[dict[str, Any]]:
        """Checkpoints of the tenant with `from_seq <= seq` (`<= to_seq` when given)."""
        rows = await self._db.pool.fetch(
            "SELECT tenant_id, seq, hash, created_at, key_id, signature FROM checkpoints "
            "WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq",
            tenant,
            from_seq,
        )
        out = [dict(r) for r in rows]
        return out if to_seq is None else [c for c in out if c["seq"] <= to_seq]

    async def hash_at(self, tenant: str, seq: int) -> str | None:
        """The hash of record `seq`, also when it was archived and removed."""
        if seq <= 0:
            return GENESIS
        value: str | None = await self._db.pool.fetchval(
            "SELECT hash FROM records WHERE tenant_id = $1 AND seq = $2", tenant, seq
        )
        if value is None:
            value = await self._db.pool.fetchval(
                "SELECT last_hash FROM archives WHERE tenant_id = $1 AND last_seq = $2",
                tenant,
                seq,
            )
        return value

    async def archived_through(self, tenant: str) -> int:
        """The last seq moved to an archive (0: none); the trail goes on after it."""
        value = await self._db.pool.fetchval(
            "SELECT max(last_seq) FROM archives WHERE tenant_id = $1", tenant
        )
        return int(value or 0)

    async def verify_range(
        self, tenant: str, from_seq: int = 1, to_seq: int | None = None, authenticate: bool = True
    ) -> dict[str, Any]:
        """Verify one tenant's chain over [from_seq, to_seq] (archived records excluded) with
        its checkpoints; with `authenticate`, each payload must also decrypt under the
        tenant's key. Names the first broken record and why."""
        ends = await self._db.pool.fetchrow(
            "SELECT (SELECT max(last_seq) FROM archives WHERE tenant_id = $1) AS archived, "
            "(SELECT max(seq) FROM records WHERE tenant_id = $1 "
            "AND ($2::bigint IS NULL OR seq <= $2)) AS last",
            tenant,
            to_seq,
        )
        from_seq = max(from_seq, int(ends["archived"] or 0) + 1)
        last: int | None = ends["last"]
        span = {"from_seq": from_seq, "to_seq": to_seq}
        pv = self._parallel
        if authenticate or pv is None or last is None or not pv.worth_it(last - from_seq + 1):
            pv = None
        # the checkpoints, the hash before the range and its first chunk: at once
        reading = last is not None and last >= from_seq and pv is None
        first_hi = min(from_seq + self._verify_chunk - 1, last or 0)
        checkpoints, prev, first = await asyncio.gather(
            self.checkpoints(tenant, from_seq, to_seq),
            self.hash_at(tenant, from_seq - 1),
            self._chunk(tenant, from_seq, first_hi) if reading else _nothing(),
        )
        start = None
        if from_seq > 1:
            if prev is None:
                reason = "missing: the record before the range is absent"
                brk = {"tenant_id": tenant, "seq": from_seq - 1, "reason": reason}
                self.verifications[tenant] = (False, time.time())
                return {"ok": False, "records": 0, "first_break": brk, "range": span}
            start = {tenant: (from_seq - 1, prev)}
        entries: list[asyncpg.Record] = []
        if pv is not None and last is not None:
            # long and keyless: one segment per core, joined (same verdict as in one piece)
            v = await pv.verify(tenant, from_seq, last, checkpoints, self.public_key, start)
        else:
            want = sorted({int(c["seq"]) for c in checkpoints})
            segments = []
            # the rest in chunks of seqs: a bounded read each, which PostgreSQL plans without
            # parallel workers (a whole 5,000-record chain in one query got two, and took
            # 15 times as long to execute on this 2-core box); each chunk's read is sent
            # before the chunk before it is hashed, so PostgreSQL produces the one while
            # this process hashes the other
            chunk, hi = self._verify_chunk, last or 0
            rest = iter([(a, min(a + chunk - 1, hi)) for a in range(first_hi + 1, hi + 1, chunk)])
            rows: list[asyncpg.Record] = first
            while True:
                bounds = next(rest, None)
                ahead = None if bounds is None else await self._send_chunk(tenant, *bounds)
                segments.append(check_segment(tenant, rows, want))
                if authenticate:
                    entries.extend(rows)
                if ahead is None:
                    break
                rows = await ahead
            v = join(segments, checkpoints, self.public_key, start=start)
        out = v.as_dict()
        if authenticate:
            # a payload that does not decrypt under the tenant's key was not written by us
            # (a forged or moved record); report whichever break comes first
            limit = v.first_break.seq if v.first_break else None
            for e in entries:
                if limit is not None and e["seq"] >= limit:
                    break
                got = await self.decrypt(e)
                if isinstance(got, str) and got.startswith("not authentic"):
                    out["ok"] = False
                    out["first_break"] = {
                        "tenant_id": tenant,
                        "seq": e["seq"],
                        "reason": f"payload {got}",
                    }
                    break
        out["range"] = span
        self.verifications[tenant] = (bool(out["ok"]), time.time())
        return out

    async def _send_chunk(
        self, tenant: str, lo: int, hi: int
    ) -> asyncio.Future[list[asyncpg.Record]]:
        """`_chunk(tenant, lo, hi)` started: returns once its query is on the wire (the rows
        arrive while the caller works), with the future of its rows."""
        task = asyncio.ensure_future(self._chunk(tenant, lo, hi, sent := asyncio.Event()))
        sending = asyncio.ensure_future(sent.wait())
        await asyncio.wait((task, sending), return_when=asyncio.FIRST_COMPLETED)
        sending.cancel()
        return task

    async def _chunk(
        self, tenant: str, lo: int, hi: int, sent: asyncio.Event | None = None
    ) -> list[asyncpg.Record]:
        """Seqs lo..hi of the chain, read for `check_segment`; `sent` is set as the query
        goes out (its write is the next thing this task does)."""
        async with self._db.pool.acquire() as conn:
            if sent is not None:
                sent.set()
            rows: list[asyncpg.Record] = await conn.fetch(
                f"SELECT {VERIFY_SELECT} FROM records "
                "WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
                tenant,
                lo,
                hi,
            )
        return rows

    async def decrypt(self, entry: Mapping[str, Any]) -> dict[str, Any] | str:
        """The source record, or why it cannot be read (erased, or not authentic)."""
        if entry["payload"] == SHREDDED:
            return "shredded: the tenant was erased before this was stored"
        try:
            plain = await self._cipher.decrypt(
                entry["tenant_id"], "audit", entry["source_id"], entry["payload"]
            )
        except KeyDestroyedError:
            return "unreadable: the tenant's keys were destroyed (crypto-shredding)"
        except Exception as e:
            return f"not authentic: {e}"
        value: dict[str, Any] = orjson.loads(plain)
        return value
