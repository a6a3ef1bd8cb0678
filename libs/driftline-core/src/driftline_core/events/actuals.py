"""`driftline.actuals.v1`: a ground-truth label, joined to its prediction by event id."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from .envelope import Envelope, ModelId
from .predictions import PredictionValue

__all__ = ["TOPIC", "ActualEvent"]

TOPIC = "driftline.actuals.v1"


class ActualEvent(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    model_id: ModelId
    prediction_event_id: UUID
    actual: PredictionValue
    segment: dict[str, str] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()
