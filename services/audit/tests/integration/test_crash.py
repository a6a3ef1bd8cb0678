"""The audit service as a process, killed with SIGKILL in the middle of a stream and started
again: every audit event produced is in the tenant's chain exactly once, with no gap."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx

from driftline_audit.app import signing_key
from driftline_audit.settings import AuditSettings
from driftline_core.auditchain import verify
from driftline_core.events import Actor, AuditRecord, Resource
from driftline_core.kafka import EventProducer

N = 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(group: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("driftline-audit")
    cmd = str(exe) if exe.exists() else shutil.which("driftline-audit")
    assert cmd, "driftline-audit is not installed"
    env = {
        **os.environ,
        "DRIFTLINE_ENVIRONMENT": "test",
        "DRIFTLINE_HTTP__PORT": str(port),
        "DRIFTLINE_AUDIT__GROUP_ID": group,
        "DRIFTLINE_AUDIT__CHECKPOINT_EVERY_RECORDS": "250",
    }
    with open(log, "ab") as out:
        return subprocess.Popen([cmd], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    async with httpx.AsyncClient(timeout=2) as c:
        for _ in range(int(timeout * 4)):
            assert proc.poll() is None, "the audit service exited"
            try:
                if (await c.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError("the audit service never became ready")


async def _start_group_at_the_end(stack, group: str, topics: list[str]) -> None:
    """The new group starts where the topics end now, not at the history other tests left."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from driftline_core.kafka.config import client_kwargs

    c = AIOKafkaConsumer(**client_kwargs(stack.kafka), group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        cluster = await c._client.fetch_all_metadata()
        parts = [
            TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()
        ]
        ends = await c.end_offsets(parts)
        c.assign(parts)
        await c.commit({tp: off for tp, off in ends.items()})
    finally:
        await c.stop()


async def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(stack, tmp_path, new_tenant):
    tenant, _ = await new_tenant()  # a real tenant: records of unknown tenants are dead-lettered
    group = f"audit-crash-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "audit.log"
    port = _free_port()
    events = [
        AuditRecord(
            tenant_id=tenant,
            service="crash-test",
            actor=Actor(type="user", id=f"user:u{i % 7}"),
            action="model.update",
            resource=Resource(type="model", id=f"m{i % 11}"),
            details={"i": i},
        )
        for i in range(N)
    ]
    await _start_group_at_the_end(stack, group, AuditSettings().audit.topics)
    producer = EventProducer(stack.kafka)
    await producer.start()
    proc = _start(group, port, log)
    conn = await asyncpg.connect(stack.postgres.dsn())

    async def stored() -> int:
        return int(
            await conn.fetchval("SELECT count(*) FROM audit.records WHERE tenant_id = $1", tenant)
        )

    try:
        await _ready(port, proc)
        for i in range(0, N // 2, 100):
            await producer.send_many(events[i : i + 100])
        for _ in range(200):  # kill once some, not all, of the first half is stored
            if await stored() > 0:
                break
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = await stored()
        for i in range(N // 2, N, 100):
            await producer.send_many(events[i : i + 100])
        proc = _start(group, port, log)
        await _ready(port, proc)
        for _ in range(240):
            if await stored() >= N:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # anything redelivered late would show up as a duplicate
        rows = await conn.fetch(
            "SELECT * FROM audit.records WHERE tenant_id = $1 ORDER BY seq", tenant
        )
        checkpoints = await conn.fetch(
            "SELECT * FROM audit.checkpoints WHERE tenant_id = $1 ORDER BY seq", tenant
        )
    finally:
        await conn.close()
        await producer.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    print(f"SIGKILL with {killed_at} of {N} stored")
    assert 0 < killed_at < N, f"the kill should land mid-stream (stored {killed_at})"
    assert len(rows) == N, f"{len(rows)} stored, {N} produced"
    assert [r["seq"] for r in rows] == list(range(1, N + 1))  # no gap
    assert {r["source_id"] for r in rows} == {e.event_id for e in events}  # each once
    entries = [{**dict(r), "source_id": str(r["source_id"])} for r in rows]
    key = signing_key(AuditSettings(environment="test")).public_key()
    v = verify(entries, [dict(c) for c in checkpoints], key)
    assert v.ok, v.first_break
    assert v.checkpoints >= 1
