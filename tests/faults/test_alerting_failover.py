"""Alerting active/standby (issue 18 item 5, decision 38): two alerting processes on the
run's own broker and database; one holds the PostgreSQL advisory lock and acts, the other
waits. Drift results stream in and every one makes a notification to a slow webhook
receiver; the active process is killed with kill -9 in the middle.

Checked: the standby becomes the leader in under 10 s; every notification reaches the
receiver (every model's alert, every copy under one idempotency key, equal to its webhook
id); the only keys received twice are those of requests in flight at the kill (they reached
the receiver less than `DELAY_S` + 0.25 s before it), and the duplicates are counted; the
killed process started again comes back as the standby, not crash-looping."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faultlib import record
from harness import Receiver, System, Tenant, poll

from driftline_core.events import DriftResult
from driftline_core.kafka import EventProducer

MODELS = 60  # one alert, so one notification, per model
RATE = 10.0  # results per second
DELAY_S = 0.5  # the receiver answers every request after this long (sends in flight)
KILL_AFTER = 15  # notifications received before the kill


class SlowReceiver(Receiver):
    """The demo's verifying receiver, answering after DELAY_S; arrival times per key."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            key = dict(scope["headers"]).get(b"idempotency-key", b"").decode() or None
            self.arrivals.append((time.monotonic(), key))
            await asyncio.sleep(DELAY_S)
        await super().__call__(scope, receive, send)


def result(tenant: str, model: str, end: float) -> DriftResult:
    iso = datetime.fromtimestamp(end, UTC).isoformat()
    start = datetime.fromtimestamp(end - 60, UTC).isoformat()
    return DriftResult.model_validate(
        {
            "tenant_id": tenant,
            "model_id": model,
            "model_version": "1",
            "window": {"start": start, "end": iso, "events": 100},
            "drifted_share": 1.0,
            "dataset_drift": True,
            "features": [
                {"feature": "x", "test": "psi", "statistic": 0.4, "threshold": 0.1, "drifted": True}
            ],
        }
    )


@pytest.fixture
async def system(stack, tmp_path: Path):
    s = System(stack, tmp_path / "sys", env={"DRIFTLINE_ALERTING__LEADER_INTERVAL_S": "0.5"})
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


async def test_kill_9_of_the_active_alerting_replica(system: System) -> None:
    standby = await system.add_replica("alerting", ready=False)
    assert await system.leaders("alerting") == ["alerting"]
    receiver = SlowReceiver().start()
    try:
        tenant = await Tenant.create(system, "failover")
        await tenant.put_alerting(
            {
                "route": {
                    "receiver": "hook",
                    "group_by": ["..."],
                    "group_wait_s": 0,
                    "group_interval_s": 1,
                    "repeat_interval_s": 3600,
                },
                "receivers": [
                    {
                        "name": "hook",
                        "type": "webhook",
                        "url": receiver.url,
                        "secrets": [receiver.secret],
                        "format": "alertmanager",
                    }
                ],
            },
            rules=[],
        )
        models = [f"m{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(MODELS)]
        end = (time.time() // 60) * 60
        producer = EventProducer(system.kafka_settings)
        await producer.start()
        killed_at: float | None = None
        pending_at_kill: set[str | None] = set()

        async def kill_while_sending() -> None:
            # the kill lands while requests wait for their answer (not between two batches)
            nonlocal killed_at, pending_at_kill
            while True:
                answered = {a.idempotency_key for a in receiver.attempts}
                pending = {k for _, k in receiver.arrivals} - answered
                if len(receiver.received) >= KILL_AFTER and pending:
                    killed_at = time.monotonic()
                    system.kill("alerting")
                    pending_at_kill = pending
                    return
                await asyncio.sleep(0.01)

        killer = asyncio.create_task(kill_while_sending())
        try:
            for m in models:
                await producer.send(result(tenant.tenant_id, m, end))
                await asyncio.sleep(1 / RATE)
            await asyncio.wait_for(killer, 30)
        finally:
            killer.cancel()
            await producer.stop()
        assert killed_at is not None, "the kill never happened: too few notifications"
        sent_before_kill = len({a.idempotency_key for a in receiver.attempts})

        async def new_leader() -> list[str]:
            return [k for k in await system.leaders("alerting") if k == standby]

        await poll(new_leader, timeout=30, interval=0.1, what="the standby leads")
        takeover_s = time.monotonic() - killed_at

        def delivered() -> set[str]:
            return {
                a["labels"]["model"]
                for hit in receiver.received
                for a in hit["payload"]["alerts"]
                if a["labels"].get("model") in models
            }

        async def all_delivered() -> bool:
            return delivered() == set(models)

        await poll(all_delivered, timeout=120, interval=0.25, what="every model's alert")
        after = [t for t, _ in receiver.arrivals if t > killed_at]
        first_send_after_kill_s = (min(after) - killed_at) if after else None
        everything_s = time.monotonic() - killed_at

        ok = [a for a in receiver.attempts if a.status == 204]
        assert all(a.idempotency_key == a.webhook_id for a in receiver.attempts)
        per_key = Counter(a.idempotency_key for a in ok)
        dup_keys = {k for k, n in per_key.items() if n > 1}
        # a send is in flight at the kill if it reached the receiver less than its answer
        # time (plus the sender's bookkeeping) before the kill
        in_flight = {
            k for t, k in receiver.arrivals if killed_at - DELAY_S - 0.25 <= t <= killed_at
        }
        restarted_at = time.monotonic()
        system.respawn("alerting")  # the killed one comes back as the standby
        await system.wait_standby("alerting")
        assert await system.leaders("alerting") == [standby]

        figures = {
            "results_sent": MODELS,
            "rate_per_s": RATE,
            "notifications_expected": MODELS,
            "notifications_delivered": len(per_key),
            "keys_seen_before_kill": sent_before_kill,
            "in_flight_at_kill": len(in_flight),
            "awaiting_answer_at_kill": len(pending_at_kill),
            "duplicates": sum(n - 1 for n in per_key.values()),
            "duplicate_keys": len(dup_keys),
            "takeover_s": round(takeover_s, 2),
            "first_send_after_kill_s": None
            if first_send_after_kill_s is None
            else round(first_send_after_kill_s, 2),
            "all_delivered_after_kill_s": round(everything_s, 2),
            "restarted_standby_s": round(time.monotonic() - restarted_at, 2),
            "receiver_attempts": len(receiver.attempts),
        }
        record("alerting-failover", figures)
        assert takeover_s < 10.0, figures
        assert len(per_key) == MODELS, figures  # one notification per alert, none lost
        assert dup_keys <= in_flight, (sorted(dup_keys - in_flight), figures)
        assert figures["duplicates"] <= len(in_flight), figures
    finally:
        receiver.stop()
