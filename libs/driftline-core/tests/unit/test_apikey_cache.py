"""The API-key verification cache: a revocation is never undone by a lookup in flight.

A fake pool stands in for PostgreSQL: its row can be revoked, and a lookup can be held at
the moment it has read the row (before the revocation) until the test lets it return.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from driftline_core.auth import ApiKeys

TOKEN = "dlk_abc123_s3cret"


class FakePool:
    def __init__(self) -> None:
        self.revoked = False
        self.lookups = 0
        self.hold: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def fetchrow(self, query: str, prefix: str) -> dict[str, Any] | None:
        self.lookups += 1
        row = None
        if not self.revoked and prefix == "abc123":
            row = {
                "id": "k1",
                "tenant_id": "t1",
                "hash": hashlib.sha256(b"s3cret").hexdigest(),
                "scopes": ["ingest"],
                "name": "producer",
            }
        self.read.set()
        if self.hold is not None:
            await self.hold.wait()
        return row

    async def execute(self, query: str, *args: Any) -> str:
        self.revoked = True
        return "UPDATE 1"


class FakeDb:
    def __init__(self) -> None:
        self.pool = FakePool()


async def test_a_revocation_applies_at_once_in_the_process_that_made_it():
    db = FakeDb()
    keys = ApiKeys(db, cache_ttl_s=3600)
    assert (await keys.verify(TOKEN)) is not None
    assert (await keys.verify(TOKEN)) is not None
    assert db.pool.lookups == 1  # the second answer came from the cache
    assert await keys.revoke("t1", "00000000-0000-0000-0000-000000000001")
    assert await keys.verify(TOKEN) is None


async def test_a_lookup_in_flight_during_a_revocation_does_not_cache_its_stale_answer():
    db = FakeDb()
    keys = ApiKeys(db, cache_ttl_s=3600)
    db.pool.hold = asyncio.Event()
    in_flight = asyncio.create_task(keys.verify(TOKEN))
    await asyncio.wait_for(db.pool.read.wait(), 5)  # it has read the row: not revoked yet
    db.pool.revoked = True  # the revocation commits (in another request)...
    keys.invalidate()  # ...and its request drops the cache
    db.pool.hold.set()
    # the request that was already running may pass (it began before the revocation)...
    assert (await asyncio.wait_for(in_flight, 5)) is not None
    db.pool.hold = None
    # ...but the next one asks the database again and is refused
    assert await keys.verify(TOKEN) is None
    assert db.pool.lookups == 2


async def test_an_unrevoked_key_stays_cached_for_the_ttl():
    db = FakeDb()
    keys = ApiKeys(db, cache_ttl_s=3600)
    for _ in range(5):
        assert (await keys.verify(TOKEN)) is not None
    assert db.pool.lookups == 1
    assert keys.cache_ttl_s == 3600
