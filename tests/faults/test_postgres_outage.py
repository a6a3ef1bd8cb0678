"""PostgreSQL stopped under load (issue 18 item 6): the whole system on a PostgreSQL of the
run's own (the local stack's launcher: initdb into a folder of the run's own, on a free port,
tests/e2e/harness.py `PrivateServer`; never the shared one) and its own broker; alerting
active/standby; the fault suite's load over HTTP, audit records produced on
`driftline.audit.v1` at `AUDIT_RATE`/s and drift results (one alert each) at `ALERT_RATE`/s,
all through the outage; PostgreSQL stopped for `OUTAGE_S` and started again.

Checked:
- every 202-acknowledged event is counted exactly once in the window counts drift
  detection published (each window once);
- every audit record produced is in the tenant's trail once, the trail verifies, its
  sequence has no gap and no record twice;
- every alert is delivered, every copy under one idempotency key (its webhook id), and a
  key accepted twice only for a send in flight when the leader lost its session;
- readiness went not-ready while PostgreSQL was away (the processes whose checks read it)
  and came back; no process exited or started twice (none crash-looping); alerting has
  one leader again;
- no dead letter of the tenant: nothing is unprocessable because a store was away."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faultlib import MODEL_ID, OUTAGE_S, RATE, Load, model_with_grace, record, windows
from harness import Receiver, System, Tenant, poll
from test_alerting_failover import result

from driftline_core.audit import AuditEmitter
from driftline_core.events import Actor, Resource
from driftline_core.kafka import EventProducer

pytestmark = pytest.mark.timeout(1200)

SETTLE_S = 6.0
# a batch is tried for up to DEADLINE_S (the outage, the services' reconnection and their
# consumers' backoff on a loaded machine), and windows wait GRACE_S for what was acknowledged
# late with its original time: longer than any acknowledgement can take, or an acknowledged
# event would be dead-lettered as too late instead of counted (docs/reliability.md)
DEADLINE_S = OUTAGE_S + 50
GRACE_S = int(DEADLINE_S) + 20
AUDIT_RATE = 5.0  # audit records per second, through the outage
ALERT_RATE = 1.0  # drift results (one notification each) per second


class TimedReceiver(Receiver):
    """The demo's verifying receiver; the arrival time of every request, by key."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            key = dict(scope["headers"]).get(b"idempotency-key", b"").decode() or None
            self.arrivals.append((time.time(), key))
        await super().__call__(scope, receive, send)


@pytest.fixture
async def system(stack, tmp_path: Path):
    if os.environ.get("DRIFTLINE_TEST_STACK", "local") != "local":
        pytest.skip("stopping PostgreSQL needs the run's own (the local stack's launcher)")
    # windows must outlast the outage (see test_datastore_outages); the leadership is
    # checked every 0.5 s
    s = System(
        stack,
        tmp_path / "sys",
        idle_close_s=GRACE_S,
        private_servers=("postgres",),
        env={"DRIFTLINE_ALERTING__LEADER_INTERVAL_S": "0.5"},
    )
    try:
        await s.start()
        await s.add_replica("alerting", ready=False)
        yield s
    finally:
        await s.stop()


async def all_up(system: System, timeout: float = 120) -> None:
    for key, p in system.services.items():
        if p.name == "alerting":
            await system.wait_standby(key, timeout)
        else:
            await system.wait_ready(key, timeout)
    await poll(
        lambda: system.leaders("alerting"), timeout=60, interval=0.2, what="an alerting leader"
    )


