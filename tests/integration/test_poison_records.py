"""Issue 18 item 3, against the real broker and PostgreSQL: on every consumed topic of the
catalogue, poison records produced raw (truncated JSON, invalid UTF-8, a record near the
broker's maximum size, valid JSON of the wrong schema, 100,000 features, a tenant that does
not exist) each go to the DLQ with a reason, the valid record sent after them is handled,
and the consumer keeps running. One parametrised test over `catalogue.TOPICS`, so a topic
added later is covered (and the oversized-record fix of issue 14 holds on each)."""

from __future__ import annotations

import asyncio
import itertools
import string
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from driftline_core.db.pool import Database
from driftline_core.events import DeadLetter, decode
from driftline_core.events.catalogue import TOPICS
from driftline_core.kafka import ConsumerLoop, EventProducer, Message, RetryPolicy
from driftline_core.kafka.config import client_kwargs
from driftline_core.observability.metrics import CoreMetrics
from driftline_core.tenants import Tenants
from driftline_ingestion.app import MIGRATIONS as INGESTION_MIGRATIONS

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
WINDOW = {"start": NOW.isoformat(), "end": (NOW + timedelta(hours=1)).isoformat(), "events": 0}


def valid(topic: str, tenant: str, marker: str) -> dict[str, Any]:
    """A valid event of the topic's model; `marker` tells the handler which one it got."""
    base: dict[str, Any] = {"tenant_id": tenant}
    per_topic: dict[str, Callable[[], dict[str, Any]]] = {
        "driftline.predictions.v1": lambda: {
            "model_id": marker,
            "model_version": "1",
            "features": {"age": 31.0},
            "prediction": 1,
        },
        "driftline.actuals.v1": lambda: {
            "model_id": marker,
            "prediction_event_id": str(uuid.uuid4()),
            "actual": 1,
        },
        "driftline.registry.v1": lambda: {
            "model_id": marker,
            "change": "model_registered",
            "actor": "test",
        },
        "driftline.drift.v1": lambda: {
            "model_id": marker,
            "model_version": "1",
            "window": WINDOW,
            "features": [],
            "drifted_share": 0.0,
            "dataset_drift": False,
        },
        "driftline.quality.v1": lambda: {
            "model_id": marker,
            "model_version": "1",
            "window": WINDOW,
            "features": [],
            "quality_score": 1.0,
        },
        "driftline.performance.v1": lambda: {
            "model_id": marker,
            "model_version": "1",
            "window": WINDOW,
            "task": "classification",
            "labelled": 0,
            "metrics": {},
        },
        "driftline.alerts.v1": lambda: {"kind": "firing", "fingerprint": marker},
        "driftline.remediation.v1": lambda: {
            "model_id": marker,
            "rule_id": "r1",
            "reason": "drift",
        },
        "driftline.audit.v1": lambda: {
            "service": "test",
            "actor": {"type": "system", "id": "test"},
            "action": marker,
            "resource": {"type": "model", "id": "m"},
        },
        "driftline.reports.v1": lambda: {
            "report_id": str(uuid.uuid4()),
            "kind": "requested",
            "framework": "gdpr",
            "period_start": NOW.isoformat(),
            "period_end": (NOW + timedelta(days=1)).isoformat(),
            "actor": marker,
        },
        "driftline.revocations.v1": lambda: {"kind": "api_key", "subject": "k1", "actor": marker},
    }
    return base | per_topic[topic]()


def marker_of(value: Any) -> str:
    for field in ("model_id", "fingerprint", "action", "actor"):
        if isinstance(got := getattr(value, field, None), str):
            return got
    raise AssertionError(f"no marker in {value!r}")


def short_names(n: int) -> list[str]:
    """n distinct three-character names (so 100,000 features fit in one record)."""
    return ["".join(t) for t in itertools.islice(itertools.product(ALPHABET, repeat=3), n)]


ALPHABET = string.ascii_letters + string.digits
CONSUMED = [t for t in TOPICS if t.name != DeadLetter.TOPIC]  # nothing consumes the DLQ


@pytest.fixture(scope="module")
async def tenants(stack) -> AsyncIterator[tuple[Database, str]]:
    db = Database(stack.postgres, "ingestion", migrations_dir=INGESTION_MIGRATIONS)
    await db.start()
    tenant = f"poison-{uuid.uuid4().hex[:10]}"
    await db.pool.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant
    )
    yield db, tenant
    await db.stop()


