"""Audit: records per second into the hash chain (Kafka -> decode -> encrypt -> chain ->
PostgreSQL, one consumer), and records per second verified (read from PostgreSQL, rehash,
check links and signed checkpoints)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import record, table

from driftline_audit.app import build, signing_key
from driftline_audit.parallel import ParallelVerifier
from driftline_audit.segments import VERIFY_SELECT
from driftline_audit.settings import AuditOptions, AuditSettings
from driftline_audit.sources import to_item
from driftline_audit.trail import Trail
from driftline_core.auditchain import verify
from driftline_core.events import Actor, AuditRecord, Resource
from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.kafka.config import client_kwargs

N = 20_000
TENANTS = 4


async def main() -> dict[str, float]:
    settings = AuditSettings(
        environment="test",
        audit=AuditOptions(group_id=f"bench-{uuid.uuid4().hex[:6]}", checkpoint_every_records=5000),
    )
    deps = build(settings)
    await deps.core.database.start()
    await deps.keyring.database.start()
    await deps.core.producer.start()
    topic = f"bench.audit.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    tenants = [f"bench{uuid.uuid4().hex[:8]}" for _ in range(TENANTS)]
    try:
        producer = EventProducer(settings.kafka)
        await producer.start()
        events = [
            AuditRecord(
                tenant_id=tenants[i % TENANTS],
                service="bench",
                actor=Actor(type="user", id=f"user:u{i % 13}", ip="10.1.2.3"),
                action="model.update",
                resource=Resource(type="model", id=f"m{i % 50}"),
                details={"i": i, "change": {"threshold": 0.1 * (i % 7)}},
            )
            for i in range(N)
        ]
        for i in range(0, N, 2000):
            await producer.send_many(events[i : i + 2000], topic=topic)
        await producer.stop()

        stored = 0
        done = asyncio.Event()

        async def handle(msgs: list[Message[AuditRecord]]) -> None:
            nonlocal stored
            items = [x for x in map(to_item, msgs) if x is not None]
            stored += await deps.trail.append(items)
            if stored >= N:
                done.set()

        loop = ConsumerLoop[AuditRecord](
            settings.kafka,
            topics=[topic],
            group_id=settings.audit.group_id,
            handler=handle,
            dlq=deps.core.producer,
            models={topic: AuditRecord},
        )
        await loop.start()
        t0 = time.perf_counter()
        task = asyncio.create_task(loop.run())
        await asyncio.wait_for(done.wait(), 300)
        ingest_s = time.perf_counter() - t0
        await loop.stop()
        task.cancel()
        await deps.trail.flush()

        # the service's path (GET /v1/audit/verify without payload decryption): read + verify
        # in the service's process (the default since decision 51), against the opt-in
        # parallel path (parallel_verify_workers=2: one worker process per core, started
        # before, as the service starts it); best of 3 rounds each, in this one run. CPU
        # seconds are this process's (the workers' own are not in them): on a shared box
        # the wall clock measures the load as much as the code
        assert deps.runner.parallel is not None
        assert not deps.runner.parallel.worth_it(N)
        parallel = ParallelVerifier(
            settings.postgres.model_copy(
                update={
                    "user": settings.audit.writer_user,
                    "password": settings.audit.writer_password,
                }
            ),
            "audit",
            VERIFY_SELECT,
            workers=2,
            min_records=settings.audit.parallel_verify_min_records,
        )
        await asyncio.to_thread(parallel.start)
        opt_in = Trail(
            deps.core.database,
            deps.keyring.cipher,
            signing_key(settings),
            "k",
            parallel=parallel,
        )

        async def reference(t: str) -> dict[str, Any]:
            # the path before issue 17's wave 4: the whole range in one query, rows read by
            # name, `verify` hashing each through a dict comprehension (the same verdict)
            rows = await deps.trail.rows(t)
            return verify(rows, await deps.trail.checkpoints(t), deps.trail.public_key).as_dict()

        async def service(t: str) -> dict[str, Any]:
            return await deps.trail.verify_range(t, authenticate=False)

        async def opt_in_path(t: str) -> dict[str, Any]:
            return await opt_in.verify_range(t, authenticate=False)

        paths = {"service": service, "parallel": opt_in_path, "reference": reference}
        timings: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(5):  # interleaved, so each path meets the same load
            for name, path in paths.items():
                t0, c0 = time.perf_counter(), time.process_time()
                answers = [await path(t) for t in tenants]
                timings[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                assert all(a["ok"] for a in answers), answers
                assert sum(a["records"] for a in answers) == N
        parallel.stop()
        service_s = min(timings["service"])
        parallel_s = min(timings["parallel"])
        reference_s = min(timings["reference"])
        # the same, split into reading and hashing
        t0 = time.perf_counter()
        entries, cps = [], []
        for t in tenants:
            entries += await deps.trail.rows(t)
            cps += await deps.trail.checkpoints(t)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        v = verify(entries, cps, deps.trail.public_key)
        verify_s = time.perf_counter() - t0
        assert v.ok, v.first_break
        assert v.records == N
        return {
            "audit_records": N,
            "audit_tenants": TENANTS,
            "audit_records_per_s": round(N / ingest_s, 1),
            "audit_verify_records_per_s": round(N / service_s, 1),
            "audit_verify_records_per_cpu_s": round(N / min(cpu["service"]), 1),
            "audit_verify_records_per_s_median": round(
                N / statistics.median(timings["service"]), 1
            ),
            "audit_verify_reference_records_per_s": round(N / reference_s, 1),
            "audit_verify_reference_records_per_cpu_s": round(N / min(cpu["reference"]), 1),
            "audit_verify_speedup_vs_reference": round(reference_s / service_s, 2),
            "audit_verify_cpu_ratio_vs_reference": round(
                min(cpu["service"]) / min(cpu["reference"]), 2
            ),
            "audit_verify_parallel_opt_in_records_per_s": round(N / parallel_s, 1),
            "audit_verify_parallel_speedup": round(service_s / parallel_s, 2),
            "audit_verify_parallel_workers": parallel.workers,
            "audit_verify_read_and_hash_records_per_s": round(N / (read_s + verify_s), 1),
            "audit_verify_cpu_only_records_per_s": round(N / verify_s, 1),
            "audit_verify_read_s": round(read_s, 3),
            "audit_verify_cpu_s": round(verify_s, 3),
            "audit_checkpoints": len(cps),
        }
    finally:
        await admin.delete_topics([topic])
        await admin.close()
        await deps.core.producer.stop()
        await deps.keyring.database.stop()
        await deps.core.database.stop()


if __name__ == "__main__":
    figures = asyncio.run(main())
    table("Audit trail", figures)
    record("audit", figures)
