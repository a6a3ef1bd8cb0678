"""kill -9 of the drift worker mid-window, then a restart: every window's count equals what
was produced (nothing lost, nothing counted twice), and a window re-closed after the crash
repeats its event id instead of adding a second result."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from driftline_core.events import DriftResult, decode

WORKER = Path(__file__).with_name("drift_worker.py")


def spawn(stack, p, group: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), p.predictions, p.registry, p.schema, p.influx_db, group],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def checkpointed(stack, p, group: str) -> int:
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        return int(
            await conn.fetchval(
                f'SELECT coalesce(sum(next_offset), 0) FROM "{p.schema}".offsets '
                "WHERE group_id = $1",
                group,
            )
            or 0
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def test_kill_9_mid_window_then_restart_counts_every_event_once(
    stack, pipeline, window_start, topic_reader, wait_until
):
    drift_topic = await topic_reader("driftline.drift.v1")
    group = f"{pipeline.schema}-crash"
    await pipeline.register()
    worker = spawn(stack, pipeline, group)
    procs = [worker]
    try:
        await pipeline.send(window_start, 3000, seed=1)
        first = pipeline.records_sent  # 3000 per-event records, or 6 batch records

        async def progressed() -> bool:
            return await checkpointed(stack, pipeline, group) >= first

        await wait_until(progressed, timeout=60)
        await pipeline.send(window_start + 60, 1500, seed=2)  # the second window, half of it
        second = pipeline.records_sent
        await asyncio.sleep(0.15)  # let it be mid-way through those
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        at_kill = await checkpointed(stack, pipeline, group)
        await pipeline.send(window_start + 60, 1500, seed=3)  # the rest of the second window
        await pipeline.send(window_start + 120, 2000, seed=4)
        await pipeline.send(window_start + 180, 5, seed=5)  # closes the first three
        restarted = spawn(stack, pipeline, group)
        procs.append(restarted)

        def mine(rs):
            return [
                decode(DriftResult, r.value)
                for r in rs
                if decode(DriftResult, r.value).tenant_id == pipeline.tenant
            ]

        records = mine(
            await drift_topic.read(
                until=lambda rs: len({d.window.start for d in mine(rs)}) >= 3, timeout=90
            )
        )
        by_window: dict[float, set[tuple[str, int]]] = {}
        for d in records:
            by_window.setdefault(d.window.start.timestamp(), set()).add(
                (str(d.event_id), d.window.events)
            )
        counts = {start - window_start: {n for _, n in seen} for start, seen in by_window.items()}
        assert counts == {0.0: {3000}, 60.0: {3000}, 120.0: {2000}}, counts
        # a window emitted again after the crash carries the same event id
        assert all(len({eid for eid, _ in seen}) == 1 for seen in by_window.values())
        assert first <= at_kill <= second + first
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