async def read_dlq(stack, topic: str, *, expect: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(stack.kafka),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < expect:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(decode(DeadLetter, r.value) for r in records)
    finally:
        await consumer.stop()
    return found


@pytest.mark.parametrize("spec", CONSUMED, ids=[t.name for t in CONSUMED])
async def test_every_poison_record_is_dead_lettered_with_a_reason_and_the_next_valid_one_is_handled(
    stack, tenants, new_topic, unique, wait_until, spec
):
    db, tenant = tenants
    spec.model.model_validate(valid(spec.name, tenant, "check"))  # the valid one is valid
    topic, dlq_topic, group = await new_topic("poison"), await new_topic("dlq"), unique("g")
    good = orjson.dumps(valid(spec.name, tenant, "before"))
    ghost = f"ghost-{uuid.uuid4().hex[:10]}"  # never created
    many = valid(spec.name, tenant, "many") | {"features": dict.fromkeys(short_names(100_000), 0)}
    poison: dict[str, bytes] = {
        "truncated": good[: len(good) // 2],
        "invalid_utf8": b'{"tenant_id": "' + tenant.encode() + b'", "model_id": "\xff\xfe"}',
        "near_max_size": orjson.dumps([0.5] * 240_000),  # ~960 KB, under the 1 MiB limit
        "wrong_schema": orjson.dumps({"tenant_id": tenant, "hello": "world"}),
        "many_features": orjson.dumps(many),
        "unknown_tenant": orjson.dumps(valid(spec.name, ghost, "ghost")),
    }
    assert 900_000 < len(poison["near_max_size"]) < 1_000_000
    producer = EventProducer(stack.kafka)
    await producer.start()
    try:
        offsets = {"before": (await producer.send_raw(topic, good, key=tenant.encode())).offset}
        for name, value in poison.items():
            offsets[name] = (await producer.send_raw(topic, value, key=tenant.encode())).offset
        after = orjson.dumps(valid(spec.name, tenant, "after"))
        offsets["after"] = (await producer.send_raw(topic, after, key=tenant.encode())).offset
    finally:
        await producer.stop()

    seen: list[str] = []

    async def handle(batch: list[Message[Any]]) -> None:
        seen.extend(marker_of(m.value) for m in batch)

    metrics = CoreMetrics(CollectorRegistry(), "test")
    dlq = EventProducer(stack.kafka)
    await dlq.start()
    loop = ConsumerLoop[Any](
        stack.kafka,
        topics=[topic],
        group_id=group,
        handler=handle,
        dlq=dlq,
        dlq_topic=dlq_topic,
        models={topic: spec.model},
        metrics=metrics,
        retry=RetryPolicy(initial_s=0.05, max_s=0.2),
        tenants=Tenants(db, schema="ingestion"),
    )
    await loop.start()
    task = asyncio.create_task(loop.run())
    try:

        async def covered() -> bool:
            assert not task.done(), task  # the consumer keeps running
            committed = await loop.consumer.committed(TopicPartition(topic, 0))
            return committed == offsets["after"] + 1

        await wait_until(covered, timeout=60)
        assert loop.runtime.failure is None
    finally:
        await loop.stop()
        await asyncio.gather(task, return_exceptions=True)
        await dlq.stop()

    # 100,000 features: over MAX_FEATURES for predictions, the wrong type for the window
    # results (a list there); a model without features ignores the field (a valid event)
    has_features = "features" in spec.model.model_fields
    expected_seen = ["before", "after"] if has_features else ["before", "many", "after"]
    assert seen == expected_seen
    dead_names = [n for n in poison if n != "many_features" or has_features]
    letters = {d.source_offset: d for d in await read_dlq(stack, dlq_topic, expect=len(dead_names))}
    assert sorted(letters) == sorted(offsets[n] for n in dead_names)
    expected_type = {
        "truncated": "invalid_json",
        "invalid_utf8": "invalid_json",
        "near_max_size": "schema_mismatch",
        "wrong_schema": "schema_mismatch",
        "many_features": "schema_mismatch",
        "unknown_tenant": "unknown_tenant",
    }
    for name in dead_names:
        letter = letters[offsets[name]]
        assert (letter.source_topic, letter.error_type) == (topic, expected_type[name]), name
        assert letter.reason, name
        assert len(letter.reason) < 5000, name
    assert ghost in letters[offsets["unknown_tenant"]].reason
    assert metrics.dlq_records.labels(topic, "unknown_tenant")._value.get() == 1


async def test_the_services_dead_letter_records_of_a_tenant_that_does_not_exist(
    stack, apps, topic_reader, wait_until
):
    """The services' own consumers (audit, compliance-report, alerting): a record naming a
    tenant that was never created leaves no audit record, data key or alert behind, and is
    in the DLQ with the reason (issue 18: 18 audit records and 12 data keys before)."""
    from driftline_core.events import AuditRecord, DriftResult
    from driftline_core.events import alerts as alerts_topic

    ghost = f"ghost-{uuid.uuid4().hex[:10]}"
    dlq = await topic_reader(DeadLetter.TOPIC)
    producer = EventProducer(stack.kafka)
    await producer.start()
    try:
        sent = {
            AuditRecord.TOPIC: await producer.send(
                AuditRecord.model_validate(valid(AuditRecord.TOPIC, ghost, "ghost.action"))
            ),
            DriftResult.TOPIC: await producer.send(
                DriftResult.model_validate(valid(DriftResult.TOPIC, ghost, "ghost-model"))
            ),
            alerts_topic.TOPIC: await producer.send(
                alerts_topic.AlertEvent.model_validate(valid(alerts_topic.TOPIC, ghost, "fp"))
            ),
        }
    finally:
        await producer.stop()

    def letters(records: list[Any]) -> list[DeadLetter]:
        found = [decode(DeadLetter, r.value) for r in records]
        return [d for d in found if d.error_type == "unknown_tenant" and ghost in d.reason]

    got = letters(await dlq.read(until=lambda rs: len({d.source_topic for d in letters(rs)}) >= 3))
    assert {d.source_topic for d in got} >= set(sent), got
    assert all(d.tenant_id == ghost and d.source_offset is not None for d in got)
    db = Database(stack.postgres, "audit")
    await db.start()
    try:
        assert (
            await db.pool.fetchval(
                'SELECT count(*) FROM "audit".records WHERE tenant_id = $1', ghost
            )
            == 0
        )
        keys = await db.pool.fetchval(
            'SELECT count(*) FROM "keyring".data_keys WHERE tenant_id = $1', ghost
        )
        assert keys == 0
    finally:
        await db.stop()
