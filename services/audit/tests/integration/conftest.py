"""The audit app in-process against the real stack, tenants with auditor keys, and a
superuser connection for the tampering tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from driftline_audit.app import AuditDeps, build, create_app
from driftline_audit.settings import AuditOptions, AuditSettings
from driftline_audit.trail import Item
from driftline_core.auth import ApiKeys
from driftline_core.db import Database
from driftline_ingestion.app import MIGRATIONS as INGESTION_MIGRATIONS

ROOT = Path(__file__).resolve().parents[4]


def audit_settings(**opts: Any) -> AuditSettings:
    opts.setdefault("archive_dir", str(ROOT / ".stack" / "test-archive" / uuid.uuid4().hex[:8]))
    return AuditSettings(
        environment="test",
        audit=AuditOptions(
            group_id=f"audit-test-{uuid.uuid4().hex[:8]}",
            checkpoint_every_records=10**9,
            checkpoint_every_s=3600,
            **opts,
        ),
    )


@pytest.fixture(scope="module")
async def audit_app(stack) -> AsyncIterator[tuple[httpx.AsyncClient, AuditDeps]]:
    """Consumes a topic of its own (empty), so the access records its API emits do not land
    in the test tenants' chains while the tests tamper with them."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from driftline_core.kafka.config import client_kwargs

    topic = f"test.audit.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(stack.kafka))
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    try:
        async for x in _audit_app(topic):
            yield x
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def _audit_app(topic: str) -> AsyncIterator[tuple[httpx.AsyncClient, AuditDeps]]:
    s = audit_settings(topics=[topic])
    deps = build(s)
    app = create_app(s, deps)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as m,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=m.app), base_url="http://audit", timeout=30
        ) as c,
    ):
        yield c, deps


@pytest.fixture(scope="module")
async def registry_db(stack) -> AsyncIterator[Database]:
    db = Database(stack.postgres, "ingestion", migrations_dir=INGESTION_MIGRATIONS)
    await db.start()
    yield db
    await db.stop()


@pytest.fixture
def new_tenant(registry_db):
    """`await new_tenant()` -> (tenant id, {"auditor": key, "viewer": key})."""

    async def make() -> tuple[str, dict[str, str]]:
        keys = ApiKeys(registry_db)
        tid = f"t{uuid.uuid4().hex[:10]}"
        await keys.create_tenant(tid, tid)
        _, auditor = await keys.create(tid, "auditor", {"audit", "read"}, "test")
        _, viewer = await keys.create(tid, "viewer", {"read"}, "test")
        return tid, {"auditor": auditor, "viewer": viewer}

    return make


def items(tenant: str, n: int, start: int = 0, age_days: float = 0) -> list[Item]:
    return [
        Item(
            tenant_id=tenant,
            source_id=uuid.uuid4(),
            source_topic="driftline.audit.v1",
            service="test",
            occurred_at=datetime.now(UTC) - timedelta(days=age_days),
            actor=f"user:u{i % 3}",
            action="model.update" if i % 2 else "model.create",
            resource_type="model",
            resource_id=f"m{i % 5}",
            outcome="success",
            payload=orjson.dumps({"i": start + i, "secret": f"value-{start + i}"}),
        )
        for i in range(n)
    ]
