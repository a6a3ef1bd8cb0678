"""Alerts from results to real receivers: signed webhooks (Alertmanager payload), e-mail over
STARTTLS with authentication, retries through failures and a timeout with one idempotency
key, the DLQ after the last attempt, retraining, and a restart that sends nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from driftline_alerting.routing import AlertingConfig
from driftline_alerting.rules import Rule
from driftline_alerting.runtime import AlertingRuntime
from driftline_alerting.store import Store
from driftline_core.audit import AuditEmitter
from driftline_core.events import (
    AlertEvent,
    AuditRecord,
    DeadLetter,
    DriftResult,
    RetrainRequested,
    decode,
)
from driftline_core.kafka import ConsumerLoop, EventProducer, Message

from .conftest import SECRET_NEW, SECRET_OLD
from .results import drift_result

T0 = 1_795_000_000.0


def result(tenant: str, share: float, end: float, model: str = "credit") -> DriftResult:
    return drift_result(tenant, share, end, model)


def msg(r: DriftResult, offset: int = 0) -> Message:
    return Message(DriftResult.TOPIC, 0, offset, None, 0, r)


RULE = {
    "id": "share",
    "name": "DatasetDrift",
    "condition": {"metric": "drift.drifted_share", "op": ">=", "value": 0.5},
    "severity": "critical",
    "annotations": {"summary": "{value:.0%} of {model} drifted", "runbook_url": "https://rb/1"},
}


def config(receiver, smtp=None, **webhook) -> AlertingConfig:
    receivers = [
        {
            "name": "hook",
            "type": "webhook",
            "url": receiver.url + "/alerts",
            "secrets": [SECRET_OLD, SECRET_NEW],  # rotating: the receiver knows the new one
            "timeout_s": 1,
            **webhook,
        }
    ]
    routes = []
    if smtp is not None:
        receivers.append(
            {
                "name": "mail",
                "type": "email",
                "to": ["oncall@example.org"],
                "sender": "driftline@example.org",
                "host": smtp.host,
                "port": smtp.port,
                "starttls": True,
                "username": "ops",
                "password": "s3cret",
                "ca_file": smtp.ca_file,
            }
        )
        routes = [
            {"receiver": "mail", "matchers": ['severity="critical"'], "continue": True},
            {"receiver": "hook"},
        ]
    return AlertingConfig.model_validate(
        {
            "route": {
                "receiver": "hook",
                "group_wait_s": 0,
                "group_interval_s": 0.2,
                "repeat_interval_s": 3600,
                "routes": routes,
            },
            "receivers": receivers,
        }
    )


async def setup(a, tenant: str, cfg: AlertingConfig, rule: dict | None = None) -> None:
    await a.runtime.store.put_rule(tenant, Rule.model_validate(rule or RULE), "test")
    await a.runtime.store.put_config(tenant, cfg, "test")
    a.runtime.rules = await a.runtime.store.rules()
    a.runtime.configs = await a.runtime.store.configs()


async def attempts(a, tenant: str) -> list[dict]:
    return await a.runtime.store.deliveries(tenant)


async def test_drift_result_on_kafka_reaches_a_signed_webhook_and_a_mailbox(
    stack, make_alerting, receiver, smtp, new_topic, unique, topic_reader, wait_until
):
    tenant = unique("t")
    drift_topic = await new_topic("drift")
    alerts_topic = await topic_reader(AlertEvent.TOPIC)
    audit_topic = await topic_reader(AuditRecord.TOPIC)
    producer = EventProducer(stack.kafka)
    await producer.start()
    async with make_alerting(topics={drift_topic: "drift"}) as a:
        await setup(a, tenant, config(receiver, smtp))
        loop = ConsumerLoop(
            stack.kafka,
            topics=[drift_topic],
            group_id=unique("g"),
            handler=a.runtime.handle,
            dlq=producer,
            models={drift_topic: DriftResult},
        )
        await loop.start()
        task = asyncio.create_task(loop.run())
        try:
            await producer.send(result(tenant, 0.8, T0), topic=drift_topic)

            async def delivered() -> bool:
                return len(receiver.verified()) >= 1 and len(smtp.messages) >= 1

            await wait_until(delivered, timeout=30)
            hit = receiver.verified()[0]
            body = orjson.loads(hit.body)
            # Alertmanager's webhook payload, version 4: existing consumers work unchanged
            assert body["version"] == "4"
            assert body["status"] == "firing"
            [alert] = body["alerts"]
            assert alert["labels"]["alertname"] == "DatasetDrift"
            assert alert["labels"]["model"] == "credit"
            assert alert["annotations"]["summary"] == "80% of credit drifted"
            assert hit.headers["idempotency-key"] == hit.headers["webhook-id"]
            assert len(hit.headers["webhook-signature"].split(" ")) == 2  # both secrets sign
            # the signature covers the body and the timestamp
            with pytest.raises(WebhookVerificationError):
                Webhook(SECRET_NEW).verify(hit.body.replace(b"credit", b"fraud"), hit.headers)
            stale = {**hit.headers, "webhook-timestamp": str(int(T0) - 3600)}
            with pytest.raises(WebhookVerificationError):
                Webhook(SECRET_NEW).verify(hit.body, stale)
            with pytest.raises(WebhookVerificationError):
                Webhook("whsec_" + "QUJD" * 8).verify(hit.body, hit.headers)

            mail = smtp.messages[0]
            assert mail["tls"]
            assert mail["user"] == b"ops"
            assert "Subject: [FIRING:1]" in mail["data"]
            assert "80% of credit drifted" in mail["data"]

            # the drift goes away: one resolved notification
            await producer.send(result(tenant, 0.1, T0 + 60), topic=drift_topic)

            async def resolved() -> bool:
                return any(
                    orjson.loads(h.body)["status"] == "resolved" for h in receiver.verified()
                )

            await wait_until(resolved, timeout=30)
        finally:
            await loop.stop()
            task.cancel()
    await producer.stop()

    def kinds(rs):
        return [e.kind for r in rs if (e := decode(AlertEvent, r.value)).tenant_id == tenant]

    events = kinds(
        await alerts_topic.read(
            until=lambda rs: kinds(rs).count("delivery_succeeded") >= 3, timeout=20
        )
    )
    assert events.count("firing") == 1
    assert events.count("resolved") == 1
    audit = [
        e.action
        for r in await audit_topic.read(timeout=3)
        if (e := decode(AuditRecord, r.value)).tenant_id == tenant
    ]
    assert {"alert.firing", "alert.resolved", "alert.delivery_succeeded"} <= set(audit)


async def test_a_failing_then_slow_receiver_gets_the_notification_once_with_one_key(
    make_alerting, receiver, unique, wait_until
):
    tenant = unique("t")
    receiver.plan = [500, 500, "sleep"]  # then 200
    async with make_alerting() as a:
        await setup(a, tenant, config(receiver))
        await a.runtime.handle([msg(result(tenant, 0.9, T0))])

        async def done() -> bool:
            # the receiver answers before the delivery is recorded: wait for both
            return bool(receiver.verified()) and any(
                d["status"] == "delivered" for d in await attempts(a, tenant)
            )

        await wait_until(done, timeout=30)
        keys = {h.headers["webhook-id"] for h in receiver.hits}
        assert len(keys) == 1  # every attempt carried the same idempotency key
        assert [h.status for h in receiver.hits] == [500, 500, 0, 200]
        [d] = await attempts(a, tenant)
        assert d["status"] == "delivered"
        assert d["attempts"] == 4
        log = d["attempts_log"]
        assert [x["status_code"] for x in log] == [500, 500, None, 200]
        assert "timeout" in log[2]["error"]


async def test_retry_after_is_honoured(make_alerting, receiver, unique, wait_until):
    tenant = unique("t")
    receiver.plan, receiver.retry_after = [429], "1"
    async with make_alerting() as a:
        await setup(a, tenant, config(receiver))
        await a.runtime.handle([msg(result(tenant, 0.9, T0))])

        async def done() -> bool:
            # the receiver answers before the delivery is recorded: wait for both
            return bool(receiver.verified()) and any(
                d["status"] == "delivered" for d in await attempts(a, tenant)
            )

        await wait_until(done, timeout=30)
        [d] = await attempts(a, tenant)
        first, second = d["attempts_log"]
        gap = datetime.fromisoformat(second["at"]) - datetime.fromisoformat(first["at"])
        assert gap.total_seconds() >= 0.95  # not the 0.05 s backoff


async def test_after_the_last_attempt_the_notification_goes_to_the_dlq_and_audit(
    make_alerting, receiver, unique, wait_until, topic_reader
):
    tenant = unique("t")
    dlq = await topic_reader(DeadLetter.TOPIC)
    audit = await topic_reader(AuditRecord.TOPIC)
    receiver.plan = [500] * 10
    async with make_alerting(max_attempts=3) as a:
        await setup(a, tenant, config(receiver))
        await a.runtime.handle([msg(result(tenant, 0.9, T0))])

        def mine(rs):  # alerting's own letters: services sharing the broker write theirs
            return [
                d
                for r in rs
                if (d := decode(DeadLetter, r.value)).tenant_id == tenant and d.source == "alerting"
            ]

        [dead] = mine(await dlq.read(until=lambda rs: bool(mine(rs)), timeout=30))
        assert dead.error_type == "delivery_failed"
        assert "after 3 attempt(s)" in dead.reason
        assert "HTTP 500" in dead.reason
        assert orjson.loads(dead.payload)["alerts"][0]["labels"]["alertname"] == "DatasetDrift"
        [d] = await attempts(a, tenant)
        assert (d["status"], d["attempts"]) == ("failed", 3)
    records = [
        e
        for r in await audit.read(timeout=3)
        if (e := decode(AuditRecord, r.value)).tenant_id == tenant
    ]
    assert any(e.action == "alert.delivery_failed" and e.outcome == "failure" for e in records)


async def test_a_rule_triggers_retraining_once_per_cooldown(
    make_alerting, receiver, unique, wait_until, topic_reader
):
    tenant = unique("t")
    commands = await topic_reader(RetrainRequested.TOPIC)
    rule = {
        **RULE,
        "remediation": {
            "command": True,
            "webhook": receiver.url + "/retrain",
            "webhook_secret": SECRET_NEW,
            "cooldown_s": 3600,
        },
    }
    async with make_alerting() as a:
        await setup(a, tenant, config(receiver), rule)
        await a.runtime.handle([msg(result(tenant, 0.9, T0))])
        await a.runtime.handle([msg(result(tenant, 0.1, T0 + 60))])  # resolved
        await a.runtime.handle([msg(result(tenant, 0.9, T0 + 120))])  # fires again: cooling

        async def called() -> bool:
            return any(
                h.headers.get("webhook-id", "").startswith("rtr_") for h in receiver.verified()
            )

        await wait_until(called, timeout=30)

    def mine(rs):
        return [c for r in rs if (c := decode(RetrainRequested, r.value)).tenant_id == tenant]

    cmds = mine(await commands.read(timeout=5))
    assert len(cmds) == 1
    assert cmds[0].model_id == "credit"
    assert cmds[0].rule_id == "share"
    assert (
        cmds[0]
        .evidence["windows"][0]["end"]
        .startswith(datetime.fromtimestamp(T0, UTC).isoformat()[:19])
    )
    calls = [h for h in receiver.verified() if h.headers["webhook-id"].startswith("rtr_")]
    assert len(calls) == 1
    assert orjson.loads(calls[0].body)["model_id"] == "credit"


async def test_a_restart_mid_group_sends_nothing_twice(make_alerting, receiver, unique, wait_until):
    tenant = unique("t")
    r1 = result(tenant, 0.9, T0)
    async with make_alerting() as a:
        await setup(a, tenant, config(receiver))
        await a.runtime.handle([msg(r1)])

        async def one() -> bool:
            return len(receiver.verified()) == 1

        await wait_until(one, timeout=20)
    # restart: the same result is redelivered (its offset was not committed)
    async with make_alerting() as a:
        await a.runtime.handle([msg(r1)])
        await asyncio.sleep(1.0)  # several ticks and delivery rounds
        # no second notification; at most a resend of the same one (at-least-once: a stop
        # between sending and recording), which receivers drop by its idempotency key
        assert len({h.headers["webhook-id"] for h in receiver.verified()}) == 1
        assert len(await attempts(a, tenant)) == 1


async def test_the_circuit_breaker_holds_deliveries_without_spending_attempts(
    make_alerting, receiver, unique, wait_until
):
    tenant = unique("t")
    receiver.plan = [500, 500]  # then 200
    async with make_alerting(breaker_failures=2, breaker_open_s=1.0) as a:
        await setup(a, tenant, config(receiver))
        await a.runtime.handle([msg(result(tenant, 0.9, T0))])

        async def done() -> bool:
            # the receiver answers before the delivery is recorded: wait for both
            return bool(receiver.verified()) and any(
                d["status"] == "delivered" for d in await attempts(a, tenant)
            )

        await wait_until(done, timeout=30)
        [d] = await attempts(a, tenant)
        assert d["attempts"] == 3  # the wait while open spent no attempt
        second, third = d["attempts_log"][1:]
        gap = datetime.fromisoformat(third["at"]) - datetime.fromisoformat(second["at"])
        assert gap.total_seconds() >= 0.9  # held for breaker_open_s, not the 0.1 s backoff


async def test_the_file_loaded_at_start_takes_an_alertmanager_yml(make_alerting, unique, tmp_path):
    import shutil

    import yaml

    fixtures = Path(__file__).parent.parent / "fixtures" / "alertmanager"
    shutil.copy(fixtures / "simple.yml", tmp_path / "alertmanager.yml")
    t1, t2 = unique("t"), unique("t")
    (tmp_path / "alerting.yml").write_text(
        yaml.safe_dump(
            {
                "tenants": {
                    t1: {"rules": [RULE], "alertmanager_config": "alertmanager.yml"},
                    t2: {  # or inline, in the same syntax
                        "route": {"receiver": "x", "group_wait": "1m"},
                        "receivers": [{"name": "x"}],
                    },
                }
            }
        )
    )
    async with make_alerting(rules_file=str(tmp_path / "alerting.yml")) as a:
        expected = AlertingConfig.model_validate(
            yaml.safe_load((fixtures / "simple.yml").read_text())
        )
        assert a.runtime.config_for(t1) == expected
        assert [r.id for r in a.runtime.rules_for(t1)] == ["share"]
        assert a.runtime.config_for(t2).route.group_wait == 60


async def test_transitions_saved_are_announced_though_the_process_dies_after_the_save(
    stack, make_alerting, unique, topic_reader, wait_until
):
    """The announcements go into the outbox in the statement that saves the state deciding
    them: a process that dies right after its save (here one never started, whose producer
    cannot send) still has them relayed, in order, by the next leader's relay."""
    tenant = unique("t")
    alerts = await topic_reader(AlertEvent.TOPIC)
    audit = await topic_reader(AuditRecord.TOPIC)

    def mine(rs):
        return [e for r in rs if (e := decode(AlertEvent, r.value)).tenant_id == tenant]

    async with make_alerting() as a:
        await a.runtime.outbox.stop()  # no relay running: as between two leaders
        dead = AlertingRuntime(
            a.runtime.opts,
            Store(a.db),
            EventProducer(stack.kafka),  # never started: it cannot send anything itself
            AuditEmitter(EventProducer(stack.kafka), "alerting"),
        )
        await dead.store.put_rule(tenant, Rule.model_validate(RULE), "test")  # no receiver
        dead.rules = await dead.store.rules()
        await dead.handle([msg(result(tenant, 0.9, T0))])  # fires
        await dead.handle([msg(result(tenant, 0.1, T0 + 60), 1)])  # resolves
        held = await a.db.pool.fetch("SELECT topic FROM outbox ORDER BY id")
        assert [r["topic"] for r in held] == [AlertEvent.TOPIC, AuditRecord.TOPIC] * 2
        assert not mine(await alerts.read(timeout=1))

        await a.runtime.outbox.start()  # the next leader relays what the dead one saved
        got = mine(await alerts.read(until=lambda rs: len(mine(rs)) >= 2, timeout=30))
        assert [e.kind for e in got] == ["firing", "resolved"]
        assert {e.rule_id for e in got} == {"share"}
        records = [
            e
            for r in await audit.read(timeout=3)
            if (e := decode(AuditRecord, r.value)).tenant_id == tenant
        ]
        assert [e.action for e in records] == ["alert.firing", "alert.resolved"]

        async def relayed() -> bool:
            return await a.db.pool.fetchval("SELECT count(*) FROM outbox") == 0

        await wait_until(relayed, timeout=10)
