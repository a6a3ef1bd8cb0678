"""Transactional outbox: events are written in the same transaction as the change they
describe, then relayed to Kafka after commit (and retried in the background until the broker
acknowledges). A change is never committed without its events, nor announced without
being committed. Relayed rows are deleted; delivery is at-least-once (consumers dedupe by
event id).

The service's migrations create the `outbox` table (see ingestion's 0003_outbox.sql)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import asyncpg
from pydantic import BaseModel

from ..errors import DriftlineError
from ..events.envelope import Envelope, encode
from ..kafka.producer import EventProducer
from .pool import HasPool

__all__ = ["Outbox"]

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, db: HasPool, producer: EventProducer, interval_s: float = 1.0) -> None:
        self._db = db
        self._producer = producer
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._due = asyncio.Event()
        self._stopping = False

    @staticmethod
    def rows(events: Sequence[BaseModel]) -> list[tuple[str, bytes | None, bytes]]:
        """The (topic, key, value) rows of `events`, for a caller that writes them in its own
        statement."""
        return [
            (getattr(e, "TOPIC", ""), e.key() if isinstance(e, Envelope) else None, encode(e))
            for e in events
        ]

    @staticmethod
    async def add(conn: asyncpg.Connection, events: Sequence[BaseModel]) -> None:
        """Inside the caller's transaction."""
        await conn.executemany(
            "INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)", Outbox.rows(events)
        )

    def poke(self) -> None:
        """Rows were just committed: relay them now, not at the next interval."""
        self._due.set()

    async def flush(self) -> int:
        """Relay what is pending, oldest first. Returns how many were sent.

        One relay at a time across every replica sharing the table: the batch is read, sent
        and deleted inside one transaction that holds a transaction-level advisory lock
        named after the schema's outbox, and a replica that finds the lock taken skips
        this round (0). Two replicas never send the same rows, and rows keep their order on
        the topics; a crash between the broker's acknowledgement and the commit still sends
        a batch again (at-least-once, consumers dedupe by event id)."""
        async with self._lock, self._db.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.outbox'))"
            ):
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT 1000"
            )
            if not rows:
                return 0
            by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
            for r in rows:
                by_topic.setdefault(r["topic"], []).append((r["key"], r["value"]))
            for topic, records in by_topic.items():
                await self._producer.send_records(topic, records)
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._relay())

    async def stop(self) -> None:
        """The relay's round in progress finishes (cancelled between the broker's
        acknowledgement and the delete, it would leave its batch to be sent again: a
        duplicate at every stop), then what is left is relayed once more."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._due.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 5)
            except TimeoutError:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._stopping = False
        try:
            await asyncio.wait_for(self.flush(), 5)
        except (DriftlineError, TimeoutError, OSError) as e:
            log.warning(
                "outbox not empty at shutdown; relayed at next start", extra={"error": repr(e)}
            )

    async def _relay(self) -> None:
        while not self._stopping:
            self._due.clear()  # before the reading: rows poked meanwhile are relayed next
            try:
                while await self.flush() == 1000:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as e:  # whatever it is, the relay goes on (rows stay queued)
                log.warning("outbox relay failed; will retry", extra={"error": repr(e)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self._interval)
