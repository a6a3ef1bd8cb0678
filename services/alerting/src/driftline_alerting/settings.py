"""Alerting settings: `DRIFTLINE_ALERTING__*` on top of the shared ones."""

from __future__ import annotations

from pydantic import BaseModel, Field

from driftline_core.settings import DriftlineSettings

__all__ = ["AlertingOptions", "AlertingSettings"]


class AlertingOptions(BaseModel):
    group_id: str = "alerting"
    tick_s: float = Field(default=1.0, gt=0, description="how often groups and clocks are checked")
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1, description="consecutive failures to open")
    breaker_open_s: float = Field(default=30.0, gt=0)
    rules_file: str | None = Field(
        default=None, description="YAML file of rules (and routing) per tenant, loaded at start"
    )
    external_url: str = Field(
        default="http://localhost:8103",
        description="the address users reach Driftline at: every notification links to "
        "{external_url}/v1/alerts/<fingerprint> and the model; Alertmanager's externalURL",
    )
    models_url: str | None = Field(
        default=None,
        description="where {models_url}/v1/models/<model> is, when the registry has another "
        "address than external_url",
    )
    leader_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="how often a standby tries for the leadership and the leader checks its "
        "PostgreSQL session (decision 38)",
    )
    default_rules: bool = Field(
        default=True, description="tenants without rules of their own get the default rules"
    )


class AlertingSettings(DriftlineSettings):
    service_name: str = "alerting"
    alerting: AlertingOptions = Field(default_factory=AlertingOptions)
