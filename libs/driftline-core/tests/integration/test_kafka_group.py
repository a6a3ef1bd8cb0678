"""A consumer group of two over a real broker: kill -9 one member, the other takes over at
the committed offsets, the killed one restarts and resumes; nothing is lost and nothing is
processed twice except the killed member's processed-but-uncommitted tail. A member stopped
with SIGTERM in the middle of a batch hands its partitions over exactly (decision 54)."""

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
    text = path.read_text()
    for line in text[: text.rfind("\n") + 1].splitlines():  # a line being written: not yet
        p, o, s, t = line.split()
        rows.append((int(p), int(o), int(s), float(t)))
    return rows


def spawn(
    stack, topic: str, group: str, out: Path, handler_s: float | None = None
) -> subprocess.Popen[bytes]:
    """A member process; `handler_s`: how long each batch takes (group_member.py)."""
    env = dict(os.environ)
    if handler_s is not None:
        env["DRIFTLINE_TEST_HANDLER_S"] = str(handler_s)
    # the member's output goes to a file: a pipe nobody reads would block it once full
    with open(out.with_suffix(".out"), "ab") as sink:
        return subprocess.Popen(
            [sys.executable, str(MEMBER), stack.kafka.bootstrap_servers, topic, group, str(out)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def logs(*outs: Path) -> str:
    """The members' own logs (rebalances, failed commits, generation of each batch)."""
    parts = []
    for out in outs:
        for f in (out.with_suffix(".out"), Path(f"{out}.log")):
            if f.exists():
                parts.append(f"--- {f.name}\n{f.read_text()[-20000:]}")
    return "\n".join(parts)


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
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(out_a, out_b, out_b2)}") from e
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
        await producer.stop()
        await asyncio.sleep(0)


async def test_a_member_stopped_mid_batch_commits_it_before_the_next_owner_starts(
    stack, new_topic, unique, tmp_path, wait_until
):
    """SIGTERM while a batch is in the handler (a batch takes 3 s here): the member finishes
    and commits it, then leaves; the member started next begins right after it. Each record
    is handled once. (The member used to cancel its loop first, which aborted the batch in
    hand uncommitted, and the next owner handled it again: CI saw offsets 298-302 twice.)"""
    topic = await new_topic("handover", partitions=1)
    group = unique("group")
    producer = EventProducer(stack.kafka)
    await producer.start()
    procs: list[subprocess.Popen[bytes]] = []
    out_a, out_b = tmp_path / "a.log", tmp_path / "b.log"
    try:
        produced = await produce(producer, topic, range(0, 12))
        a = spawn(stack, topic, group, out_a, handler_s=3.0)
        procs.append(a)
        await wait_until(lambda: _has_rows(out_a), timeout=60, interval=0.05)
        a.send_signal(signal.SIGTERM)  # the first batch is in the handler for 3 s more
        assert a.wait(60) == 0, logs(out_a)
        a_rows = read(out_a)
        at_stop = await committed(stack, group)
        assert a_rows, "the stopped member handled its batch"
        assert at_stop == {0: max(o for _, o, _, _ in a_rows) + 1}, (at_stop, logs(out_a))

        b = spawn(stack, topic, group, out_b, handler_s=0.0)
        procs.append(b)

        async def b_done() -> bool:
            return {s for _, _, s, _ in read(out_a) + read(out_b)} >= set(produced)

        await wait_until(b_done, timeout=60)
        b.send_signal(signal.SIGTERM)
        assert b.wait(60) == 0, logs(out_b)
        handled = Counter((p, o) for p, o, *_ in read(out_a) + read(out_b))
        assert sorted(handled) == sorted(produced.values()), logs(out_a, out_b)
        assert not [k for k, n in handled.items() if n > 1], logs(out_a, out_b)
        assert min(o for _, o, _, _ in read(out_b)) == at_stop[0]
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
        await producer.stop()


async def _has_rows(path: Path) -> bool:
    return bool(read(path))
