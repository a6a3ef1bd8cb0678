"""The revocations listener against the real broker and PostgreSQL (decision 37): a key
revoked through one ApiKeys (the ingestion process) stops verifying through another whose
cache would keep it for an hour, as soon as the revocation record arrives; an erased
tenant's cached data keys are dropped; poison records on the topic go to the DLQ with a
reason and the listener keeps applying the next revocation. Across real processes:
tests/e2e/test_revocation.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from driftline_core.auth import ApiKeys
from driftline_core.auth.revocations import RevocationListener, RevocationPublisher
from driftline_core.db.pool import Database
from driftline_core.events import DeadLetter, decode
from driftline_core.kafka import EventProducer
from driftline_core.observability.metrics import CoreMetrics
from driftline_core.tenants import Tenants
from driftline_ingestion.app import MIGRATIONS as INGESTION_MIGRATIONS

HOUR = 3600.0


class Keyring:
    """Records which tenants' keys the listener told it to forget (DataKeyring.forget)."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, tenant_id: str) -> None:
        self.forgotten.append(tenant_id)


@pytest.fixture
async def db(stack) -> AsyncIterator[Database]:
    d = Database(stack.postgres, "ingestion", migrations_dir=INGESTION_MIGRATIONS)
    await d.start()
    yield d
    await d.stop()


async def tenant_with_key(keys: ApiKeys) -> tuple[str, str, str]:
    tenant = f"rv-{uuid.uuid4().hex[:10]}"
    await keys.create_tenant(tenant, tenant)
    key_id, key = await keys.create(tenant, "k", {"read"}, "test")
    return tenant, key_id, key


async def gone_within(keys: ApiKeys, key: str, timeout_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if await keys.verify(key) is None:
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    raise AssertionError(f"the key still verifies {timeout_s} s after its revocation")


async def test_a_revocation_reaches_another_process_cache_at_once_and_survives_poison(
    stack, db, new_topic
):
    topic, dlq_topic = await new_topic("revocations"), await new_topic("dlq")
    producer = EventProducer(stack.kafka)
    await producer.start()
    here = ApiKeys(db, cache_ttl_s=HOUR)  # the process that revokes (ingestion)
    here.revocations = RevocationPublisher(producer, "test", topic=topic)
    there = ApiKeys(db, cache_ttl_s=HOUR)  # another process: its cache would keep the key
    ring = Keyring()
    metrics = CoreMetrics(CollectorRegistry(), "test")
    listener = RevocationListener(
        stack.kafka,
        service="test",
        keys=there,
        dlq=producer,
        keyring=ring,  # type: ignore[arg-type]
        metrics=metrics,
        topic=topic,
        dlq_topic=dlq_topic,
        tenants=Tenants(db, schema="ingestion"),
    )
    await listener.start()
    try:
        (check,) = listener.checks()
        with pytest.raises(Exception, match="no partition yet"):
            await check.probe()
        await asyncio.wait_for(listener.positioned.wait(), 30)
        await check.probe()  # ready once positioned

        tenant, key_id, key = await tenant_with_key(here)
        assert await there.verify(key) is not None  # cached for an hour
        assert await here.revoke(tenant, key_id, actor="key:admin")
        took = await gone_within(there, key, 5)
        assert took < 1.5, took

        # poison on the topic: each to the DLQ with a reason, and the listener goes on
        poison = {
            "truncated": b'{"tenant_id": "' + tenant.encode(),
            "wrong_schema": orjson.dumps({"tenant_id": tenant, "kind": "everything"}),
            "unknown_tenant": orjson.dumps(
                {"tenant_id": "ghost-" + uuid.uuid4().hex[:8], "kind": "tenant", "subject": "x"}
            ),
        }
        for value in poison.values():
            await producer.send_raw(topic, value, key=tenant.encode())

        # then an erasure: the next revocation is applied, the tenant's data keys dropped
        tenant2, _, key2 = await tenant_with_key(here)
        assert await there.verify(key2) is not None
        await db.pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1", tenant2
        )
        await here.tenant_erased(tenant2, actor="platform-admin")
        took2 = await gone_within(there, key2, 5)
        assert took2 < 1.5, took2

        async def applied() -> bool:
            return tenant2 in ring.forgotten

        deadline = time.monotonic() + 10
        while not await applied():
            assert time.monotonic() < deadline, ring.forgotten
            await asyncio.sleep(0.05)
        assert ring.forgotten == [tenant2]  # only the erased tenant, not the revoked key's
        assert listener.received == 2
        assert listener.loop.runtime.failure is None
        await check.probe()
    finally:
        await listener.stop()
    letters = await read_all(stack, dlq_topic, expect=len(poison))
    assert sorted(d.error_type for d in letters) == [
        "invalid_json",
        "schema_mismatch",
        "unknown_tenant",
    ]
    assert all(d.reason and d.source_topic == topic for d in letters)
    await producer.stop()


async def read_all(stack: Any, topic: str, *, expect: int) -> list[DeadLetter]:
    from aiokafka import AIOKafkaConsumer

    from driftline_core.kafka.config import client_kwargs

    c = AIOKafkaConsumer(
        topic, **client_kwargs(stack.kafka), group_id=None, auto_offset_reset="earliest"
    )
    await c.start()
    found: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + 30
        while len(found) < expect and time.monotonic() < deadline:
            for records in (await c.getmany(timeout_ms=500)).values():
                found.extend(decode(DeadLetter, r.value) for r in records)
    finally:
        await c.stop()
    return found


async def test_publishing_without_kafka_is_logged_not_raised(stack, db):
    """The revocation stands (it is in PostgreSQL); other processes fall back to the TTL."""
    producer = EventProducer(stack.kafka)  # never started: every send fails at once
    keys = ApiKeys(db)
    keys.revocations = publisher = RevocationPublisher(producer, "test", timeout_s=1)
    tenant, key_id, key = await tenant_with_key(keys)
    assert await keys.verify(key) is not None
    assert await keys.revoke(tenant, key_id)
    assert await keys.verify(key) is None
    assert publisher.failures == 1
