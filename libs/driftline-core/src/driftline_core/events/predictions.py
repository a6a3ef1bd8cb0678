"""`driftline.predictions.v1`: one model inference, keyed `tenant_id:model_id`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .envelope import Envelope, ModelId

__all__ = ["MAX_FEATURES", "TOPIC", "FeatureValue", "PredictionEvent", "PredictionValue"]

TOPIC = "driftline.predictions.v1"

FeatureValue = float | int | str | bool | list[float] | None
PredictionValue = float | int | str | bool | list[float]

# More features than any model has: an event with more is refused (at the edge and by every
# consumer, into the DLQ) before anything loops over them.
MAX_FEATURES = 10_000


class PredictionEvent(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    model_id: ModelId
    model_version: str = Field(min_length=1, max_length=64)
    features: dict[str, FeatureValue] = Field(max_length=MAX_FEATURES)
    prediction: PredictionValue
    probabilities: dict[str, float] | None = None
    segment: dict[str, str] = Field(default_factory=dict)
    business_value: float | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    # Sensitive features, encrypted under the tenant's data key (base64 AES-256-GCM).
    encrypted_features: dict[str, str] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()
