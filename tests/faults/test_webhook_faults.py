"""A webhook receiver that fails, then hangs (issue 18 item 6): the whole system on the
run's own broker and databases; drift results that each make one notification, while the
tenant's receiver first answers 503 for `OUTAGE_S`, then hangs (answers nothing within the
integration's 2 s timeout) for `OUTAGE_S`, then works again.

Checked: every notification is delivered once the receiver is back (none lost, none in the
DLQ as failed), every attempt of one notification carries the same idempotency key (equal
to its webhook id), no notification is accepted twice, and the failed and timed-out
attempts are what alerting's delivery log says."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faultlib import OUTAGE_S, record
from harness import Receiver, System, Tenant, poll
from test_alerting_failover import result

from driftline_core.kafka import EventProducer

pytestmark = pytest.mark.timeout(600)

MODELS = 12
TIMEOUT_S = 2


class FlakyReceiver(Receiver):
    """503 while `mode` is "fail"; while "hang", holds each request 3 timeouts, then 503."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.log: list[tuple[float, str, str | None]] = []  # (time, mode, key)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode() or None
        mode = self.mode
        self.log.append((time.monotonic(), mode, key))
        if mode == "ok":
            await super().__call__(scope, receive, send)
            return
        if mode == "hang":
            await asyncio.sleep(TIMEOUT_S * 3)
        await send(
            {"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"1")]}
        )
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def system(stack, tmp_path: Path):
    # the breaker opens for 2 s and retries wait at most 3 s, so the hanging receiver is
    # met during its outage (with the defaults, 30 s, the open breaker would skip it)
    env = {
        "DRIFTLINE_ALERTING__BREAKER_OPEN_S": "2",
        "DRIFTLINE_ALERTING__BACKOFF_CAP_S": "3",
        "DRIFTLINE_ALERTING__MAX_ATTEMPTS": "30",  # enough for two outages of 30 s
    }
    s = System(stack, tmp_path / "sys", env=env)
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


async def test_a_receiver_that_fails_then_hangs(system: System) -> None:
    receiver = FlakyReceiver().start()
    try:
        tenant = await Tenant.create(system, "hook")
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
                        "timeout_s": TIMEOUT_S,
                    }
                ],
            },
            rules=[],
        )
        models = [f"h{i:02d}-{uuid.uuid4().hex[:4]}" for i in range(MODELS)]
        end = (time.time() // 60) * 60
        producer = EventProducer(system.kafka_settings)
        await producer.start()
        t0 = time.monotonic()
        try:
            receiver.mode = "fail"
            for m in models[: MODELS // 2]:
                await producer.send(result(tenant.tenant_id, m, end))
            await asyncio.sleep(OUTAGE_S)
            receiver.mode = "hang"
            for m in models[MODELS // 2 :]:
                await producer.send(result(tenant.tenant_id, m, end))
            await asyncio.sleep(OUTAGE_S)
            receiver.mode = "ok"
            back = time.monotonic()
        finally:
            await producer.stop()

        def delivered() -> set[str]:
            return {
                a["labels"]["model"]
                for hit in receiver.received
                for a in hit["payload"]["alerts"]
                if a["labels"].get("model") in models
            }

        async def all_delivered() -> bool:
            return delivered() == set(models)

        await poll(all_delivered, timeout=240, interval=0.5, what="every notification")
        recovered_s = time.monotonic() - back
        by_mode = Counter(m for _, m, _ in receiver.log)
        keys = {k for _, _, k in receiver.log}
        accepted = Counter(a.idempotency_key for a in receiver.attempts if a.status == 204)
        async with tenant.http("alerting") as c:
            r = await c.get("/v1/deliveries")
            deliveries = r.json() if r.status_code == 200 else None
        dlq = await system.topic("driftline.dlq.v1").read(
            where=lambda d: d.get("tenant_id") == tenant.tenant_id, timeout=20
        )
        figures = {
            "outage_s": OUTAGE_S,
            "notifications": MODELS,
            "delivered": len(accepted),
            "attempts_failed_503": by_mode["fail"],
            "attempts_hung": by_mode["hang"],
            "attempts_ok": by_mode["ok"],
            "keys_seen": len(keys),
            "accepted_twice": sum(1 for n in accepted.values() if n > 1),
            "dlq_records": len(dlq),
            "all_delivered_after_recovery_s": round(recovered_s, 2),
            "run_s": round(time.monotonic() - t0, 1),
        }
        record("webhook-fail-then-hang", figures)
        assert by_mode["fail"] >= 1, figures  # both faults were met
        assert by_mode["hang"] >= 1, figures
        assert len(accepted) == MODELS, figures
        assert all(n == 1 for n in accepted.values()), figures
        assert keys == set(accepted), figures  # every attempt under a key that got through
        assert all(a.idempotency_key == a.webhook_id for a in receiver.attempts)
        assert not dlq, dlq[:2]
        assert isinstance(deliveries, list), deliveries
        mine = [d for d in deliveries if d.get("kind") == "notification"]
        assert len(mine) == MODELS, mine[:3]
        assert all(d.get("status") == "delivered" for d in mine), mine[:3]
    finally:
        receiver.stop()
