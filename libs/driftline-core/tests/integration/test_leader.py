"""Leadership by a PostgreSQL advisory lock against the real server (decision 38): one leader
among replicas; a leader process killed with kill -9 frees the lock and a standby takes
over within the interval; a leader whose session is cut steps down and competes again;
the readiness check fails on a standby only."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import asyncpg
import pytest

from driftline_core.errors import UnavailableError
from driftline_core.leader import Leadership, lock_key

pytestmark = pytest.mark.integration


class Replica:
    def __init__(self, stack, name: str) -> None:
        self.events: list[str] = []
        self.leadership = Leadership(
            stack.postgres,
            name,
            on_acquire=self._acquired,
            on_release=self._released,
            interval_s=0.2,
        )

    async def _acquired(self) -> None:
        self.events.append("acquired")

    async def _released(self) -> None:
        self.events.append("released")


async def until(cond, timeout: float = 10.0) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def test_one_leader_and_the_standby_takes_over_on_a_clean_stop(stack):
    name = f"t-{uuid.uuid4().hex[:8]}"
    a, b = Replica(stack, name), Replica(stack, name)
    await a.leadership.start()
    await b.leadership.start()
    try:
        assert a.leadership.leader
        assert not b.leadership.leader
        await a.leadership.check().probe()
        with pytest.raises(UnavailableError, match="standby"):
            await b.leadership.check().probe()
        await asyncio.sleep(0.6)  # several rounds: still exactly one leader
        assert (a.leadership.leader, b.leadership.leader) == (True, False)
        await a.leadership.stop()
        assert a.events == ["acquired", "released"]
        took = await until(lambda: b.leadership.leader)
        assert took < 2.0
        assert b.events == ["acquired"]
    finally:
        await a.leadership.stop()
        await b.leadership.stop()


HOLDER = """
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", int(sys.argv[2]))
    print("held", flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_a_leader_killed_with_sigkill_is_replaced_within_the_interval(stack):
    name = f"t-{uuid.uuid4().hex[:8]}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, stack.postgres.dsn(), str(lock_key(name))],
        stdout=subprocess.PIPE,
        text=True,
    )
    b = Replica(stack, name)
    try:
        assert holder.stdout is not None
        assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "held"
        await b.leadership.start()
        await asyncio.sleep(0.6)
        assert not b.leadership.leader  # the other process holds it
        t0 = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        await until(lambda: b.leadership.leader)
        assert time.monotonic() - t0 < 3.0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(5)
        await b.leadership.stop()


async def test_a_leader_whose_session_is_cut_steps_down_then_competes_again(stack):
    name = f"t-{uuid.uuid4().hex[:8]}"
    a = Replica(stack, name)
    await a.leadership.start()
    try:
        assert a.leadership.leader
        conn = await asyncpg.connect(stack.postgres.dsn())
        try:
            n = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1",
                f"driftline-leader:{name}",
            )
        finally:
            await conn.close()
        assert n == 1
        await until(lambda: "released" in a.events)
        await until(lambda: a.leadership.leader)  # nobody else: it takes the lock back
        assert a.events == ["acquired", "released", "acquired"]
        assert a.leadership.terms == 2
    finally:
        await a.leadership.stop()


async def test_a_check_that_is_not_required_reports_the_standby_but_keeps_it_ready(stack):
    """compliance-report's `leader` check (decision 45): /readyz names the standby's role and
    still answers 200; alerting's (required) answers 503 on the standby."""
    import httpx
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from driftline_core.observability.health import ops_router
    from driftline_core.observability.metrics import CoreMetrics

    name = f"t-{uuid.uuid4().hex[:8]}"
    a, b = Replica(stack, name), Replica(stack, name)
    await a.leadership.start()
    await b.leadership.start()
    try:
        for required, standby_status in ((False, 200), (True, 503)):
            for replica, status in ((a, 200), (b, standby_status)):
                app = FastAPI()
                checks = [replica.leadership.check(required=required)]
                metrics = CoreMetrics(CollectorRegistry(), "leader-test")
                app.include_router(ops_router(checks, metrics))
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as c:
                    r = await c.get("/readyz")
                assert r.status_code == status, (required, r.text)
                leader = r.json()["checks"]["leader"]
                assert (leader == "ok") is (replica is a), r.text
                if replica is b:
                    assert "standby" in leader
    finally:
        await a.leadership.stop()
        await b.leadership.stop()
