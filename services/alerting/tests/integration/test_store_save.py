"""A result's save is one SQL statement (decision 58) in the real PostgreSQL: it writes the
state, the groups, the series, the deliveries and the announcements (the outbox, decision
62) together or not at all, returns only the deliveries it inserted, and a row both written
and deleted since the last save is written (it exists in memory); an attempt is logged, its
delivery updated and its outcome's announcements written together."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest

from driftline_alerting.app import MIGRATIONS
from driftline_alerting.dispatch import Dispatcher
from driftline_alerting.rules import RuleEngine
from driftline_alerting.store import Store
from driftline_core.db import Database
from driftline_core.events import AlertEvent, decode


@pytest.fixture
async def store(stack, unique) -> Any:
    schema = unique("alerting_store")
    db = Database(stack.postgres, schema, migrations_dir=MIGRATIONS)
    await db.start()
    try:
        yield Store(db)
    finally:
        await db.stop()
        conn = await asyncpg.connect(stack.postgres.dsn())
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def tables(store: Store) -> dict[str, Any]:
    pool = store.db.pool
    dispatch = await pool.fetch("SELECT key, body FROM dispatch")
    series = await pool.fetch("SELECT fingerprint, body FROM series")
    return {
        "dispatch": {r["key"]: orjson.loads(r["body"]) for r in dispatch},
        "series": {r["fingerprint"]: orjson.loads(r["body"]) for r in series},
        "deliveries": sorted(r["id"] for r in await pool.fetch("SELECT id FROM deliveries")),
        "cooldowns": orjson.loads(await pool.fetchval("SELECT cooldowns FROM state") or "null"),
        "outbox": await outbox(store),
    }


async def outbox(store: Store) -> list[tuple[str, bytes | None, str]]:
    """(topic, key, fingerprint) of each row, in the relay's order."""
    rows = await store.db.pool.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
    return [(r["topic"], r["key"], decode(AlertEvent, r["value"]).fingerprint) for r in rows]


def event(fp: str) -> AlertEvent:
    return AlertEvent(tenant_id="acme", kind="firing", fingerprint=fp)


def delivery(i: str, text: str = "x") -> tuple[str, str, str, str, dict[str, Any]]:
    return (i, "acme", "hook", "notification", {"text": text})


async def test_one_statement_writes_everything_or_nothing(store: Store) -> None:
    engine, dispatcher = RuleEngine(), Dispatcher()
    first = await store._save(
        engine,
        [("fp1", {"v": 1}), ("fp2", {"v": 2})],
        [],
        [("g1", {"n": 1}), ("log:g1", {"seq": 1})],
        [],
        {"acme:m:r": 1.0},
        [delivery("d1"), delivery("d2")],
        [event("a1"), event("a2")],
    )
    assert [r["id"] for r in first] == ["d1", "d2"]  # in order, as claim_due returns them
    assert first[0]["attempts"] == 0
    announced = [(AlertEvent.TOPIC, b"acme:a1", "a1"), (AlertEvent.TOPIC, b"acme:a2", "a2")]
    assert await tables(store) == {
        "dispatch": {"g1": {"n": 1}, "log:g1": {"seq": 1}},
        "series": {"fp1": {"v": 1}, "fp2": {"v": 2}},
        "deliveries": ["d1", "d2"],
        "cooldowns": {"acme:m:r": 1.0},
        "outbox": announced,
    }
    # fp1 and g1 gone, fp2 and log:g1 both rewritten and (earlier) deleted: they exist now,
    # so they are written; d1 again is not inserted twice and not returned
    second = await store._save(
        engine,
        [("fp2", {"v": 3})],
        ["fp1", "fp2"],
        [("log:g1", {"seq": 2})],
        ["g1", "log:g1"],
        {},
        [delivery("d1"), delivery("d3")],
    )
    assert [r["id"] for r in second] == ["d3"]
    after = await tables(store)
    assert after == {
        "dispatch": {"log:g1": {"seq": 2}},
        "series": {"fp2": {"v": 3}},
        "deliveries": ["d1", "d2", "d3"],
        "cooldowns": {},
        "outbox": announced,
    }
    # a delivery PostgreSQL cannot store (a NUL in jsonb): nothing of the save is written
    with pytest.raises(asyncpg.PostgresError):
        await store._save(
            engine,
            [("fp9", {"v": 9})],
            ["fp2"],
            [("g9", {"n": 9})],
            [],
            {"other": 2.0},
            [delivery("d4", "bad\x00")],
            [event("a9")],
        )
    assert await tables(store) == after  # its announcement neither
    # and through save(), with the engine's and dispatcher's own (here empty) changes
    assert [r["id"] for r in await store.save(engine, dispatcher, {}, [delivery("d5")])] == ["d5"]
    assert (await tables(store))["deliveries"] == ["d1", "d2", "d3", "d5"]


async def test_an_attempt_is_logged_and_its_delivery_updated_together(store: Store) -> None:
    await store._save(RuleEngine(), [], [], [], [], {}, [delivery("d1")])
    await store.attempt("d1", 1, False, 503, "unavailable", 12.5, final=None, next_in_s=60)
    pool = store.db.pool
    row = await pool.fetchrow(
        "SELECT status, attempts, last_error, next_attempt_at > now() AS later FROM deliveries"
    )
    assert dict(row) == {
        "status": "pending",
        "attempts": 1,
        "last_error": "unavailable",
        "later": True,
    }
    assert await store.claim_due() == []  # not due before its backoff
    await store.attempt(
        "d1", 2, True, 200, None, 3.0, final="delivered", next_in_s=0, events=[event("d1")]
    )
    assert await outbox(store) == [(AlertEvent.TOPIC, b"acme:d1", "d1")]
    log = [
        dict(r)
        for r in await pool.fetch(
            "SELECT attempt, ok, status_code, error, duration_ms FROM delivery_attempts "
            "ORDER BY attempt"
        )
    ]
    assert log == [
        {
            "attempt": 1,
            "ok": False,
            "status_code": 503,
            "error": "unavailable",
            "duration_ms": 12.5,
        },
        {"attempt": 2, "ok": True, "status_code": 200, "error": None, "duration_ms": 3.0},
    ]
    row = await pool.fetchrow(
        "SELECT status, attempts, finished_at IS NOT NULL AS done FROM deliveries"
    )
    assert dict(row) == {"status": "delivered", "attempts": 2, "done": True}
    # an attempt of a delivery that does not exist writes nothing (the log's foreign key)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await store.attempt(
            "nope", 1, True, 200, None, 1.0, final="delivered", next_in_s=0, events=[event("x")]
        )
    assert len(await outbox(store)) == 1  # nor its announcement
