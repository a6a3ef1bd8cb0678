"""Audit settings: `DRIFTLINE_AUDIT__*` on top of the shared ones."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator

from driftline_core.auditchain import DEV_CHECKPOINT_SEED
from driftline_core.events import alerts, audit, registry, remediation, reports
from driftline_core.settings import DriftlineSettings

__all__ = ["DEV_SIGNING_SEED", "AuditOptions", "AuditSettings"]

DEV_SIGNING_SEED = DEV_CHECKPOINT_SEED
DEV_WRITER_PASSWORD = "driftline-audit-dev"


class AuditOptions(BaseModel):
    group_id: str = "driftline-audit"
    # the audit topic and the control topics; another topic listed here carries audit records
    topics: list[str] = Field(
        default_factory=lambda: [
            audit.TOPIC,
            registry.TOPIC,
            alerts.TOPIC,
            remediation.TOPIC,
            reports.TOPIC,
        ]
    )
    # the database role the service writes with: SELECT and INSERT only (granted at start by
    # the schema owner, who runs the migrations); it cannot UPDATE, DELETE or TRUNCATE
    writer_user: str = "driftline_audit"
    writer_password: SecretStr = SecretStr(DEV_WRITER_PASSWORD)
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_s: float = Field(default=60.0, gt=0)
    signing_key_file: str | None = None  # Ed25519 private key (PEM) that signs checkpoints
    signing_key_id: str = "audit-dev-1"
    max_page: int = Field(default=1000, ge=1, le=10_000)
    archive_dir: str = ".stack/archive/audit"  # where expired segments are archived
    # keyless verification of at least this many records runs in one process per core
    # (workers: 0 = the machine's cores, 1 = never in parallel); off by default (decision
    # 51: on 2 cores shared with PostgreSQL it was slower than one process)
    parallel_verify_min_records: int = Field(default=4000, ge=1)
    parallel_verify_workers: int = Field(default=1, ge=0)


class AuditSettings(DriftlineSettings):
    service_name: str = "audit"
    audit: AuditOptions = Field(default_factory=AuditOptions)

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> AuditSettings:
        if self.environment in ("staging", "prod") and (
            self.audit.signing_key_file is None
            or self.audit.writer_password.get_secret_value() == DEV_WRITER_PASSWORD
        ):
            raise ValueError(
                "set DRIFTLINE_AUDIT__SIGNING_KEY_FILE and DRIFTLINE_AUDIT__WRITER_PASSWORD "
                "outside dev"
            )
        return self
