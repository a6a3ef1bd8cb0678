"""`driftline.reports.v1`: compliance report lifecycle (requested, generated, downloaded)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from .envelope import Envelope

__all__ = ["TOPIC", "ReportEvent"]

TOPIC = "driftline.reports.v1"


class ReportEvent(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    report_id: UUID
    kind: Literal["requested", "generated", "failed", "downloaded"]
    framework: Literal["gdpr", "sox", "fda", "model_card"]
    period_start: AwareDatetime
    period_end: AwareDatetime
    actor: str
    formats: list[Literal["json", "html", "pdf"]] = Field(default_factory=list)
    manifest_sha256: str | None = None
