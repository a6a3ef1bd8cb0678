"""`driftline.registry.v1`: every change to the model registry (compacted per model)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .envelope import Envelope, ModelId

__all__ = ["TOPIC", "Gate", "RegistryChange", "RegistryChangeKind", "ValidationEvidence"]

TOPIC = "driftline.registry.v1"

RegistryChangeKind = Literal[
    "model_registered",
    "model_updated",
    "model_deleted",
    "version_registered",
    "version_approved",
    "version_stage_changed",
    "schema_changed",
    "monitoring_config_changed",
    "reference_profile_updated",
]


class RegistryChange(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    model_id: ModelId
    model_version: str | None = None
    change: RegistryChangeKind
    actor: str
    details: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()


class Gate(BaseModel):
    """A quality gate on a validation metric: at least `min`, at most `max`, or both."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both")
        return self


class ValidationEvidence(BaseModel):
    """A version's pre-release validation (`metadata.validation` of a version): the dataset,
    the measured metrics and the gates they must meet. Compliance reports quote it."""

    model_config = ConfigDict(extra="allow")
    dataset: str = Field(min_length=1, max_length=500)
    metrics: dict[str, float] = Field(default_factory=dict)
    gates: dict[str, Gate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _measured(self) -> ValidationEvidence:
        missing = sorted(set(self.gates) - set(self.metrics))
        if missing:
            raise ValueError(f"gates on metrics that were not measured: {', '.join(missing)}")
        return self
