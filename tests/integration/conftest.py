"""The ingestion, alerting, audit and compliance-report apps in-process, side by side,
against the real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager

from driftline_alerting.app import build as build_alerting
from driftline_alerting.app import create_app as alerting_app
from driftline_alerting.settings import AlertingOptions, AlertingSettings
from driftline_audit.app import build as build_audit
from driftline_audit.app import create_app as audit_app
from driftline_audit.settings import AuditOptions, AuditSettings
from driftline_compliance_report.app import build as build_reports
from driftline_compliance_report.app import create_app as reports_app
from driftline_compliance_report.settings import ReportOptions, ReportSettings
from driftline_ingestion.app import build as build_ingestion
from driftline_ingestion.app import create_app as ingestion_app
from driftline_ingestion.settings import IngestionSettings


@dataclass
class Apps:
    ingestion: httpx.AsyncClient
    alerting: httpx.AsyncClient
    ingestion_app: object
    alerting_app: object
    audit: httpx.AsyncClient
    audit_app: object
    reports: httpx.AsyncClient
    reports_app: object


@pytest.fixture(scope="module")
async def apps(stack) -> AsyncIterator[Apps]:
    si = IngestionSettings(environment="test")
    sa = AlertingSettings(environment="test", alerting=AlertingOptions(group_id="security-test"))
    su = AuditSettings(environment="test", audit=AuditOptions(group_id="security-test"))
    ia, aa = ingestion_app(si, build_ingestion(si)), alerting_app(sa, build_alerting(sa))
    ua = audit_app(su, build_audit(su))
    sr = ReportSettings(
        environment="test",
        reports=ReportOptions(
            group_id="security-test", offset_reset="latest", verify_timeout_s=5, worker_poll_s=0.2
        ),
    )
    ra = reports_app(sr, build_reports(sr))
    async with (
        LifespanManager(ia, startup_timeout=60, shutdown_timeout=30) as mi,
        LifespanManager(aa, startup_timeout=60, shutdown_timeout=30) as ma,
        LifespanManager(ua, startup_timeout=60, shutdown_timeout=30) as mu,
        LifespanManager(ra, startup_timeout=60, shutdown_timeout=30) as mr,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=mi.app), base_url="http://ingestion", timeout=30
        ) as ci,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=ma.app), base_url="http://alerting", timeout=30
        ) as ca,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=mu.app), base_url="http://audit", timeout=30
        ) as cu,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=mr.app), base_url="http://reports", timeout=30
        ) as cr,
    ):
        yield Apps(ci, ca, ia, aa, cu, ua, cr, ra)
