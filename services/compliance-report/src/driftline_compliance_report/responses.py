"""What the compliance-report routes answer, as the models their OpenAPI operations declare
(extra members allowed: a field added later reaches clients before the model names it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ReportFile", "ReportOut", "ReportPage", "Schedule", "SigningKey"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReportFile(_Out):
    name: str
    media_type: str
    bytes: int
    sha256: str


class ReportOut(_Out):
    """A report job: queued, running, done (files and a signed manifest) or failed."""

    id: str
    tenant_id: str
    framework: str
    period_start: datetime
    period_end: datetime
    model_id: str | None
    formats: list[str]
    status: str = Field(description="queued, running, done or failed")
    stage: str
    progress: float
    error: str | None
    requested_by: str
    schedule_id: str | None
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    manifest: dict[str, Any] | None = Field(description="hashes and the signature, once done")
    files: list[ReportFile] | None = Field(default=None, description="GET of one report only")
    downloads: dict[str, str] | None = Field(
        default=None, description="GET of one report only: file name -> its URL"
    )


class ReportPage(_Out):
    items: list[ReportOut]
    next_before: str | None = Field(description="the `before` of the next page, if any")


class SigningKey(_Out):
    key_id: str
    public_key: str = Field(description="PEM")
    fingerprint: str


class Schedule(_Out):
    """A report made every day, week or month, for the period just ended."""

    id: str
    tenant_id: str
    framework: str
    cadence: str = Field(description="daily, weekly or monthly")
    formats: list[str]
    model_id: str | None
    next_run_at: datetime = Field(description="when the next period ends and its report is made")
    created_by: str
    created_at: datetime
