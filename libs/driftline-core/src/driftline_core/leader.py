"""Active/standby leadership through a PostgreSQL session advisory lock (decision 38).

Every replica of a service that must act alone (alerting's evaluation and deliveries,
compliance-report's generator and scheduler) runs a `Leadership`. It holds one dedicated
connection and tries `pg_try_advisory_lock(key)` on it every `interval_s`; the replica
that gets the lock is the leader and runs its `on_acquire`, the others wait. The lock lives
as long as the session: a leader killed with kill -9 loses its socket, the server ends the
session and frees the lock, and a standby takes it at its next try (about `interval_s`).

A leader checks its session every `interval_s` too (`SELECT 1` bounded by `interval_s`): if
it fails (PostgreSQL stopped, the connection cut), the leader steps down at once
(`on_release`) because it can no longer know that it still holds the lock; it competes
again once the server answers. Advisory locks are per database, so two systems on two
databases never share a leader.

`check()` is the readiness check `leader`: it fails on a standby, so a load balancer sends
the API's requests to the active replica only (its in-memory state is the one that acts:
alerting). `check(required=False)` only reports the role, for a service whose API any
replica can serve from the database (compliance-report: only its generator and scheduler
are the leader's).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .errors import UnavailableError
from .observability.health import Check
from .settings import PostgresSettings

__all__ = ["Leadership", "lock_key"]

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name`."""
    return int.from_bytes(
        hashlib.sha256(f"driftline:leader:{name}".encode()).digest()[:8], "big", signed=True
    )


class Leadership:
    def __init__(
        self,
        settings: PostgresSettings,
        name: str,
        *,
        on_acquire: Callable[[], Awaitable[Any]],
        on_release: Callable[[], Awaitable[Any]],
        interval_s: float = 1.0,
        connect: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.settings, self.name = settings, name
        self.key = lock_key(name)
        self.on_acquire, self.on_release = on_acquire, on_release
        self.interval_s = interval_s
        self._connect = connect
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.leader = False
        self.terms = 0  # how many times this replica became leader
        self.since: float | None = None  # time.time() of the current term's start
        self.error: str | None = None  # the last reason it could not compete

    async def start(self) -> None:
        self._stopping.clear()
        await self._try()  # a lone replica is the leader before the app answers
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._step_down("stopping")
        await self._close()

    def check(self, *, required: bool = True) -> Check:
        """The readiness check `leader`: "ok" on the leader, "standby: ..." elsewhere. With
        `required=False` a standby still answers ready (its API does not depend on being
        the leader: compliance-report) and the check only says which replica leads."""

        async def probe() -> None:
            if not self.leader:
                why = f" ({self.error})" if self.error else ""
                raise UnavailableError(
                    f"standby: another replica holds the {self.name} leadership{why}"
                )

        return Check("leader", probe, required=required)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            if self._stopping.is_set():
                return
            await self._try()

    async def _open(self) -> Any:
        if self._connect is not None:
            return await self._connect()
        s = self.settings
        return await asyncpg.connect(
            s.dsn(),
            timeout=max(self.interval_s * 3, 2.0),
            server_settings={"application_name": f"driftline-leader:{self.name}"},
        )

    async def _try(self) -> None:
        if self.leader and (self._conn is None or self._conn.is_closed()):
            # the session that held the lock is gone, and with it the lock: a new session
            # holds nothing, so step down before competing again
            log.warning("leadership %s lost: its session closed", self.name)
            await self._step_down("session closed")
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await self._open()
            if self.leader:
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self.interval_s * 2)
                return
            got = await asyncio.wait_for(
                self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key),
                self.interval_s * 2,
            )
            self.error = None
        except asyncio.CancelledError:
            raise
        except Exception as e:  # PostgreSQL away: a leader steps down, nobody competes
            self.error = f"{type(e).__name__}: {e}"
            await self._close()
            if self.leader:
                log.warning("leadership %s lost: %s", self.name, self.error)
                await self._step_down("session lost")
            return
        if got:
            self.leader, self.terms, self.since = True, self.terms + 1, time.time()
            log.info("leadership %s acquired (term %d)", self.name, self.terms)
            try:
                await self.on_acquire()
            except Exception:
                log.exception("leadership %s: starting the active part failed", self.name)
                await self._step_down("start failed")
                await self._close()  # frees the lock for another replica

    async def _step_down(self, why: str) -> None:
        if not self.leader:
            return
        self.leader, self.since = False, None
        log.info("leadership %s released (%s)", self.name, why)
        try:
            await self.on_release()
        except Exception:
            log.exception("leadership %s: stopping the active part failed", self.name)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
