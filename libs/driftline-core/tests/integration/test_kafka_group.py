"""A consumer group of two over a real broker: kill -9 one member, the other takes over at
the committed offsets, the killed one restarts and resumes; nothing is lost and nothing is
processed twice except the killed member's processed-but-uncommitted tail."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from driftline_core.kafka import EventProducer
from driftline_core.kafka.config import client_kwargs

MEMBER = Path(__file__).with_name("group_member.py")


class Tick(BaseModel):
    seq: int


def read(path: Path) -> list[tuple[int, int, int, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        p, o, s, t = line.split()
        rows.append((int(p), int(o), int(s), float(t)))
    return rows


def spawn(stack, topic: str, group: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(MEMBER), stack.kafka.bootstrap_servers, topic, group, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def produce(producer: EventProducer, topic: str, seqs: range) -> dict[int, tuple[int, int]]:
    """seq -> (partition, offset), as acknowledged by the broker (acks=all)."""
    metas = await producer.send_many([Tick(seq=s) for s in seqs], topic=topic)
    return {s: (m.partition, m.offset) for s, m in zip(seqs, metas, strict=True)}


async def committed(stack, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(**client_kwargs(stack.kafka))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


async def test_group_member_killed_partner_takes_over_and_restart_resumes_at_commit(
    stack, new_topic, unique, tmp_path, wait_until
):
    topic = await new_topic("group", partitions=4)
    group = unique("group")
    producer = EventProducer(stack.kafka)
    await producer.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        produced = await produce(producer, topic, range(0, 600))
        out_a, out_b, out_b2 = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "b2.log"
        a = spawn(stack, topic, group, out_a)
        b = spawn(stack, topic, group, out_b)
        procs += [a, b]

        # both members own partitions and are mid-stream
        async def both_busy() -> bool:
            pa = {r[0] for r in read(out_a)[-20:]}
            pb = {r[0] for r in read(out_b)[-20:]}
            return bool(pa) and bool(pb) and not (pa & pb)

        await wait_until(both_busy, timeout=60)
        b.send_signal(signal.SIGKILL)
        b.wait(10)
        kill_time = time.time()
        at_kill = await committed(stack, group)
        b_rows = read(out_b)
        b_parts = {p for p, *_ in b_rows[-20:]}

        produced |= await produce(producer, topic, range(600, 900))

        # the survivor takes over the killed member's partitions
        async def a_took_over() -> bool:
            return b_parts <= {p for p, _, _, t in read(out_a) if t > kill_time}

        await wait_until(a_took_over, timeout=60)
        b2 = spawn(stack, topic, group, out_b2)
        procs.append(b2)
        next_seq = 900

        # keep the stream flowing until the restarted member owns partitions again
        async def b2_working() -> bool:
            nonlocal produced, next_seq
            produced |= await produce(producer, topic, range(next_seq, next_seq + 20))
            next_seq += 20
            return len(read(out_b2)) > 0

        await wait_until(b2_working, timeout=60, interval=0.2)
        produced |= await produce(producer, topic, range(next_seq, next_seq + 200))

        async def all_seen() -> bool:
            seen = {seq for f in (out_a, out_b, out_b2) for _, _, seq, _ in read(f)}
            return seen >= set(produced)

        await wait_until(all_seen, timeout=90)
        for p in (a, b2):
            p.send_signal(signal.SIGTERM)
            p.wait(30)

        a_rows, b2_rows = read(out_a), read(out_b2)
        survivors = a_rows + b2_rows
        everything = b_rows + survivors

        # nothing lost: every acknowledged record was processed, where the broker put it
        by_seq = {s: (p, o) for p, o, s, _ in everything}
        assert set(by_seq) == set(produced)
        assert all(by_seq[s] == produced[s] for s in produced)

        # nothing duplicated past the commit: the live members process each record once;
        # a record is seen twice only if the killed member handled it after its last commit
        assert not [k for k, n in Counter((p, o) for p, o, *_ in survivors).items() if n > 1]
        dupes = {(p, o) for p, o, *_ in b_rows} & {(p, o) for p, o, *_ in survivors}
        assert all(o >= at_kill.get(p, 0) for p, o in dupes), (dupes, at_kill)

        # the survivor resumed each taken-over partition exactly at the committed offset
        first_after_kill: dict[int, int] = {}
        for p, o, _, t in a_rows:
            if t > kill_time and p in b_parts and p not in first_after_kill:
                first_after_kill[p] = o
        assert first_after_kill == {p: at_kill.get(p, 0) for p in b_parts}

        # and the restarted member resumed where the group had committed: no gaps
        per_partition: dict[int, list[int]] = defaultdict(list)
        for p, o, *_ in everything:
            per_partition[p].append(o)
        for p, offs in per_partition.items():
            assert sorted(set(offs)) == list(range(min(offs), max(offs) + 1)), p
        assert b2_rows, "the restarted member got partitions back and processed records"
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
        await producer.stop()
        await asyncio.sleep(0)
