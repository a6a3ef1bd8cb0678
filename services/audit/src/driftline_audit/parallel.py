"""Verifying a long chain on every core. Python hashes one record at a time under one lock,
so a chain of tens of thousands of records is cut into consecutive segments, each read and
verified by a worker process of its own, and the segments are joined in seq order
(`driftline_core.auditchain.join`, which says exactly what verifying the whole chain
says). Short ranges are verified in the service's own process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from driftline_core.auditchain import Segment, Verification, join
from driftline_core.db.pool import connect
from driftline_core.settings import PostgresSettings

from .segments import check_segment

__all__ = ["ParallelVerifier"]


def _follow_parent(parent: int) -> None:
    """In each worker: exit as soon as the service is gone, even when it was killed (-9)
    and could not shut its pool down."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="follow-parent").start()


# in each worker process: one event loop and one connection, kept between segments
_loop: asyncio.AbstractEventLoop | None = None
_conn: Any = None


def _run(coro: Any) -> Any:
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)


async def _connection(settings: PostgresSettings, schema: str) -> Any:
    global _conn
    if _conn is None or _conn.is_closed():
        _conn = await connect(settings, schema, "driftline-audit-verify")
    return _conn


def _warm(settings: PostgresSettings, schema: str, select: str) -> int:
    """Connect, and prepare the segment query once (asyncpg caches it per connection)."""
    _run(_read_and_verify(settings, schema, select, "", 1, 0, []))
    return os.getpid()


def _segment(
    settings: PostgresSettings, schema: str, select: str, tenant: str, lo: int, hi: int,
    want: list[int],
) -> Segment:  # fmt: skip
    return _run(_read_and_verify(settings, schema, select, tenant, lo, hi, want))  # type: ignore[no-any-return]


async def _read_and_verify(
    settings: PostgresSettings, schema: str, select: str, tenant: str, lo: int, hi: int,
    want: list[int],
) -> Segment:  # fmt: skip
    conn = await _connection(settings, schema)
    rows = await conn.fetch(
        f"SELECT {select} FROM records WHERE tenant_id = $1 AND seq >= $2 AND seq <= $3 "
        "ORDER BY seq",
        tenant,
        lo,
        hi,
    )
    return check_segment(tenant, rows, want)  # any select: read by name unless VERIFY_SELECT


class ParallelVerifier:
    def __init__(
        self,
        settings: PostgresSettings,
        schema: str,
        select: str,
        *,
        workers: int | None = None,
        min_records: int = 4000,
    ) -> None:
        self._settings, self._schema, self._select = settings, schema, select
        self.workers = workers or os.cpu_count() or 1
        self.min_records = min_records
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the worker processes now (they import the verifier once), not on the
        first long verification."""
        if self._pool is None and self.workers > 1:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_follow_parent,
                initargs=(os.getpid(),),
            )
            warm = [
                self._pool.submit(_warm, self._settings, self._schema, self._select)
                for _ in range(self.workers * 2)
            ]
            for f in warm:
                f.result()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def worth_it(self, records: int) -> bool:
        return self._pool is not None and records >= self.min_records

    async def verify(
        self,
        tenant: str,
        lo: int,
        hi: int,
        checkpoints: Sequence[Mapping[str, Any]],
        public_key: Ed25519PublicKey,
        start: Mapping[str, tuple[int, str]] | None,
    ) -> Verification:
        """Verify seqs lo..hi of the tenant's chain, cut into one segment per worker."""
        assert self._pool is not None
        want = sorted({int(c["seq"]) for c in checkpoints})
        step = -(-(hi - lo + 1) // self.workers)
        bounds = [(a, min(a + step - 1, hi)) for a in range(lo, hi + 1, step)]
        loop = asyncio.get_running_loop()
        segments = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self._pool,
                    _segment,
                    self._settings,
                    self._schema,
                    self._select,
                    tenant,
                    a,
                    b,
                    want,
                )
                for a, b in bounds
            )
        )
        return join(segments, checkpoints, public_key, start=start)
