"""Report generation active/standby (issue 18 item 5, decision 45): two compliance-report
processes on the run's own broker and database; the one holding the PostgreSQL advisory lock
generates and schedules, both serve the API. `REPORTS` reports are requested from the
leader's API and the leader is killed with kill -9 while one of them is being generated.

Checked: the standby leads (its `leader` check turns ok) in under 10 s; every report the
killed leader accepted is completed by the new one (none lost, none failed), the one being
generated at the kill included, long before its heartbeat would be `stale_after_s` (300 s)
old; a report is announced as generated twice only if it was in flight at the kill; the
killed process started again comes back as the standby, ready, not crash-looping."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from faultlib import record
from harness import System, Tenant, poll

pytestmark = pytest.mark.timeout(900)

REPORTS = 6
SERVICE = "compliance-report"


@pytest.fixture
async def system(stack, tmp_path: Path):
    s = System(
        stack,
        tmp_path / "sys",
        env={
            "DRIFTLINE_REPORTS__LEADER_INTERVAL_S": "0.5",
            "DRIFTLINE_REPORTS__WORKER_POLL_S": "0.2",
        },
    )
    try:
        await s.start()
        await s.add_replica(SERVICE)  # a standby is ready: it serves the API from the database
        yield s
    finally:
        await s.stop()


async def test_kill_9_of_the_generating_leader(system: System) -> None:
    (leader,) = await poll(
        lambda: system.leaders(SERVICE), timeout=30, what="one report leader", interval=0.2
    )
    (standby,) = [k for k in system.replicas(SERVICE) if k != leader]
    tenant = await Tenant.create(system, "reports")
    end = datetime.now(UTC)
    body: dict[str, Any] = {
        "framework": "sox",
        "period_start": (end - timedelta(days=1)).isoformat(),
        "period_end": end.isoformat(),
        "formats": ["json", "html", "pdf"],
    }
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        ids = []
        for _ in range(REPORTS):
            r = await http.post(f"{system.url(leader)}/v1/reports", json=body)
            assert r.status_code in (201, 202), r.text
            ids.append(r.json()["id"])

        async def job(url: str, rid: str) -> dict[str, Any]:
            out: dict[str, Any] = (await http.get(f"{url}/v1/reports/{rid}")).json()
            return out

        async def one_running() -> str | None:
            for rid in ids:
                j = await job(system.url(standby), rid)
                if j["status"] == "running":
                    return rid
            return None

        in_flight = await poll(
            one_running, timeout=120, interval=0.05, what="a report being generated"
        )
        before = {rid: (await job(system.url(standby), rid))["status"] for rid in ids}
        killed_at = time.monotonic()
        system.kill(leader)

        async def standby_leads() -> bool:
            return standby in await system.leaders(SERVICE)

        await poll(standby_leads, timeout=30, interval=0.1, what="the standby leads")
        takeover_s = time.monotonic() - killed_at

        async def all_finished() -> dict[str, dict[str, Any]] | None:
            jobs = {rid: await job(system.url(standby), rid) for rid in ids}
            done = all(j["status"] in ("done", "failed") for j in jobs.values())
            return jobs if done else None

        jobs = await poll(all_finished, timeout=300, interval=0.5, what="every report finished")
        all_done_s = time.monotonic() - killed_at
        restarted_at = time.monotonic()
        system.respawn(leader)
        await system.wait_ready(leader)
        body_back = await system.readiness(leader)
        restarted_s = time.monotonic() - restarted_at

    generated = await system.topic("driftline.reports.v1").read(
        where=lambda r: r.get("tenant_id") == tenant.tenant_id and r.get("kind") == "generated",
        until=lambda rs: {r.get("report_id") for r in rs} >= set(ids),
        timeout=60,
    )
    pg = system.settings.postgres.model_copy(update={"database": system.database})
    conn = await asyncpg.connect(pg.dsn())
    try:
        attempts = {
            str(r["id"]): int(r["attempts"])
            for r in await conn.fetch("SELECT id, attempts FROM reports.reports")
        }
    finally:
        await conn.close()
    per_report = Counter(str(r["report_id"]) for r in generated)
    twice = {rid for rid, n in per_report.items() if n > 1}
    running_at_kill = {rid for rid, st in before.items() if st == "running"}
    figures = {
        "reports": REPORTS,
        "status_at_kill": dict(Counter(before.values())),
        "in_flight_report_attempts": attempts.get(in_flight),
        "takeover_s": round(takeover_s, 2),
        "all_done_after_kill_s": round(all_done_s, 2),
        "done": sum(1 for j in jobs.values() if j["status"] == "done"),
        "failed": [j.get("error") for j in jobs.values() if j["status"] != "done"],
        "generated_announcements": sum(per_report.values()),
        "generated_twice": len(twice),
        "running_at_kill": len(running_at_kill),
        "restarted_standby_s": round(restarted_s, 2),
        "restarted_leader_check": (body_back or {}).get("checks", {}).get("leader"),
    }
    record("report-failover", figures)
    assert takeover_s < 10.0, figures
    assert all(j["status"] == "done" for j in jobs.values()), figures  # none lost or failed
    assert set(per_report) == set(ids), figures  # every report announced as generated
    assert twice <= running_at_kill, figures  # duplicates only for the one in flight
    assert attempts.get(in_flight, 0) >= 2, figures  # taken over, not left running
    assert all_done_s < 300, figures  # not by the stale heartbeat (stale_after_s)
    assert await system.leaders(SERVICE) == [standby], figures
    assert "standby:" in str(figures["restarted_leader_check"]), figures
