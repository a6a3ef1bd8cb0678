"""What alerting's routes answer, as the models their OpenAPI operations declare, and the
bodies its routes read from the raw request (YAML or JSON).

`/v1/*`: Driftline's own shapes. Every model allows extra members (the contract is the
fields named here; nothing is dropped by the response model), and the routes answer with
`response_model_exclude_unset`, so a member the route leaves out is not added as a null.
Timestamps the routes write as text (`isoformat()`, Alertmanager's milliseconds) stay that
text: they are strings of format date-time here, not re-serialised.

`/api/v2/*`: the definitions of Alertmanager's api/v2/openapi.yaml (gettableAlert,
alertGroup, receiver, gettableSilence, postSilences' `{silenceID}`, alertmanagerStatus),
field for field and in its order, so amtool, karma and Grafana read what Alertmanager
sends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .rules import Rule

__all__ = [
    "AlertDetail",
    "AlertGroup",
    "AlertGroupRef",
    "AlertOut",
    "AlertStatus",
    "AlertingConfigBody",
    "AlertingConfigOut",
    "AlertingConfigSaved",
    "AlertmanagerConfigText",
    "AlertmanagerReceiver",
    "AlertmanagerStatus",
    "ClusterStatus",
    "DeliveryAttempt",
    "DeliveryOut",
    "GettableAlert",
    "GettableSilence",
    "MatcherOut",
    "PeerStatus",
    "ReceiverReference",
    "RuleList",
    "RuleOut",
    "RuleUpdate",
    "SilenceCreated",
    "SilenceListed",
    "SilenceMatcher",
    "SilenceOut",
    "SilenceStatus",
    "VersionInfo",
]

# text written by the route (isoformat, or Alertmanager's `...T12:00:00.000Z`), kept as is
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
LabelSet = dict[str, str]
# a number as it was computed or stored (an integral one is not rewritten as `5.0`)
Number = Annotated[float | int, WithJsonSchema({"type": "number"})]


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- /v1: rules ----------------------------------------------------------------------------


class ConditionOut(_Out):
    metric: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float
    feature: str | None = None


class RemediationOut(_Out):
    command: bool
    webhook: str | None = None
    webhook_secret: str | None = Field(
        default=None, description="`<redacted>` when set (write it back as is to keep it)"
    )
    cooldown_s: int


class RuleOut(_Out):
    id: str
    name: str
    model_id: str | None = Field(description="null: every model of the tenant")
    condition: ConditionOut
    for_windows: int
    severity: Literal["info", "warning", "critical"]
    labels: dict[str, str]
    annotations: dict[str, str]
    remediation: RemediationOut | None
    enabled: bool


class RuleList(_Out):
    defaults: bool = Field(description="true: the tenant has no rules of its own (the defaults)")
    rules: list[RuleOut]


class RuleUpdate(Rule):
    """A rule as PUT /v1/alert-rules/{rule_id} reads it: the path names the rule."""

    id: Any = Field(default=None, description="ignored: the path's rule_id is the rule's id")


# --- /v1: routing configuration --------------------------------------------------------------


class AlertingConfigBody(BaseModel):
    """An alertmanager.yml (as YAML or JSON), or Driftline's earlier form; every member is
    checked as Alertmanager's configuration (docs/alerting.md). Files on Driftline's
    servers (`*_file`) cannot be named here; `<secret>` keeps the stored secret."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    global_: dict[str, Any] = Field(default_factory=dict, alias="global")
    route: dict[str, Any] = Field(default_factory=dict)
    receivers: list[dict[str, Any]] = Field(default_factory=list)
    inhibit_rules: list[dict[str, Any]] = Field(default_factory=list)
    time_intervals: list[dict[str, Any]] = Field(default_factory=list)
    mute_time_intervals: list[dict[str, Any]] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    tracing: dict[str, Any] | None = None


