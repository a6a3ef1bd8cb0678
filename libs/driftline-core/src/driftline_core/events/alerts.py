"""`driftline.alerts.v1`: alert lifecycle (firing, resolved), silences and deliveries."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field

from .envelope import Envelope

__all__ = ["TOPIC", "AlertEvent", "AlertEventKind"]

TOPIC = "driftline.alerts.v1"

AlertEventKind = Literal[
    "firing",
    "resolved",
    "silence_created",
    "silence_expired",
    "delivery_succeeded",
    "delivery_failed",
]


class AlertEvent(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    kind: AlertEventKind
    fingerprint: str
    rule_id: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    receiver: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.fingerprint}".encode()
