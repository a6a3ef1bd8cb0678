"""What the trail records of each source event: who did what to which resource, when."""

from __future__ import annotations

from typing import Any

from driftline_core.events import (
    AlertEvent,
    AuditRecord,
    RegistryChange,
    ReportEvent,
    RetrainRequested,
)
from driftline_core.kafka import Message

from .trail import Item

__all__ = ["CHECKPOINT_ACTION", "VERIFY_ACTION", "to_item"]

CHECKPOINT_ACTION = "audit.checkpoint"
VERIFY_ACTION = "audit.verify"  # also the answer to a report's request (details.report_id)


def to_item(msg: Message[Any]) -> Item | None:
    """None for what the trail does not record (its own checkpoint announcements)."""
    ev = msg.value
    common = {
        "tenant_id": ev.tenant_id,
        "source_id": ev.event_id,
        "source_topic": msg.topic,
        "occurred_at": ev.occurred_at,
        "payload": ev.model_dump_json().encode(),
    }
    if isinstance(ev, AuditRecord):
        if ev.service == "audit" and ev.action == CHECKPOINT_ACTION:
            return None
        return Item(
            **common,
            service=ev.service,
            actor=ev.actor.id,
            action=ev.action,
            resource_type=ev.resource.type,
            resource_id=ev.resource.id,
            outcome=ev.outcome,
        )
    if isinstance(ev, RegistryChange):
        rid = ev.model_id + (f"@{ev.model_version}" if ev.model_version else "")
        return Item(
            **common,
            service="ingestion",
            actor=ev.actor,
            action=f"registry.{ev.change}",
            resource_type="model",
            resource_id=rid,
            outcome="success",
        )
    if isinstance(ev, AlertEvent):
        return Item(
            **common,
            service="alerting",
            actor="service:alerting",
            action=f"alert.{ev.kind}",
            resource_type="alert",
            resource_id=ev.fingerprint,
            outcome="success",
        )
    if isinstance(ev, RetrainRequested):
        return Item(
            **common,
            service="alerting",
            actor="service:alerting",
            action=f"remediation.{ev.action}",
            resource_type="model",
            resource_id=ev.model_id,
            outcome="success",
        )
    if isinstance(ev, ReportEvent):
        return Item(
            **common,
            service="compliance-report",
            actor=ev.actor,
            action=f"report.{ev.kind}",
            resource_type="report",
            resource_id=str(ev.report_id),
            outcome="success",
        )
    raise TypeError(f"no audit mapping for {type(ev).__name__}")
