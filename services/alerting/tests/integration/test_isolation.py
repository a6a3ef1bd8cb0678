"""Against the real Kafka and PostgreSQL (issue 14, defects 6 and 11):

- a webhook secret is never stored or published in clear: plant one, make the deliveries
  fail to the last attempt, then search every table of every schema and every record every
  topic received since (the secret is minted by the test, so nothing older can hold it);
- a result that alerting cannot store (a NUL character in a label) is dead-lettered with the
  reason, and the results of the other tenants around it are all processed, and the state
  keeps being saved, both when the door check refuses it and when it slips through to the
  database (the state goes back to the last save and the consumer isolates the record)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from standardwebhooks.webhooks import Webhook

import driftline_alerting.runtime as runtime_module
from driftline_alerting.routing import AlertingConfig
from driftline_alerting.rules import Rule
from driftline_core.crypto.setup import build_keyring
from driftline_core.events import AlertEvent, DeadLetter, DriftResult, decode
from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.kafka.config import client_kwargs

from .results import drift_result

T0 = 1_795_000_000.0


def result(tenant: str, share: float, end: float, model: str, version: str = "3") -> DriftResult:
    return drift_result(tenant, share, end, model, version)


RULE = {
    "id": "share",
    "name": "DatasetDrift",
    "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
    "severity": "critical",
}


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def tables_holding(dsn: str, needle: str) -> list[str]:
    """Every table of every schema (system catalogues aside) whose rows, cast to text,
    contain `needle`. Returns the tables searched as "!schema.table" when none could be."""
    conn = await asyncpg.connect(dsn)
    try:
        names = await conn.fetch(
            "SELECT schemaname AS s, tablename AS t FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') UNION SELECT schemaname, matviewname FROM "
            "pg_matviews"
        )
        found, searched = [], 0
        for r in names:
            try:
                hit = await conn.fetchval(
                    f'SELECT 1 FROM "{r["s"]}"."{r["t"]}" x WHERE strpos(x::text, $1) > 0 LIMIT 1',
                    needle,
                )
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                continue  # another test dropped its schema meanwhile
            searched += 1
            if hit:
                found.append(f"{r['s']}.{r['t']}")
        assert searched >= 5, "the search reached too few tables to mean anything"
        return found
    finally:
        await conn.close()


def _decoded_payload(value: bytes | None) -> bytes:
    """The payload a dead letter carries as base64 (binary or cut records), decoded, so a
    secret cannot hide in it; b"" for anything else."""
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return b""
    if not isinstance(doc, dict) or doc.get("payload_encoding") != "base64":
        return b""
    try:
        return base64.b64decode(str(doc.get("payload") or ""), validate=False)
    except ValueError:
        return b""


async def topics_holding(stack, since_ms: int, needles: list[bytes]) -> tuple[list[str], int]:
    """Topics with a record written since `since_ms` whose key, value or headers contain a
    needle; and how many records were read."""
    c = AIOKafkaConsumer(**client_kwargs(stack.kafka), group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        meta = await c._client.fetch_all_metadata()
        parts = [
            TopicPartition(t, p)
            for t in meta.topics()
            for p in sorted(meta.partitions_for_topic(t) or [])
        ]
        starts = await c.offsets_for_times(dict.fromkeys(parts, since_ms))
        ends = await c.end_offsets(parts)
        todo = {tp: o.offset for tp, o in starts.items() if o is not None and o.offset < ends[tp]}
        found: set[str] = set()
        read = 0
        if not todo:
            return [], 0
        c.assign(list(todo))
        for tp, off in todo.items():
            c.seek(tp, off)
        left = set(todo)
        deadline = time.monotonic() + 120
        while left and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=500, max_records=5000)
            for tp, recs in batch.items():
                for rec in recs:
                    read += 1
                    blob = (rec.key or b"") + (rec.value or b"")
                    blob += b"".join(v or b"" for _, v in (rec.headers or ()))
                    blob += _decoded_payload(rec.value)  # a dead letter's base64 copy
                    if any(n in blob for n in needles):
                        found.add(tp.topic)
            for tp in list(left):
                if await c.position(tp) >= ends[tp]:
                    left.discard(tp)
        assert not left, f"could not read every topic to its end: {sorted(map(str, left))[:5]}"
        return sorted(found), read
    finally:
        await c.stop()


async def test_a_webhook_secret_is_found_nowhere_in_clear_after_failed_deliveries(
    stack, make_alerting, receiver, unique, topic_reader, wait_until
):
    since_ms = int(time.time() * 1000) - 1000
    tenant = unique("t")
    planted = whsec()  # signs both the notifications and the retrain call
    receiver.secret = planted
    receiver.plan = [500] * 50  # every attempt fails: both deliveries end in the DLQ
    dlq = await topic_reader(DeadLetter.TOPIC)
    ring = build_keyring(stack.postgres, stack.kek, "alerting-secret-test")
    await ring.database.start()
    try:
        async with make_alerting(cipher=ring.cipher, max_attempts=2) as a:
            rule = {
                **RULE,
                "remediation": {
                    "command": False,
                    "webhook": receiver.url + "/retrain",
                    "webhook_secret": planted,
                },
            }
            cfg = AlertingConfig.model_validate(
                {
                    "route": {"receiver": "hook", "group_wait_s": 0, "group_interval_s": 0.2},
                    "receivers": [
                        {
                            "name": "hook",
                            "type": "webhook",
                            "url": receiver.url + "/alerts",
                            "secrets": [planted],
                            "format": "driftline",  # the payload with the rule's remediation
                        }
                    ],
                }
            )
            await a.runtime.store.put_rule(tenant, Rule.model_validate(rule), "test")
            await a.runtime.store.put_config(tenant, cfg, "test")
            a.runtime.rules = await a.runtime.store.rules()
            a.runtime.configs = await a.runtime.store.configs()
            await a.runtime.handle(
                [Message(DriftResult.TOPIC, 0, 0, None, 0, result(tenant, 0.9, T0, "credit"))]
            )

            def mine(rs):
                return [d for r in rs if (d := decode(DeadLetter, r.value)).tenant_id == tenant]

            dead = mine(await dlq.read(until=lambda rs: len(mine(rs)) >= 2, timeout=60))
            assert sorted(orjson.loads(d.payload).get("receiver", "retrain") for d in dead) == [
                "hook",
                "retrain",
            ]
            assert all("after 2 attempt(s)" in d.reason for d in dead)
            # the secret was used (resolved at send time): every attempt verifies with it
            retrain = [h for h in receiver.hits if h.headers["webhook-id"].startswith("rtr_")]
            assert len(retrain) == 2
            for h in retrain:
                Webhook(planted).verify(h.body, h.headers)
            assert len(receiver.hits) == 4
            assert all(h.verified for h in receiver.hits)

        key_part = planted.removeprefix("whsec_")
        assert await tables_holding(stack.postgres.dsn(), key_part) == []
        needles = [key_part.encode(), key_part.replace("/", "\\/").encode()]
        found, read = await topics_holding(stack, since_ms, needles)
        assert read >= 2  # at least the two dead letters were searched
        assert found == []
    finally:
        await ring.database.stop()


@pytest.mark.parametrize("door", [True, False], ids=["refused-at-the-door", "save-fails"])
async def test_a_nul_label_is_dead_lettered_and_every_other_tenant_goes_on(
    stack, make_alerting, new_topic, unique, topic_reader, wait_until, monkeypatch, door
):
    if not door:  # let it through to PostgreSQL: the save fails, the state must recover
        monkeypatch.setattr(runtime_module, "nul_path", lambda v, path="": None)
    tenants = [unique("t") for _ in range(4)]
    evil = unique("evil")
    topic = await new_topic("drift")
    dlq = await topic_reader(DeadLetter.TOPIC)
    alerts = await topic_reader(AlertEvent.TOPIC)
    producer = EventProducer(stack.kafka)
    await producer.start()
    async with make_alerting(topics={topic: "drift"}) as a:
        for t in [*tenants, evil]:
            await a.runtime.store.put_rule(t, Rule.model_validate(RULE), "test")
        a.runtime.rules = await a.runtime.store.rules()
        loop = ConsumerLoop(
            stack.kafka,
            topics=[topic],
            group_id=unique("g"),
            handler=a.runtime.handle,
            dlq=producer,
            models={topic: DriftResult},
        )
        await loop.start()
        try:
            # the poison lands among results of the others, one batch before and one after
            expected: set[tuple[str, str]] = set()
            batch: list[DriftResult] = []
            for i, t in enumerate(tenants):
                batch.append(result(t, 0.9, T0, f"m{i}-before"))
                expected.add((t, f"m{i}-before"))
            batch.append(result(evil, 0.9, T0, "credit", version="1\u0000x"))
            for i, t in enumerate(tenants):
                batch.append(result(t, 0.9, T0, f"m{i}-after"))
                expected.add((t, f"m{i}-after"))
            for r in batch:
                await producer.send(r, topic=topic)
            task = asyncio.create_task(loop.run())
            try:

                def dead_of(rs):
                    return [
                        d for r in rs if (d := decode(DeadLetter, r.value)).source_topic == topic
                    ]

                [dead] = dead_of(await dlq.read(until=lambda rs: bool(dead_of(rs)), timeout=60))
                assert dead.source_topic == topic
                if door:
                    assert "NUL character" in dead.reason
                    assert "model_version" in dead.reason
                else:  # PostgreSQL: "\u0000 cannot be converted to text"
                    assert dead.error_type == "UntranslatableCharacterError", dead.reason
                    assert a.runtime.restores >= 1
                assert orjson.loads(dead.payload)["tenant_id"] == evil

                def fired(rs):
                    return {
                        (e.tenant_id, e.labels["model"])
                        for r in rs
                        if (e := decode(AlertEvent, r.value)).kind == "firing"
                        and e.tenant_id in tenants
                    }

                seen = fired(await alerts.read(until=lambda rs: fired(rs) >= expected, timeout=60))
                assert seen == expected  # every innocent result processed, each once

                # and state saves still work: later results of every tenant are stored
                later = [result(t, 0.9, T0, f"m{i}-later") for i, t in enumerate(tenants)]
                for r in later:
                    await producer.send(r, topic=topic)

                async def stored() -> bool:
                    n = await a.db.pool.fetchval("SELECT count(*) FROM series")
                    return int(n) == 3 * len(tenants)

                await wait_until(stored, timeout=60)
                assert len(dead_of(await dlq.read(timeout=3))) == 1  # only the guilty one
                state = await a.runtime.store.load_state()
                assert state is not None
                seen_models = {(t, m) for t, m, _ in state["engine"]["last_seen"]}
                assert {(t, f"m{i}-later") for i, t in enumerate(tenants)} <= seen_models
                assert all(t != evil for t, _ in seen_models)
            finally:
                await loop.stop()
                task.cancel()
        finally:
            await producer.stop()
