"""Faults under load (issue 18 items 5-6, decision 39): the whole system with two processes
of every service (alerting active/standby), on the run's own broker and databases
(tests/e2e/harness.py), a load of `RATE` events/s spread over both ingestion processes
(a client-side load balancer: batches alternate, a batch that fails goes to the other
process with the same event ids), and one fault at a time:

- kill -9 of each service in turn (the first process of each), then a restart;
- kill -9 of the active alerting process (the standby takes over);
- a restart of the run's Kafka broker.

After the faults the load stops, and the invariants are checked over the whole run and
per fault (the windows that overlap its phase): every 202-acknowledged event is counted
exactly once in the window counts drift detection published (each window once); the
tenant's audit trail verifies, its sequence has no gap and no record twice; every dead
letter of the tenant has a reason; every process is ready at the end (none crash-looping).

RATE is modest on purpose: ten service processes, a broker and the load share the 2 cores
of this machine with the rest of CI; docs/reliability.md gives the figures measured."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from faultlib import MODEL_ID, RATE, WINDOW_S, Load, model_with_grace, record
from harness import SERVICES, System, Tenant, poll, unique_by_id

pytestmark = pytest.mark.timeout(1500)

SETTLE_S = 6.0  # load after each recovery before the next fault
# A batch is tried for up to DEADLINE_S: a send that outlived its request during the broker
# restart stays pending until the broker is back and the producer resolves it, and its
# retries are answered 503 until then (decision 23). On this loaded 2-core machine the
# restart itself took up to 50 s and every process was ready again up to 86 s after it
# (docs/reliability.md). Windows wait GRACE_S (grace and idle close) for what was
# acknowledged late with its original time, longer than any acknowledgement can take, or an
# acknowledged event would be dead-lettered as too late instead of counted.
DEADLINE_S = 120.0
GRACE_S = int(DEADLINE_S) + 20


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> Any:
    s = System(
        stack,
        tmp_path_factory.mktemp("faults"),
        idle_close_s=GRACE_S,
        env={"DRIFTLINE_ALERTING__LEADER_INTERVAL_S": "0.5"},
    )
    try:
        await s.start()  # one process of each; the test adds the replicas (add_replicas)
        yield s
    finally:
        await s.stop()


async def add_replicas(system: System) -> None:
    """A second process of every service, before the model exists: the model is registered
    while two drift processes run, and each takes it in, whichever owns its registry
    partition (decision 61; its events were dead-lettered `unknown_model` by the other)."""
    for name in SERVICES:
        await system.add_replica(name, ready=name != "alerting")
    await all_up(system)


async def all_up(system: System) -> None:
    """Every process answers; every service but alerting ready, alerting with one leader,
    compliance-report with one leader (its standby is ready too, decision 45)."""
    for key, p in system.services.items():
        if p.name == "alerting":
            await system.wait_standby(key)
        else:
            await system.wait_ready(key)
    for name in ("alerting", "compliance-report"):

        async def one_leader(name: str = name) -> bool:
            return len(await system.leaders(name)) == 1

        await poll(one_leader, timeout=30, what=f"one {name} leader", interval=0.2)


async def test_faults_one_at_a_time_under_load(system: System) -> None:
    tenant = await Tenant.create(system, "faults")
    rng = np.random.default_rng(7)
    await add_replicas(system)
    await tenant.register(model_with_grace(GRACE_S))
    await tenant.add_version(MODEL_ID, "1")
    await tenant.upload_reference(
        MODEL_ID,
        [{"x0": float(rng.normal()), "x1": float(rng.normal(5, 2))} for _ in range(2000)],
    )
    load = Load(
        tenant, [system.url(k) for k in system.replicas("ingestion")], deadline_s=DEADLINE_S
    )
    loader = asyncio.create_task(load.run())
    phases: list[dict[str, Any]] = []

    async def fault(name: str, inject: Any) -> None:
        await asyncio.sleep(SETTLE_S)
        t0 = time.time()
        acked0, failures0 = len(load.acked), load.failures.copy()
        await inject()
        injected = time.time() - t0
        await all_up(system)
        recovered = time.time() - t0
        await asyncio.sleep(SETTLE_S)
        phases.append(
            {
                "fault": name,
                "start": t0,
                "end": time.time(),
                "inject_s": round(injected, 2),  # the broker restart's own length
                "recovery_s": round(recovered, 2),
                "acked_during": len(load.acked) - acked0,
                "client_retries_during": dict(load.failures - failures0),
            }
        )

    def kill_and_restart(key: str) -> Any:
        async def go() -> None:
            if key in system.replicas("ingestion"):  # its requests unanswered as it dies
                killed_in_flight[key] = load.in_flight[system.url(key)]
            system.kill(key)
            await asyncio.sleep(1.0)  # the load meets the dead process meanwhile
            system.respawn(key)

        return go

    async def kill_active_alerting() -> None:
        (leader,) = await system.leaders("alerting")
        t0 = time.monotonic()
        system.kill(leader)
        others = [k for k in system.replicas("alerting") if k != leader]
        await poll(lambda: _led_by(system, others), timeout=30, interval=0.1, what="standby leads")
        takeover["s"] = round(time.monotonic() - t0, 2)
        system.respawn(leader)

    async def broker_restart() -> None:
        assert system.kafka is not None, "needs the run's own broker"
        await asyncio.to_thread(system.kafka.restart)
        broker.update({k: round(v, 2) for k, v in system.kafka.last_restart.items()})

    takeover: dict[str, float] = {}
    killed_in_flight: dict[str, int] = {}
    broker: dict[str, float] = {}
    try:
        for name in SERVICES:
            if name != "alerting":
                await fault(f"kill -9 {name}", kill_and_restart(name))
        await fault("kill -9 active alerting", kill_active_alerting)
        if system.kafka is not None:
            await fault("Kafka broker restart", broker_restart)
        await asyncio.sleep(SETTLE_S)
    finally:
        load.stop.set()
        await asyncio.wait_for(loader, DEADLINE_S + 30)  # a batch retried to its deadline

    # --- the invariants -------------------------------------------------------------------
    expected: Counter[float] = Counter((ts // WINDOW_S) * WINDOW_S for ts in load.acked.values())
    mine = lambda r: r.get("tenant_id") == tenant.tenant_id  # noqa: E731

    def whole(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rs if r.get("model_id") == MODEL_ID and not r.get("segment")]

    def start_of(r: dict[str, Any]) -> float:
        return datetime.fromisoformat(r["window"]["start"]).timestamp()

    def complete(rs: list[dict[str, Any]]) -> bool:
        return {start_of(r) for r in whole(rs)} >= set(expected)

    drift = whole(
        unique_by_id(
            await system.topic("driftline.drift.v1").read(
                where=mine, until=complete, timeout=GRACE_S + 180
            )
        )
    )
    per_window: dict[float, list[int]] = defaultdict(list)
    for r in drift:
        per_window[start_of(r)].append(int(r["window"]["events"]))
    counted = {w: sum(v) for w, v in per_window.items()}
    twice = {w: v for w, v in per_window.items() if len(v) > 1}
    wrong = {
        w: (expected.get(w, 0), counted.get(w))
        for w in set(expected) | set(counted)
        if expected.get(w, 0) != counted.get(w, 0)
    }

    records = await tenant.audit_records()
    verify = await tenant.audit_verify()
    seqs = sorted(int(r["seq"]) for r in records)
    audit_gaps = [s for a, s in itertools.pairwise(seqs) if s != a + 1]
    audit_dupes = [s for s, n in Counter(seqs).items() if n > 1]
    # one record per source event: a record re-appended after a restart repeats its id
    ids = [str(r["source_id"]) for r in records]  # the trail's name of its source event
    audit_dupes += [i for i, n in Counter(ids).items() if n > 1]
    dlq = await system.topic("driftline.dlq.v1").read(where=mine, timeout=30)
    no_reason = [d for d in dlq if not d.get("reason")]
    await all_up(system)
    restarts = {
        k: p.log.read_text(errors="replace").count("Application startup complete")
        for k, p in system.services.items()
    }

    for ph in phases:
        ws = [w for w in expected if ph["start"] - WINDOW_S < w <= ph["end"]]
        ph["windows"] = len(ws)
        ph["acked_in_windows"] = sum(expected[w] for w in ws)
        ph["counted_in_windows"] = sum(counted.get(w, 0) for w in ws)
        ph["ok"] = all(w not in wrong and w not in twice for w in ws)
        ph["slowest_ack_s"] = load.slowest_ack_s(ph["start"], ph["end"])
        ph["given_up"] = [
            {**g, "at_s": round(g["event_time"] - ph["start"], 2)}
            for g in load.given_up_in(ph["start"] - SETTLE_S, ph["end"])
        ]
    figures = {
        "rate_per_s": RATE,
        "processes": {k: p.name for k, p in system.services.items()},
        "events_sent": load.sent,
        "events_acknowledged": len(load.acked),
        "events_counted": sum(counted.values()),
        "batches_given_up": load.gave_up,
        "batches_given_up_outside_phases": [
            g
            for g in load.given_up
            if not any(p["start"] - SETTLE_S <= g["event_time"] < p["end"] for p in phases)
        ],
        "client_retries": dict(load.failures),
        "windows": len(expected),
        "windows_published_twice": len(twice),
        "windows_miscounted": {str(int(w)): v for w, v in wrong.items()},
        "audit_records": len(records),
        "audit_verified": verify.get("ok"),
        "audit_gaps": len(audit_gaps),
        "audit_duplicates": len(audit_dupes),
        "dlq_records": len(dlq),
        "dlq_without_reason": len(no_reason),
        "dlq_reasons": dict(Counter(str(d.get("error_type")) for d in dlq)),
        "alerting_takeover_s": takeover.get("s"),
        "requests_in_flight_at_kill": killed_in_flight,
        "broker_restart_s": broker,  # stopping it, starting it (the launcher's two halves)
        "batches_acknowledged_as_duplicates": load.acked_as_duplicates,
        "starts_per_process": restarts,
        "phases": phases,
    }
    record("under-load", figures)
    assert load.gave_up == 0, figures
    assert not wrong, figures  # every acknowledged event counted, none twice
    assert not twice, figures
    assert verify.get("ok") is True, verify
    assert not audit_gaps, audit_gaps[:5]
    assert not audit_dupes, audit_dupes[:5]
    assert not no_reason, no_reason[:3]
    assert takeover.get("s", 99) < 10, figures
    assert all(ph["ok"] for ph in phases), phases


async def _led_by(system: System, keys: list[str]) -> bool:
    return any(k in keys for k in await system.leaders("alerting"))
