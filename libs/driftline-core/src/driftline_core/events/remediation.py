"""`driftline.remediation.v1`: commands to act on a model, e.g. retrain it."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from .envelope import Envelope, ModelId

__all__ = ["TOPIC", "RetrainRequested"]

TOPIC = "driftline.remediation.v1"


class RetrainRequested(Envelope):
    """A command: retrain this model, with the evidence that asked for it."""

    TOPIC: ClassVar[str] = TOPIC

    action: Literal["retrain"] = "retrain"
    model_id: ModelId
    model_version: str | None = None
    rule_id: str
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()
