"""Generation in the background: a worker takes queued reports one at a time and reports its
progress by stage; a scheduler queues each schedule's report once its period has ended.

A report asks the audit service to verify the tenant's trail by announcing itself
(`requested` on `driftline.reports.v1`, which the audit service consumes); the answer comes
back as an `audit.verify` record naming the report, and lands in the evidence table like
any other audit record. The worker waits for it up to `verify_timeout_s` and otherwise says
in the report that the trail was not verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from driftline_core.auditchain import verify_checkpoint
from driftline_core.crypto import DataKeyring
from driftline_core.reportsign import sign_manifest

from .evidence import ALERTS, AUDIT, REGISTRY, EvidenceStore
from .frameworks import Inputs, build_report
from .history import Reader, load_history
from .model import Integrity, Report
from .render import render
from .store import ReportStore

__all__ = ["Generator", "Scheduler", "integrity_from"]

log = logging.getLogger(__name__)
_render_lock = threading.Lock()  # matplotlib's pyplot is not thread-safe
Announce = Callable[[dict[str, Any], str, dict[str, Any] | None], Awaitable[None]]
# facts before the period that still shape it (retention policy, user names)
_CONTEXT_KINDS = ["audit.retention_set", "audit.hold_placed", "audit.hold_released", "user.create"]
_ALERT_LOOKBACK = timedelta(days=30)  # an alert open at the start fired before it


def integrity_from(answer: dict[str, Any] | None, audit_key: Ed25519PublicKey) -> Integrity:
    if answer is None:
        return Integrity(status="unavailable", detail="the audit service did not answer in time")
    d = answer.get("details") or {}
    cp = d.get("checkpoint") or {}
    if "error" in d:
        return Integrity(status="unavailable", detail=f"the audit service failed: {d['error']}")
    return Integrity(
        status="verified" if d.get("ok") else "broken",
        records=int(d.get("records") or 0),
        first_break=d.get("first_break"),
        checkpoint_seq=cp.get("seq"),
        checkpoint_hash=cp.get("hash"),
        checkpoint_at=cp.get("created_at"),
        checkpoint_key_id=cp.get("key_id"),
        checkpoint_signature_valid=bool(cp) and verify_checkpoint(audit_key, cp),
        verified_at=answer.get("occurred_at"),
    )


@dataclass
class Generator:
    store: ReportStore
    evidence: EvidenceStore
    reader: Reader | None
    keyring: DataKeyring
    signing_key: Ed25519PrivateKey
    signing_key_id: str
    audit_key: Ed25519PublicKey
    announce: Announce
    verify_timeout_s: float = 60.0
    poll_s: float = 1.0
    stale_after_s: float = 300.0
    # "everything published before now is stored": the evidence consumer's watermark
    caught_up: Callable[[float], Awaitable[bool]] | None = None
    catch_up_timeout_s: float = 30.0
    max_attempts: int = 3

    async def run_once(self) -> bool:
        """Generate the next queued report, if any; True when one was taken."""
        job = await self.store.claim(self.stale_after_s)
        if job is None:
            return False
        if job["attempts"] > self.max_attempts:
            # its workers kept dying on it (killed, out of memory): stop retrying
            await self.store.fail(job["id"], f"gave up after {self.max_attempts} attempts")
            with contextlib.suppress(Exception):
                await self.announce(job, "failed", None)
            return True
        try:
            await self.generate(job)
        except Exception as e:
            log.exception("report generation failed", extra={"report_id": job["id"]})
            await self.store.fail(job["id"], f"{type(e).__name__}: {e}")
            with contextlib.suppress(Exception):
                await self.announce(job, "failed", None)
        return True

    async def generate(self, job: dict[str, Any]) -> None:
        rid, tenant = job["id"], job["tenant_id"]
        start, end = job["period_start"], job["period_end"]
        model = job["model_id"]
        await self.store.progress(rid, "waiting for the evidence to catch up", 0.05)
        complete = self.caught_up is None or await self.caught_up(self.catch_up_timeout_s)
        await self.store.progress(rid, "collecting evidence", 0.1)
        registry = await self.evidence.facts(tenant, topic=REGISTRY, end=end, model_id=model)
        audit = await self.evidence.facts(tenant, topic=AUDIT, start=start, end=end)
        context = await self.evidence.facts(tenant, kinds=_CONTEXT_KINDS, end=end)
        alerts: list[dict[str, Any]] = []
        history = {}
        if job["framework"] in ("fda", "model_card"):
            alerts = await self.evidence.facts(
                tenant, topic=ALERTS, start=start - _ALERT_LOOKBACK, end=end, model_id=model
            )
            await self.store.progress(rid, "reading monitoring history", 0.3)
            if self.reader is not None:
                history = await load_history(self.reader, tenant, start, end, model)
        await self.store.progress(rid, "verifying the audit trail", 0.45)
        answer = await self._verification(tenant, rid, job["created_at"])
        inputs = Inputs(
            report_id=rid,
            tenant_id=tenant,
            framework=job["framework"],
            start=start,
            end=end,
            generated_at=datetime.now(UTC),
            generated_by=job["requested_by"],
            model_id=model,
            registry=registry,
            audit=audit,
            alerts=alerts,
            history=history,
            integrity=integrity_from(answer, self.audit_key),
            key_versions=await self.keyring.versions(tenant),
            retention_facts=context,
            counts=await self.evidence.counts(tenant, start, end),
            evidence_complete=complete,
        )
        await self.store.progress(rid, "building", 0.6)
        report = Report.model_validate(build_report(inputs).model_dump())
        await self.store.progress(rid, "rendering", 0.7)
        files = await asyncio.to_thread(_render, report, job["formats"])
        await self.store.progress(rid, "signing", 0.9)
        meta = {
            "report_id": rid,
            "tenant_id": tenant,
            "framework": job["framework"],
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "model_id": model,
            "generated_at": report.generated_at.isoformat(),
        }
        manifest = sign_manifest(self.signing_key, self.signing_key_id, meta, files)
        await self.store.finish(job, manifest, files)
        await self.announce(job, "generated", manifest)

    async def _verification(
        self, tenant: str, report_id: str, since: datetime
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + self.verify_timeout_s
        while True:
            for f in await self.evidence.facts(
                tenant, kinds=["audit.verify"], start=since - timedelta(minutes=1)
            ):
                body = f["body"] or {}
                if (body.get("details") or {}).get("report_id") == report_id:
                    return body
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(0.25, self.poll_s))

    async def run(self) -> None:
        while True:
            try:
                if not await self.run_once():
                    await asyncio.sleep(self.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("report worker error")
                await asyncio.sleep(self.poll_s)


def _render(report: Report, formats: list[str]) -> dict[str, bytes]:
    with _render_lock:
        return render(report, formats)


@dataclass
class Scheduler:
    store: ReportStore
    queued: Callable[[dict[str, Any]], Awaitable[None]]  # announce a new report
    tick_s: float = 30.0

    async def run_once(self, now: datetime | None = None) -> int:
        n = 0
        for s in await self.store.due(now or datetime.now(UTC)):
            job = await self.store.create(
                tenant_id=s["tenant_id"],
                framework=s["framework"],
                start=s["period_start"],
                end=s["period_end"],
                model_id=s["model_id"],
                formats=list(s["formats"]),
                requested_by=f"schedule:{s['id']}",
                schedule_id=s["id"],
            )
            if job is not None:
                await self.queued(job)
                n += 1
        return n

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("report scheduler error")
            await asyncio.sleep(self.tick_s)
