"""The report document: one pydantic model whose JSON Schema is published
(`docs/schemas/report.schema.json`, `make schemas`). Every report is validated against it
before it is rendered, so the JSON, HTML and PDF say the same thing."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_ID",
    "AccessChange",
    "AlertRecord",
    "Approval",
    "Change",
    "Erasure",
    "FeatureDriftCount",
    "Gate",
    "Integrity",
    "KeyStatus",
    "ModelMonitoring",
    "ModelVersion",
    "PersonalDataAccess",
    "ProcessingRecord",
    "Report",
    "Retention",
    "Violation",
    "schema_json",
]

SCHEMA_ID: Literal["driftline-report/1"] = "driftline-report/1"
Framework = Literal["gdpr", "sox", "fda", "model_card"]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Period(_M):
    start: datetime
    end: datetime


class Integrity(_M):
    """The audit service's verification of the tenant's whole chain, made for this report."""

    status: Literal["verified", "broken", "unavailable"]
    records: int = 0
    first_break: dict[str, Any] | None = None
    checkpoint_seq: int | None = None
    checkpoint_hash: str | None = None
    checkpoint_at: str | None = None
    checkpoint_key_id: str | None = None
    checkpoint_signature_valid: bool = False
    verified_at: datetime | None = None
    detail: str = ""


class ProcessingRecord(_M):
    model_id: str
    name: str
    task: str
    purpose: str
    features: int
    categories: dict[str, int]  # feature kind -> count
    sensitive_fields: list[str]
    protection: dict[str, str]  # field or "other fields" -> how it is protected
    label_retention_days: float
    registered_at: datetime
    registered_by: str
    deleted_at: datetime | None = None


class Erasure(_M):
    at: datetime
    actor: str
    reason: str
    data_keys_destroyed: int
    sessions_revoked: int
    users_disabled: int


class PersonalDataAccess(_M):
    actor: str
    action: str
    count: int
    denied: int
    first: datetime
    last: datetime


class Retention(_M):
    audit_retention_days: int | None
    set_at: datetime | None = None
    set_by: str | None = None
    holds_placed: int = 0
    holds_released: int = 0


class KeyStatus(_M):
    versions: int
    current_version: int | None
    destroyed: int
    rotations_in_period: list[dict[str, Any]]
    kek_ids: list[str]
    unreadable_records_in_period: int


class Change(_M):
    at: datetime
    actor: str
    change: str
    model_id: str
    version: str | None = None
    detail: str = ""


class Violation(_M):
    rule: Literal["approver-is-submitter", "submitter-promoted-to-production", "self-role-change"]
    at: datetime
    actor: str
    model_id: str | None = None
    version: str | None = None
    description: str


class AccessChange(_M):
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    detail: str = ""


class Gate(_M):
    metric: str
    op: Literal[">=", "<="]
    threshold: float
    value: float | None
    met: bool


class Approval(_M):
    """An electronic signature (21 CFR 11.50): who signed, when, and what it means."""

    model_id: str
    version: str
    signer: str
    at: datetime
    meaning: str
    comment: str
    submitted_by: str


class ModelVersion(_M):
    model_id: str
    version: str
    submitted_by: str
    submitted_at: datetime
    artifact_sha256: str
    artifact_uri: str
    validation_dataset: str | None = None
    gates: list[Gate] = Field(default_factory=list)
    gates_met: bool | None = None  # None: no validation evidence was registered
    approval: Approval | None = None
    stages: list[dict[str, Any]] = Field(default_factory=list)
    stage: str = "none"


class FeatureDriftCount(_M):
    feature: str
    windows: int
    drifted: int


class AlertRecord(_M):
    fingerprint: str
    rule_id: str | None
    severity: str
    model_id: str | None
    summary: str
    started_at: datetime
    resolved_at: datetime | None
    minutes_to_resolve: float | None


class ModelMonitoring(_M):
    """Drift counts by what they count: `windows_with_dataset_drift` are the windows drift
    detection declared drifted as a whole (the share of drifted input features reached the
    model's threshold); `windows_with_feature_drift` those where at least one input feature
    drifted; `windows_with_prediction_drift` those where the prediction's distribution did."""

    model_id: str
    windows: int
    events: int
    windows_with_dataset_drift: int
    windows_with_feature_drift: int
    windows_with_prediction_drift: int
    features_with_drift: list[str]  # input features that drifted in at least one window
    versions_monitored: list[str]  # model versions with windows in the period
    mean_drifted_share: float | None
    max_drifted_share: float | None
    min_quality_score: float | None
    features: list[FeatureDriftCount]
    performance_windows: int
    performance: dict[str, dict[str, float]]  # metric -> {mean, min, max, last}
    series: dict[str, list[list[Any]]]  # chart data: name -> [[time, value], ...]
    alerts_fired: int
    alerts_resolved: int


class Report(_M):
    schema_id: Literal["driftline-report/1"] = SCHEMA_ID
    report_id: str
    tenant_id: str
    framework: Framework
    title: str
    period: Period
    model_id: str | None = None
    generated_at: datetime
    generated_by: str
    summary: dict[str, int | float | str | bool | None]
    integrity: Integrity
    tenant_erased: bool = False
    # GDPR
    processing: list[ProcessingRecord] = Field(default_factory=list)
    erasures: list[Erasure] = Field(default_factory=list)
    personal_data_access: list[PersonalDataAccess] = Field(default_factory=list)
    retention: Retention | None = None
    keys: KeyStatus | None = None
    # SOX
    changes: list[Change] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
    access_changes: list[AccessChange] = Field(default_factory=list)
    # FDA and model card
    versions: list[ModelVersion] = Field(default_factory=list)
    monitoring: list[ModelMonitoring] = Field(default_factory=list)
    alerts: list[AlertRecord] = Field(default_factory=list)
    signatures: list[Approval] = Field(default_factory=list)


def schema_json() -> str:
    """The published JSON Schema of a report's `report.json`."""
    schema = Report.model_json_schema(mode="serialization")
    schema["$id"] = "https://driftline.dev/schemas/report.schema.json"
    schema["x-format"] = SCHEMA_ID
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas") / "report.schema.json"
    target.write_text(schema_json())
    sys.stderr.write(f"wrote {target}\n")
