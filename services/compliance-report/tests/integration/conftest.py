"""The ingestion, audit and compliance-report apps in-process against the real stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from driftline_audit.app import build as build_audit
from driftline_audit.app import create_app as audit_app
from driftline_audit.settings import AuditOptions, AuditSettings
from driftline_compliance_report.app import ReportDeps
from driftline_compliance_report.app import build as build_reports
from driftline_compliance_report.app import create_app as reports_app
from driftline_compliance_report.settings import ReportOptions, ReportSettings
from driftline_core.events import Actor, AuditRecord, Resource
from driftline_core.kafka import EventProducer
from driftline_ingestion.app import build as build_ingestion
from driftline_ingestion.app import create_app as ingestion_app
from driftline_ingestion.settings import IngestionSettings


@dataclass
class Apps:
    ingestion: httpx.AsyncClient
    audit: httpx.AsyncClient
    reports: httpx.AsyncClient
    deps: ReportDeps
    producer: EventProducer
    wait: Callable[..., Awaitable[None]]  # wait_for, for the tests (conftest is not imported)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    """Bounded polling for an eventual outcome."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.2)


def _client(app: Any, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=60
    )


@pytest.fixture(scope="module")
async def apps(stack) -> AsyncIterator[Apps]:
    si = IngestionSettings(environment="test")
    # a fixed group: a first run reads the audit topic's history once, later runs resume
    su = AuditSettings(environment="test", audit=AuditOptions(group_id="compliance-test-audit"))
    sr = ReportSettings(
        environment="test",
        reports=ReportOptions(
            group_id=f"reports-test-{uuid.uuid4().hex[:8]}",
            offset_reset="latest",
            verify_timeout_s=60,
            worker_poll_s=0.2,
            scheduler_tick_s=3600,
        ),
    )
    deps = build_reports(sr)
    ia, ua = ingestion_app(si, build_ingestion(si)), audit_app(su, build_audit(su))
    ra = reports_app(sr, deps)
    producer = EventProducer(stack.kafka)
    await producer.start()
    try:
        async with (
            LifespanManager(ia, startup_timeout=60, shutdown_timeout=30) as mi,
            LifespanManager(ua, startup_timeout=60, shutdown_timeout=30) as mu,
            LifespanManager(ra, startup_timeout=60, shutdown_timeout=30) as mr,
            _client(mi.app, "ingestion") as ci,
            _client(mu.app, "audit") as cu,
            _client(mr.app, "reports") as cr,
        ):
            # "latest": the consumer must hold its partitions before the test produces;
            # a probe record that lands in the evidence table proves it does (of a tenant
            # that exists: records naming an unknown tenant are dead-lettered)
            probe = f"probe-{uuid.uuid4().hex[:8]}"
            made = await ci.post(
                "/v1/auth/tenants",
                json={"id": probe, "name": probe},
                headers={"X-Admin-Token": "driftline-dev-admin"},
            )
            assert made.status_code == 201, made.text

            async def landed() -> bool:
                await producer.send(
                    AuditRecord(
                        tenant_id=probe,
                        service="test",
                        actor=Actor(type="system", id="test"),
                        action="probe",
                        resource=Resource(type="probe", id=probe),
                    )
                )
                await asyncio.sleep(0.5)
                return bool(await deps.evidence.facts(probe, decrypt=False))

            await wait_for(landed, timeout=90)
            yield Apps(ci, cu, cr, deps, producer, wait_for)
    finally:
        await producer.stop()