class AlertingConfigOut(_Out):
    """The tenant's configuration in Alertmanager's syntax (durations as `30s`, matchers as
    strings), secrets shown as `<secret>`; members left empty are left out."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    global_: dict[str, Any] | None = Field(default=None, alias="global")
    route: dict[str, Any]
    receivers: list[dict[str, Any]]
    inhibit_rules: list[dict[str, Any]] | None = None
    time_intervals: list[dict[str, Any]] | None = None
    mute_time_intervals: list[dict[str, Any]] | None = None
    templates: list[str] | None = None
    tracing: dict[str, Any] | None = None


class AlertingConfigSaved(AlertingConfigOut):
    warnings: list[str] = Field(description="members kept but not used by Driftline")


# --- /v1: silences ---------------------------------------------------------------------------


class MatcherOut(_Out):
    name: str
    value: str
    op: Literal["=", "!=", "=~", "!~"]


class SilenceOut(_Out):
    id: str
    matchers: list[MatcherOut]
    starts_at: Timestamp
    ends_at: Timestamp
    created_by: str
    comment: str
    updated_at: Timestamp | None


class SilenceListed(SilenceOut):
    state: Literal["active", "pending", "expired"]


# --- /v1: alerts and deliveries --------------------------------------------------------------


class AlertOut(_Out):
    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: Timestamp
    value: Number


class AlertGroupRef(_Out):
    key: str
    receiver: str


class AlertDetail(AlertOut):
    rule_id: str
    ends_at: Timestamp | None
    evidence: list[dict[str, Any]]
    model_url: str
    groups: list[AlertGroupRef] = Field(description="the groups it is in, and their receivers")


class DeliveryAttempt(_Out):
    attempt: int
    at: Timestamp
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: Number


class DeliveryOut(_Out):
    id: str = Field(description="the idempotency key receivers see")
    receiver: str
    kind: Literal["notification", "remediation"]
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempts_log: list[DeliveryAttempt]


# --- /api/v2: Alertmanager's definitions -----------------------------------------------------


class ReceiverReference(_Out):
    name: str


class AlertmanagerReceiver(_Out):
    """Alertmanager's `receiver`."""

    name: str
    labels: LabelSet = Field(
        default_factory=dict, description="not sent: Driftline's receivers have no labels"
    )


class AlertStatus(_Out):
    state: Literal["unprocessed", "active", "suppressed"]
    silencedBy: list[str]
    inhibitedBy: list[str]
    mutedBy: list[str]


class GettableAlert(_Out):
    labels: LabelSet
    annotations: LabelSet
    receivers: list[ReceiverReference]
    fingerprint: str
    startsAt: Timestamp
    updatedAt: Timestamp
    endsAt: Timestamp
    generatorURL: Annotated[str, WithJsonSchema({"type": "string", "format": "uri"})]
    status: AlertStatus


class AlertGroup(_Out):
    labels: LabelSet
    routeLabels: LabelSet
    receiver: ReceiverReference
    alerts: list[GettableAlert]


class SilenceStatus(_Out):
    state: Literal["expired", "active", "pending"]


class SilenceMatcher(_Out):
    """Alertmanager's `matcher`."""

    name: str
    value: str
    isRegex: bool
    isEqual: bool = True


class GettableSilence(_Out):
    id: str
    status: SilenceStatus
    updatedAt: Timestamp
    matchers: list[SilenceMatcher] = Field(min_length=1)
    startsAt: Timestamp
    endsAt: Timestamp
    createdBy: str
    comment: str
    annotations: LabelSet


class SilenceCreated(_Out):
    """postSilences' answer."""

    silenceID: str


class PeerStatus(_Out):
    name: str
    address: str


class ClusterStatus(_Out):
    name: str
    status: Literal["ready", "settling", "disabled"]
    peers: list[PeerStatus]


class VersionInfo(_Out):
    version: str
    revision: str
    branch: str
    buildUser: str
    buildDate: str
    goVersion: str


class AlertmanagerConfigText(_Out):
    """Alertmanager's `alertmanagerConfig`: the configuration as YAML text."""

    original: str


class AlertmanagerStatus(_Out):
    cluster: ClusterStatus
    versionInfo: VersionInfo
    config: AlertmanagerConfigText
    uptime: Timestamp
