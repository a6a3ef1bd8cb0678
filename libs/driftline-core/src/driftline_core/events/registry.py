"""`driftline.registry.v1`: every change to the model registry (compacted per model)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from .envelope import Envelope, ModelId

__all__ = ["TOPIC", "RegistryChange", "RegistryChangeKind"]

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
