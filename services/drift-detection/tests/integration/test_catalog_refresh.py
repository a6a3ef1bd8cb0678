"""Two drift processes' catalogs over one models table (real PostgreSQL): the registry
consumer is a group, so each process handles the changes of its own registry partitions
only; the other process takes them in from the table (`ModelCatalog.refresh`): a model
registered, a monitoring change and a deletion made through one catalog reach the other.
Without it, a model registered while both processes ran stayed unknown to one of them, and
its events there were dead-lettered `unknown_model` (the faults-under-load test)."""

from __future__ import annotations

import asyncpg
import pytest

from driftline_core.db import Database
from driftline_core.events import RegistryChange
from driftline_core.kafka import Message
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog

from .conftest import references


@pytest.fixture
async def db(stack, unique):
    schema = unique("cat")
    database = Database(stack.postgres, schema, migrations_dir=MIGRATIONS)
    await database.start()
    yield database
    await database.stop()
    conn = await asyncpg.connect(stack.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


def change(kind: str, **details: object) -> list[Message[RegistryChange]]:
    ev = RegistryChange(tenant_id="t", model_id="m", change=kind, actor="test", details=details)
    return [Message(topic="r", partition=0, offset=0, key=None, timestamp_ms=0, value=ev)]


async def test_a_change_handled_by_one_process_reaches_the_other(db):
    owner, other = ModelCatalog(db, 0.01), ModelCatalog(db, 0.01)
    await owner.load()
    await other.load()
    assert await other.refresh() == 0  # nothing stored yet

    await owner.handle(
        change(
            "reference_profile_updated",
            references=references(seed=3),
            monitoring={"window": {"seconds": 60, "grace_seconds": 0}},
        )
    )
    assert ("t", "m") in owner.models
    assert ("t", "m") not in other.models
    assert await other.refresh() == 1
    assert other.models[("t", "m")].monitoring.window.seconds == 60
    assert await other.refresh() == 0  # taken in once

    await owner.handle(change("monitoring_config_changed", monitoring={"window": {"seconds": 120}}))
    assert await other.refresh() == 1
    assert other.models[("t", "m")].monitoring.window.seconds == 120
    # the owner's own row is what it built: nothing to take in again
    assert await owner.refresh() == 0

    await owner.handle(change("model_deleted"))
    assert ("t", "m") not in owner.models
    assert await other.refresh() == 1
    assert ("t", "m") not in other.models
    await owner.stop()
    await other.stop()
