"""Compliance-report settings: `DRIFTLINE_REPORTS__*` on top of the shared ones."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from driftline_core.events import alerts, audit, registry
from driftline_core.settings import DriftlineSettings

__all__ = ["DEV_SIGNING_SEED", "ReportOptions", "ReportSettings"]

DEV_SIGNING_SEED = b"driftline-dev-report-signing-k!!"[:32]
DEV_ADMIN_TOKEN = "driftline-dev-admin"


class ReportOptions(BaseModel):
    group_id: str = "driftline-compliance-report"
    # what reports are built from: the audit topic, the registry and the alerts
    topics: list[str] = Field(default_factory=lambda: [audit.TOPIC, registry.TOPIC, alerts.TOPIC])
    # a new deployment reads the topics' history; "latest" starts from now (tests)
    offset_reset: Literal["earliest", "latest"] = "earliest"
    signing_key_file: str | None = None  # Ed25519 private key (PEM) that signs manifests
    signing_key_id: str = "reports-dev-1"
    # the audit service's checkpoint key (PEM), to check the checkpoint a report quotes;
    # by default the audit service's dev key
    audit_public_key_file: str | None = None
    verify_timeout_s: float = Field(default=60.0, gt=0)  # wait for the audit service's answer
    # wait until everything published before a report started is stored as evidence
    catch_up_timeout_s: float = Field(default=30.0, gt=0)
    worker_poll_s: float = Field(default=1.0, gt=0)
    scheduler_tick_s: float = Field(default=30.0, gt=0)
    # a running job with no heartbeat (a leader that hangs: a new leader queues the running
    # jobs again at once, decision 45)
    stale_after_s: float = Field(default=300.0, gt=0)
    # the generator and the scheduler run on the leader only (decision 45): how often a
    # standby tries for the leadership and the leader checks its session
    leader_interval_s: float = Field(default=1.0, gt=0)
    max_period_days: int = Field(default=400, ge=1)
    max_page: int = Field(default=200, ge=1, le=1000)
    # the platform admin's token (as ingestion's): any tenant's reports, erased ones included
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)


class ReportSettings(DriftlineSettings):
    service_name: str = "compliance-report"
    reports: ReportOptions = Field(default_factory=ReportOptions)

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> ReportSettings:
        if self.environment in ("staging", "prod") and (
            self.reports.signing_key_file is None
            or self.reports.audit_public_key_file is None
            or self.reports.admin_token.get_secret_value() == DEV_ADMIN_TOKEN
        ):
            raise ValueError(
                "set DRIFTLINE_REPORTS__SIGNING_KEY_FILE and "
                "DRIFTLINE_REPORTS__AUDIT_PUBLIC_KEY_FILE and DRIFTLINE_REPORTS__ADMIN_TOKEN "
                "outside dev"
            )
        return self
