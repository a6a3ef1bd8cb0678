"""Every service records what it changed and what it served on `driftline.audit.v1`."""

from __future__ import annotations

import logging
from typing import Any, Literal

from .events.audit import Actor, AuditRecord, Resource
from .kafka.producer import EventProducer

__all__ = ["AuditEmitter"]

log = logging.getLogger(__name__)


class AuditEmitter:
    def __init__(self, producer: EventProducer, service: str) -> None:
        self._producer = producer
        self._service = service

    async def record(
        self,
        *,
        tenant_id: str,
        actor: Actor,
        action: str,
        resource: Resource,
        outcome: Literal["success", "denied", "failure"] = "success",
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Publish one audit record and wait for the broker's acknowledgement."""
        rec = AuditRecord(
            tenant_id=tenant_id,
            service=self._service,
            actor=actor,
            action=action,
            resource=resource,
            outcome=outcome,
            request_id=request_id,
            details=details or {},
        )
        await self._producer.send(rec)
        return rec