async def test_postgres_stopped_under_load(system: System) -> None:
    tenant = await Tenant.create(system, "pg")
    rng = np.random.default_rng(11)
    await tenant.register(model_with_grace(GRACE_S))
    await tenant.add_version(MODEL_ID, "1")
    await tenant.upload_reference(
        MODEL_ID,
        [{"x0": float(rng.normal()), "x1": float(rng.normal(5, 2))} for _ in range(2000)],
    )
    receiver = TimedReceiver().start()
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
    producer = EventProducer(system.kafka_settings)
    await producer.start()
    emitter = AuditEmitter(producer, "fault-suite")
    audit_ids: list[str] = []
    models: list[str] = []
    stop_side = asyncio.Event()

    async def audit_stream() -> None:
        for i in itertools.count():
            if stop_side.is_set():
                return
            rec = await emitter.record(
                tenant_id=tenant.tenant_id,
                actor=Actor(type="service", id="service:fault-suite"),
                action="faults.probe",
                resource=Resource(type="probe", id=str(i)),
            )
            audit_ids.append(str(rec.event_id))
            await asyncio.sleep(1 / AUDIT_RATE)

    async def alert_stream() -> None:
        end = (time.time() // 60) * 60
        for i in itertools.count():
            if stop_side.is_set():
                return
            m = f"pg{i:03d}-{uuid.uuid4().hex[:4]}"
            await producer.send(result(tenant.tenant_id, m, end))
            models.append(m)
            await asyncio.sleep(1 / ALERT_RATE)

    load = Load(tenant, [system.url("ingestion")], deadline_s=DEADLINE_S)
    tasks = [asyncio.create_task(c) for c in (load.run(), audit_stream(), alert_stream())]
    srv = system.servers["postgres"]
    not_ready: dict[str, set[str]] = {}  # process -> the checks that failed in the outage
    outage_end = asyncio.Event()

    async def watch_readiness() -> None:
        while not outage_end.is_set():
            for key in system.services:
                body = await system.readiness(key)
                for check, v in ((body or {}).get("checks") or {}).items():
                    if v != "ok" and check != "leader":
                        not_ready.setdefault(key, set()).add(check)
            await asyncio.sleep(0.5)

    try:
        await asyncio.sleep(SETTLE_S)
        t0 = time.time()
        acked0, retries0 = len(load.acked), sum(load.failures.values())
        await asyncio.to_thread(srv.stop)
        stopped_at = time.time()
        watcher = asyncio.create_task(watch_readiness())
        await asyncio.sleep(OUTAGE_S)
        outage_end.set()
        await watcher
        leaders_in_outage = await system.leaders("alerting")
        await asyncio.to_thread(srv.start)
        started_at = time.time()
        await all_up(system)
        ready_after_s = time.time() - started_at
        await asyncio.sleep(SETTLE_S)
        phase = {
            "fault": f"postgres stopped {OUTAGE_S:.0f} s",
            "start": t0,
            "end": time.time(),
            "ready_after_restart_s": round(ready_after_s, 2),
            "acked_during": len(load.acked) - acked0,
            "client_retries_during": sum(load.failures.values()) - retries0,
        }
    finally:
        load.stop.set()
        stop_side.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        await producer.stop()

    try:
        # --- events: each acknowledged one counted once ------------------------------------
        w = await windows(system, tenant, load, timeout=180 + GRACE_S, topic=True)
        phase.update(w.phase(phase["start"], phase["end"]))

        # --- audit: every record produced in the trail once, no gap -----------------------
        records: list[dict[str, Any]] = []

        async def trail() -> bool:
            nonlocal records
            records = await tenant.audit_records()
            return {str(r.get("source_id")) for r in records} >= set(audit_ids)

        with contextlib.suppress(AssertionError):  # the figures say what is missing
            await poll(trail, timeout=180, interval=1, what="every audit record stored")
        audit_missing = set(audit_ids) - {str(r.get("source_id")) for r in records}
        verify = await tenant.audit_verify()
        seqs = sorted(int(r["seq"]) for r in records)
        audit_gaps = [s for a, s in itertools.pairwise(seqs) if s != a + 1]
        # the trail names each record's source event (`source_id`): a record appended twice
        # after a retry would repeat it
        ids = [str(r["source_id"]) for r in records]
        audit_dupes = [s for s, n in Counter(seqs).items() if n > 1]
        audit_dupes += [i for i, n in Counter(ids).items() if n > 1]

        # --- alerts: every one delivered, duplicates only for sends in flight -------------
        def delivered() -> set[str]:
            return {
                a["labels"]["model"]
                for hit in receiver.received
                for a in hit["payload"]["alerts"]
                if a["labels"].get("model") in models
            }

        async def all_delivered() -> bool:
            return delivered() >= set(models)

        with contextlib.suppress(AssertionError):  # the figures say what is missing
            await poll(all_delivered, timeout=180, interval=0.5, what="every model's alert")
        alerts_missing = set(models) - delivered()
        ok = [a for a in receiver.attempts if a.status == 204]
        per_key = Counter(a.idempotency_key for a in ok)
        dup_keys = {k for k, n in per_key.items() if n > 1}
        # a send in flight when the leader lost its session: it reached the receiver between
        # the stop and the leader's step-down (at most two leader intervals and the check's
        # timeout later)
        in_flight = {k for t, k in receiver.arrivals if stopped_at - 1 <= t <= stopped_at + 3}

        dlq = await system.topic("driftline.dlq.v1").read(
            where=lambda d: d.get("tenant_id") == tenant.tenant_id, timeout=20
        )
        await all_up(system)
        exited = {k: p.proc.returncode for k, p in system.services.items() if p.proc.poll()}
        starts = {
            k: p.log.read_text(errors="replace").count("Application startup complete")
            for k, p in system.services.items()
        }
        figures = {
            "rate_per_s": RATE,
            "outage_s": OUTAGE_S,
            "processes": {k: p.name for k, p in system.services.items()},
            "events_sent": load.sent,
            "events_acknowledged": len(load.acked),
            "events_counted": sum(w.counted.values()),
            "batches_given_up": load.gave_up,
            "batches_given_up_when": load.given_up,
            "batches_acknowledged_as_duplicates": load.acked_as_duplicates,
            "client_retries": dict(load.failures),
            "windows": len(w.expected),
            "windows_published_twice": len(w.twice),
            "windows_miscounted": {str(int(k)): v for k, v in w.wrong.items()},
            "acked_missing_from_topic": w.missing_from_topic,
            "ids_twice_on_topic": w.twice_on_topic,
            "max_batch_start_delay_s": round(load.max_start_delay_s, 2),
            "audit_records_produced": len(audit_ids),
            "audit_records": len(records),
            "audit_records_missing": len(audit_missing),
            "audit_verified": verify.get("ok"),
            "audit_gaps": len(audit_gaps),
            "audit_duplicates": len(audit_dupes),
            "notifications_expected": len(models),
            "notifications_delivered": len(set(per_key) & {a.webhook_id for a in ok}),
            "notifications_missing": len(alerts_missing),
            "notification_duplicates": sum(n - 1 for n in per_key.values()),
            "in_flight_at_stop": len(in_flight),
            "alerting_leaders_in_outage": leaders_in_outage,
            "not_ready_in_outage": {k: sorted(v) for k, v in sorted(not_ready.items())},
            "dlq_records": len(dlq),
            "dlq_reasons": dict(Counter(str(d.get("error_type")) for d in dlq)),
            "exited": exited,
            "starts_per_process": starts,
            "phase": phase,
        }
        record("postgres-outage", figures)
        assert load.gave_up == 0, figures
        assert not w.wrong, figures  # every acknowledged event counted, none twice
        assert not w.twice, figures
        assert phase["ok"], figures
        assert not audit_missing, figures  # every audit record stored, none dead-lettered
        assert verify.get("ok") is True, verify
        assert not audit_gaps, audit_gaps[:5]
        assert not audit_dupes, audit_dupes[:5]
        assert not alerts_missing, figures
        assert all(a.idempotency_key == a.webhook_id for a in receiver.attempts)
        assert dup_keys <= in_flight, (sorted(dup_keys - in_flight), figures)
        assert not exited, figures
        assert all(n == 1 for n in starts.values()), figures  # none restarted
        # the outage was seen: what reads PostgreSQL went not-ready, no leader acted
        assert not_ready, figures
        assert leaders_in_outage == [], figures
        # nothing is unprocessable because a store was away: no dead letter at all
        assert not dlq, [(d.get("error_type"), d.get("reason")) for d in dlq[:5]]
    finally:
        receiver.stop()
