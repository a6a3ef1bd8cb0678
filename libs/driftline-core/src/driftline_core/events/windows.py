"""The window a result speaks of; shared by drift, quality and performance results."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .envelope import Envelope, ModelId

__all__ = ["WindowResult", "WindowSpan"]


class WindowSpan(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: AwareDatetime
    end: AwareDatetime
    events: int = Field(ge=0)
    late_events: int = Field(default=0, ge=0)


class WindowResult(Envelope):
    """Base of every per-window verdict: which model, version, segment and window."""

    model_id: ModelId
    model_version: str
    segment: dict[str, str] = Field(default_factory=dict)
    window: WindowSpan

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()
