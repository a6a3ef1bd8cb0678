"""`driftline.audit.v1`: one record per change made or access served, by any service."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .envelope import Envelope

__all__ = ["TOPIC", "Actor", "AuditRecord", "Resource"]

TOPIC = "driftline.audit.v1"


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["user", "api_key", "service", "system"]
    id: str
    ip: str | None = None


class Resource(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    id: str


class AuditRecord(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    service: str
    actor: Actor
    action: str
    resource: Resource
    outcome: Literal["success", "denied", "failure"] = "success"
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
