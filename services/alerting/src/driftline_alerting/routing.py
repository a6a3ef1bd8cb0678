"""Alertmanager's routing model, per tenant: matchers, the routing tree, silences and
inhibition rules, and the configuration that holds them with the receivers.

Semantics follow Alertmanager: a route matches when all its matchers match; children are
tried in order and the first match wins unless it has `continue`; a route with no matching
child takes the alert itself. Unset timing and grouping are inherited from the parent. A
silence mutes an alert when all its matchers match, between its start and end. An inhibition
rule mutes a target alert while a firing source alert exists whose `equal` labels have the
same values."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, model_validator

__all__ = [
    "AlertingConfig",
    "EmailReceiver",
    "Inhibition",
    "Matcher",
    "PagerDutyReceiver",
    "Receiver",
    "Route",
    "Silence",
    "SlackReceiver",
    "TeamsReceiver",
    "WebhookReceiver",
    "matches",
]

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: str
    op: Literal["=", "!=", "=~", "!~"] = "="

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`severity="critical"`, `model=~"credit-.*"` (Alertmanager's syntax)."""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(f'not a matcher: {text!r} (e.g. severity="critical")')
        return cls(name=m[1], op=m[2], value=m[3])

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as e:
                raise ValueError(f"bad regular expression {self.value!r}: {e}") from e
        return self

    @cached_property
    def _re(self) -> re.Pattern[str]:
        return re.compile(f"^(?:{self.value})$")

    def __call__(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = bool(self._re.match(v))
        return hit if self.op == "=~" else not hit


def matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m(labels) for m in matchers)


def _matchers(v: object) -> object:
    if isinstance(v, list):
        return [Matcher.parse(x) if isinstance(x, str) else x for x in v]
    return v


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    receiver: str | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    group_by: list[str] | None = None  # ["..."] groups by every label
    group_wait_s: float | None = Field(default=None, ge=0)
    group_interval_s: float | None = Field(default=None, gt=0)
    repeat_interval_s: float | None = Field(default=None, gt=0)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _parse_matchers(cls, data: object) -> object:
        if isinstance(data, dict) and "matchers" in data:
            data = {**data, "matchers": _matchers(data["matchers"])}
        return data


class ResolvedRoute(BaseModel):
    """A route with everything inherited filled in; `path` names it in group keys."""

    model_config = ConfigDict(frozen=True)

    path: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float

    def group_key(self, labels: dict[str, str]) -> str:
        keys = sorted(labels) if self.group_by == ("...",) else list(self.group_by)
        return self.path + "{" + ",".join(f"{k}={labels.get(k, '')}" for k in keys) + "}"


def route(root: Route, labels: dict[str, str]) -> list[ResolvedRoute]:
    """The routes an alert goes to (Alertmanager's matching, with inheritance)."""
    base = ResolvedRoute(
        path="/",
        receiver=root.receiver or "default",
        group_by=tuple(root.group_by or ("alertname", "tenant", "model")),
        group_wait_s=root.group_wait_s if root.group_wait_s is not None else 30,
        group_interval_s=root.group_interval_s or 300,
        repeat_interval_s=root.repeat_interval_s or 4 * 3600,
    )

    def walk(node: Route, parent: ResolvedRoute) -> list[ResolvedRoute]:
        out: list[ResolvedRoute] = []
        for i, child in enumerate(node.routes):
            if not matches(child.matchers, labels):
                continue
            mine = ResolvedRoute(
                path=f"{parent.path}{i}/",
                receiver=child.receiver or parent.receiver,
                group_by=tuple(child.group_by) if child.group_by is not None else parent.group_by,
                group_wait_s=(
                    child.group_wait_s if child.group_wait_s is not None else parent.group_wait_s
                ),
                group_interval_s=child.group_interval_s or parent.group_interval_s,
                repeat_interval_s=child.repeat_interval_s or parent.repeat_interval_s,
            )
            out += walk(child, mine) or [mine]
            if not child.continue_:
                break
        return out

    return walk(root, base) or [base]


class Inhibition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_matchers: list[Matcher]
    target_matchers: list[Matcher]
    equal: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: object) -> object:
        if isinstance(data, dict):
            data = {
                **data,
                **{
                    k: _matchers(data[k])
                    for k in ("source_matchers", "target_matchers")
                    if k in data
                },
            }
        return data


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _order(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: datetime) -> bool:
        return self.active(now) and matches(list(self.matchers), labels)


class _Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    send_resolved: bool = True


class WebhookReceiver(_Receiver):
    """Signed per Standard Webhooks. Two secrets during a rotation: both sign."""

    type: Literal["webhook"] = "webhook"
    url: HttpUrl
    secrets: list[str] = Field(min_length=1, max_length=2)
    format: Literal["driftline", "alertmanager"] = "alertmanager"
    timeout_s: float = Field(default=10, gt=0, le=60)


class SlackReceiver(_Receiver):
    type: Literal["slack"] = "slack"
    url: HttpUrl  # incoming-webhook URL
    channel: str | None = None


class PagerDutyReceiver(_Receiver):
    type: Literal["pagerduty"] = "pagerduty"
    routing_key: str = Field(min_length=1)
    url: HttpUrl = HttpUrl("https://events.pagerduty.com/v2/enqueue")


class TeamsReceiver(_Receiver):
    type: Literal["teams"] = "teams"
    url: HttpUrl


class EmailReceiver(_Receiver):
    type: Literal["email"] = "email"
    to: list[str] = Field(min_length=1)
    sender: str
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    ca_file: str | None = Field(default=None, description="CA bundle to trust for STARTTLS")


Receiver = WebhookReceiver | SlackReceiver | PagerDutyReceiver | TeamsReceiver | EmailReceiver


class AlertingConfig(BaseModel):
    """A tenant's routing tree, receivers and inhibition rules (Alertmanager's shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: Route = Field(default_factory=Route)
    receivers: list[Receiver] = Field(default_factory=list)
    inhibit_rules: list[Inhibition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _receivers_exist(self) -> AlertingConfig:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError("receiver names must be unique")

        def used(r: Route) -> list[str]:
            return ([r.receiver] if r.receiver else []) + [n for c in r.routes for n in used(c)]

        missing = sorted(set(used(self.route)) - set(names))
        if missing:
            raise ValueError(f"routes name receivers that do not exist: {', '.join(missing)}")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)

    def inhibited(self, labels: dict[str, str], firing: list[dict[str, str]]) -> bool:
        for rule in self.inhibit_rules:
            if not matches(list(rule.target_matchers), labels):
                continue
            for src in firing:
                if src is labels or src == labels:
                    continue
                if matches(list(rule.source_matchers), src) and all(
                    src.get(k) == labels.get(k) for k in rule.equal
                ):
                    return True
        return False


Route.model_rebuild()
