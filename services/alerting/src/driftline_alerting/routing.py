"""Alertmanager's routing model, per tenant, in Alertmanager's own configuration syntax:
matchers, the routing tree, silences, inhibition rules, time intervals, and the receivers
with their integrations (`webhook_configs`, `slack_configs`, `pagerduty_configs`,
`email_configs`, `msteams_configs`, and Driftline's `driftline_alertmanager_configs`).

A configuration is a real `alertmanager.yml`: durations like `30s`, `matchers` as a list or
in the `{a="b"}` form, the legacy `match`/`match_re`/`source_match`..., `http_config` (bearer,
basic auth, TLS). Driftline's extensions sit in fields named `driftline_*` (signing secrets,
the payload format, the hand-off to an existing Alertmanager). Anything else Alertmanager
knows but Driftline does not do is refused with its place named (`receivers.2.
opsgenie_configs: not supported by Driftline`). Driftline's earlier form (`type: webhook`,
`group_wait_s`) is still read, and converted.

Semantics follow Alertmanager: a route matches when all its matchers match; children are
tried in order and the first match wins unless it has `continue`; a route with no matching
child takes the alert itself. Unset timing, grouping and time intervals are inherited from
the parent. A silence mutes an alert when all its matchers match, between its start and end.
An inhibition rule mutes a target alert while a firing source alert exists whose `equal`
labels have the same values. A route's `mute_time_intervals` mute it while one of them is
on; its `active_time_intervals` mute it while none of them is."""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

__all__ = [
    "SECRET",
    "AlertingConfig",
    "AlertmanagerConfig",
    "EmailConfig",
    "HttpConfig",
    "Inhibition",
    "Integration",
    "Matcher",
    "MsTeamsConfig",
    "PagerDutyConfig",
    "Receiver",
    "ResolvedRoute",
    "Route",
    "Silence",
    "SlackConfig",
    "TimeInterval",
    "WebhookConfig",
    "format_duration",
    "matches",
    "parse_duration",
    "parse_matchers",
    "render",
    "route",
]

SECRET = "<secret>"  # how Alertmanager shows a secret, and reads one back

# --- durations ------------------------------------------------------------------------------

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)


def parse_duration(v: object) -> object:
    """Prometheus durations (`30s`, `1h30m`, `5d`, `250ms`); numbers are seconds."""
    if isinstance(v, str):
        m = _DURATION.match(v.strip())
        if not m or not v.strip() or v.strip() == "":
            raise ValueError(f"not a duration: {v!r} (e.g. 30s, 5m, 4h, 1d)")
        return float(sum(int(x) * f for x, f in zip(m.groups(), _UNITS.values(), strict=True) if x))
    return v


def format_duration(seconds: float) -> str:
    """As Prometheus prints a duration (`1h30m`, `0s`)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("y", 365 * 86400000), ("w", 7 * 86400000), ("d", 86400000),
                       ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):  # fmt: skip
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# --- matchers -------------------------------------------------------------------------------

_NAME = re.compile(r"\s*([^\s{}!=~,\"'`]+)\s*(=~|!~|!=|=)\s*")


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: str
    op: Literal["=", "!=", "=~", "!~"] = "="

    @field_validator("name", "value")
    @classmethod
    def _bounded(cls, v: str, info: ValidationInfo) -> str:
        # a label value is at most 1,024 characters (rules.py), a regex may be longer; what
        # the store gives back is not bounded again (rules.STORED)
        limit = 128 if info.field_name == "name" else 4096
        if len(v) > limit and not (info.context and info.context.get("stored")):
            raise ValueError(f"at most {limit} characters, got {len(v)}")
        return v

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`severity="critical"`, `model=~"credit-.*"` (Alertmanager's syntax)."""
        got = parse_matchers(text)
        if len(got) != 1:
            raise ValueError(f"not one matcher: {text!r}")
        return got[0]

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

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{quoted}"'

    @property
    def is_regex(self) -> bool:
        return self.op in ("=~", "!~")

    @property
    def is_equal(self) -> bool:
        return self.op in ("=", "=~")


def _unquote(text: str, i: int) -> tuple[str, int]:
    """A double-quoted value starting at text[i] == '"': (value, index after it)."""
    out, i = [], i + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ValueError(f"unterminated quoted value in {text!r}")


def parse_matchers(text: str) -> list[Matcher]:
    """One matcher (`a="b"`) or several in braces (`{a="b", c=~"d.*"}`), values quoted or
    not, as Alertmanager's matcher parser reads them."""
    s = text.strip()
    if s.startswith("{"):
        if not s.endswith("}"):
            raise ValueError(f"missing closing brace in {text!r}")
        s = s[1:-1]
    out: list[Matcher] = []
    i = 0
    while i < len(s):
        while i < len(s) and s[i] in " \t,":
            i += 1
        if i >= len(s):
            break
        m = _NAME.match(s, i)
        if not m:
            raise ValueError(f'not a matcher: {text!r} (e.g. severity="critical")')
        name, op, i = m[1], m[2], m.end()
        if i < len(s) and s[i] == '"':
            value, i = _unquote(s, i)
        else:
            j = i
            while j < len(s) and s[j] != ",":
                j += 1
            value, i = s[i:j].strip(), j
        out.append(Matcher(name=name.strip("\"'"), op=op, value=value))
        while i < len(s) and s[i] in " \t":
            i += 1
        if i < len(s) and s[i] != ",":
            raise ValueError(f"expected a comma after {name}{op}{value!r} in {text!r}")
    if not out:
        raise ValueError(f'not a matcher: {text!r} (e.g. severity="critical")')
    return out


def matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m(labels) for m in matchers)


def _matchers(v: object) -> object:
    if isinstance(v, str):
        v = [v]
    if isinstance(v, list):
        out: list[object] = []
        for x in v:
            out += parse_matchers(x) if isinstance(x, str) else [x]
        return out
    return v


def _legacy_matchers(eq: object, regex: object) -> list[Matcher]:
    """`match: {a: b}` and `match_re: {a: b.*}` as matchers."""
    out = []
    for source, op in ((eq, "="), (regex, "=~")):
        if source is None:
            continue
        if not isinstance(source, dict):
            raise ValueError("match / match_re must map label names to values")
        for k, v in source.items():
            out.append(Matcher(name=str(k), value=str(v), op=op))
    return out


Matchers = Annotated[list[Matcher], BeforeValidator(_matchers)]


def _matcher_strings(ms: list[Matcher]) -> list[str]:
    return [str(m) for m in ms]


# --- HTTP client settings -----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Authorization(_Strict):
    type: str = "Bearer"
    credentials: str | None = None
    credentials_file: str | None = None


class BasicAuth(_Strict):
    username: str = ""
    username_file: str | None = None
    password: str | None = None
    password_file: str | None = None


class TLSConfig(_Strict):
    ca: str | None = None  # PEM, inline
    ca_file: str | None = None
    cert: str | None = None
    cert_file: str | None = None
    key: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None


class HttpConfig(_Strict):
    """prometheus/common's HTTP client configuration (the parts Driftline does)."""

    authorization: Authorization | None = None
    basic_auth: BasicAuth | None = None
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None
    follow_redirects: bool = True
    enable_http2: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bearer(cls, data: object) -> object:
        """The older `bearer_token` / `bearer_token_file` are `authorization` now."""
        if isinstance(data, dict) and ("bearer_token" in data or "bearer_token_file" in data):
            data = dict(data)
            token, file = data.pop("bearer_token", None), data.pop("bearer_token_file", None)
            if "authorization" in data:
                raise ValueError("set either bearer_token or authorization, not both")
            data["authorization"] = {"type": "Bearer", "credentials": token}
            if file:
                data["authorization"] = {"type": "Bearer", "credentials_file": file}
        return data

    @model_validator(mode="after")
    def _one_auth(self) -> HttpConfig:
        if self.authorization is not None and self.basic_auth is not None:
            raise ValueError("at most one of basic_auth and authorization")
        return self


# --- integrations -----------------------------------------------------------------------------


class _Integration(_Strict):
    send_resolved: bool = True
    http_config: HttpConfig | None = None


class WebhookConfig(_Integration):
    """Alertmanager's webhook; signed per Standard Webhooks when `driftline_signing_secrets`
    are set (two during a rotation: both sign), with or besides `http_config` auth."""

    url: HttpUrl
    max_alerts: int = Field(default=0, ge=0)
    timeout: Duration | None = None  # Alertmanager 0.28's field; Driftline's default: 10 s
    driftline_signing_secrets: list[str] = Field(default_factory=list, max_length=2)
    driftline_format: Literal["alertmanager", "driftline"] = "alertmanager"


class SlackConfig(_Integration):
    send_resolved: bool = False
    api_url: str | None = None  # else global.slack_api_url
    api_url_file: str | None = None
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    link_names: bool = False


class PagerDutyConfig(_Integration):
    """Events API v2 with `routing_key`, v1 with `service_key`."""

    routing_key: str | None = None
    routing_key_file: str | None = None
    service_key: str | None = None
    service_key_file: str | None = None
    url: str | None = None  # else global.pagerduty_url, else PagerDuty's
    client: str | None = None
    client_url: str | None = None

    @model_validator(mode="after")
    def _key(self) -> PagerDutyConfig:
        keys = [self.routing_key, self.routing_key_file, self.service_key, self.service_key_file]
        if sum(k is not None for k in keys) != 1:
            raise ValueError("set exactly one of routing_key(_file) and service_key(_file)")
        return self


class EmailTLS(_Strict):
    ca: str | None = None
    ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None


class EmailConfig(_Strict):
    """SMTP; unset fields come from `global.smtp_*`."""

    send_resolved: bool = False
    to: str = Field(min_length=1)  # comma-separated, as Alertmanager's
    from_: str | None = Field(default=None, alias="from")
    smarthost: str | None = None  # host:port
    hello: str | None = None
    auth_username: str | None = None
    auth_password: str | None = None
    auth_password_file: str | None = None
    auth_identity: str | None = None
    auth_secret: str | None = None
    require_tls: bool | None = None
    tls_config: EmailTLS | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if k.lower() in ("from", "to", "subject", "message-id"):
                continue
            if "{{" in v[k]:
                raise ValueError(f"headers.{k}: templates are not supported by Driftline")
        return v


class MsTeamsConfig(_Integration):
    webhook_url: str | None = None
    webhook_url_file: str | None = None

    @model_validator(mode="after")
    def _url(self) -> MsTeamsConfig:
        if (self.webhook_url is None) == (self.webhook_url_file is None):
            raise ValueError("set one of webhook_url and webhook_url_file")
        return self


class AlertmanagerConfig(_Integration):
    """Driftline's hand-off: the alerts go to an existing Alertmanager's POST /api/v2/alerts,
    again every `resend_interval` while they fire (as Prometheus does), with `endsAt` when
    they resolve; that Alertmanager then routes, groups and silences them."""

    url: HttpUrl  # the Alertmanager's base URL, e.g. http://alertmanager:9093
    resend_interval: Duration = 60
    timeout: Duration | None = None  # default: 10 s


Integration = (
    WebhookConfig | SlackConfig | PagerDutyConfig | EmailConfig | MsTeamsConfig | AlertmanagerConfig
)

INTEGRATION_FIELDS: dict[str, type[BaseModel]] = {
    "webhook_configs": WebhookConfig,
    "slack_configs": SlackConfig,
    "pagerduty_configs": PagerDutyConfig,
    "email_configs": EmailConfig,
    "msteams_configs": MsTeamsConfig,
    "driftline_alertmanager_configs": AlertmanagerConfig,
}
UNSUPPORTED_INTEGRATIONS = (
    "discord_configs",
    "jira_configs",
    "msteamsv2_configs",
    "opsgenie_configs",
    "pushover_configs",
    "rocketchat_configs",
    "sns_configs",
    "telegram_configs",
    "victorops_configs",
    "webex_configs",
    "wechat_configs",
    "incidentio_configs",
)


def _legacy_receiver(d: dict[str, Any]) -> dict[str, Any]:
    """Driftline's first receiver form (`type: webhook`, flat fields) in Alertmanager's."""
    d = dict(d)
    kind, name = d.pop("type"), d.pop("name", None)
    resolved = d.pop("send_resolved", True)
    if kind == "webhook":
        cfg: dict[str, Any] = {
            "url": d.pop("url"),
            "driftline_signing_secrets": d.pop("secrets", []),
            "driftline_format": d.pop("format", "alertmanager"),
        }
        if "timeout_s" in d:
            cfg["timeout"] = d.pop("timeout_s")
        field = "webhook_configs"
    elif kind == "slack":
        cfg, field = (
            {"api_url": str(d.pop("url")), "channel": d.pop("channel", None)},
            "slack_configs",
        )
    elif kind == "pagerduty":
        cfg = {"routing_key": d.pop("routing_key")}
        if "url" in d:
            cfg["url"] = str(d.pop("url"))
        field = "pagerduty_configs"
    elif kind == "teams":
        cfg, field = {"webhook_url": str(d.pop("url"))}, "msteams_configs"
    elif kind == "email":
        to = d.pop("to")
        cfg = {
            "to": ", ".join(to) if isinstance(to, list) else to,
            "from": d.pop("sender"),
            "smarthost": f"{d.pop('host')}:{d.pop('port', 587)}",
            "require_tls": d.pop("starttls", True),
            "auth_username": d.pop("username", None),
            "auth_password": d.pop("password", None),
        }
        if d.get("ca_file"):
            cfg["tls_config"] = {"ca_file": d.pop("ca_file")}
        d.pop("ca_file", None)
        field = "email_configs"
    elif kind == "alertmanager":
        cfg = {"url": d.pop("url")}
        for k in ("resend_interval", "http_config", "timeout"):
            if k in d:
                cfg[k] = d.pop(k)
        field = "driftline_alertmanager_configs"
    else:
        raise ValueError(f"unknown receiver type {kind!r}")
    if "http_config" in d:
        cfg["http_config"] = d.pop("http_config")
    if d:
        raise ValueError(f"unknown field(s) for a {kind} receiver: {', '.join(sorted(d))}")
    cfg = {k: v for k, v in cfg.items() if v is not None}
    return {"name": name, field: [{**cfg, "send_resolved": resolved}]}


class Receiver(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@+ -]{1,128}$")
    webhook_configs: list[WebhookConfig] = Field(default_factory=list)
    slack_configs: list[SlackConfig] = Field(default_factory=list)
    pagerduty_configs: list[PagerDutyConfig] = Field(default_factory=list)
    email_configs: list[EmailConfig] = Field(default_factory=list)
    msteams_configs: list[MsTeamsConfig] = Field(default_factory=list)
    driftline_alertmanager_configs: list[AlertmanagerConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        if "type" in data:
            return _legacy_receiver(data)
        for k in UNSUPPORTED_INTEGRATIONS:
            if data.get(k):
                raise ValueError(
                    f"{k}: not supported by Driftline (it sends "
                    + ", ".join(INTEGRATION_FIELDS)
                    + ")"
                )
        return {k: v for k, v in data.items() if not (k in UNSUPPORTED_INTEGRATIONS and not v)}

    @property
    def integrations(self) -> list[Integration]:
        return [
            *self.webhook_configs,
            *self.slack_configs,
            *self.pagerduty_configs,
            *self.email_configs,
            *self.msteams_configs,
            *self.driftline_alertmanager_configs,
        ]

    def integration_refs(self) -> list[str]:
        """Each integration's list and place in it, in the order of `integrations`."""
        return [f"{k}/{i}" for k in INTEGRATION_FIELDS for i in range(len(getattr(self, k)))]

    @property
    def send_resolved(self) -> bool:
        return any(i.send_resolved for i in self.integrations)

    @property
    def resend_s(self) -> float | None:
        """The shortest re-send interval of its Alertmanager hand-offs, if any."""
        xs = [i.resend_interval for i in self.driftline_alertmanager_configs]
        return min(xs) if xs else None


# --- global ---------------------------------------------------------------------------------


class Global(_Strict):
    resolve_timeout: Duration = 300
    http_config: HttpConfig | None = None
    smtp_from: str | None = None
    smtp_hello: str = "localhost"
    smtp_smarthost: str | None = None
    smtp_auth_username: str | None = None
    smtp_auth_password: str | None = None
    smtp_auth_password_file: str | None = None
    smtp_auth_identity: str | None = None
    smtp_auth_secret: str | None = None
    smtp_require_tls: bool = True
    slack_api_url: str | None = None
    slack_api_url_file: str | None = None
    pagerduty_url: str | None = None
    # endpoints of integrations Driftline does not send to: accepted so that a configuration
    # copied from an Alertmanager's status page reads back (refused where they would be used)
    opsgenie_api_url: str | None = None
    opsgenie_api_key: str | None = None
    wechat_api_url: str | None = None
    wechat_api_secret: str | None = None
    wechat_api_corp_id: str | None = None
    victorops_api_url: str | None = None
    victorops_api_key: str | None = None
    telegram_api_url: str | None = None
    webex_api_url: str | None = None
    jira_api_url: str | None = None
    rocketchat_api_url: str | None = None


# --- time intervals ---------------------------------------------------------------------------

_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}  # monday = 0
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}


def _ranges(
    items: list[str], names: dict[str, int] | None, lo: int, hi: int, *, negative: bool = False
) -> list[tuple[int, int]]:
    out = []
    for item in items:
        parts = item.split(":")
        if len(parts) > 2:
            raise ValueError(f"not a range: {item!r}")

        def one(p: str, item: str = item) -> int:
            p = p.strip().lower()
            if names is not None and p in names:
                return names[p]
            try:
                n = int(p)
            except ValueError:
                raise ValueError(f"not a valid value: {p!r}") from None
            if not (lo <= n <= hi or (negative and -hi <= n <= -1)):
                raise ValueError(f"{n} is out of range in {item!r}")
            return n

        a = one(parts[0])
        b = one(parts[-1])
        out.append((a, b))
    return out


class TimeRange(_Strict):
    start_time: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    end_time: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")

    def minutes(self) -> tuple[int, int]:
        def m(t: str) -> int:
            h, mm = t.split(":")
            return int(h) * 60 + int(mm)

        return m(self.start_time), m(self.end_time)


class TimePeriod(_Strict):
    times: list[TimeRange] = Field(default_factory=list)
    weekdays: list[str] = Field(default_factory=list)
    days_of_month: list[str] = Field(default_factory=list)
    months: list[str] = Field(default_factory=list)
    years: list[str] = Field(default_factory=list)
    location: str | None = None

    @model_validator(mode="after")
    def _check(self) -> TimePeriod:
        _ranges(self.weekdays, _WEEKDAYS, 0, 6)
        _ranges(self.days_of_month, None, 1, 31, negative=True)
        _ranges([m for m in self.months], _MONTHS, 1, 12)
        _ranges(self.years, None, 1, 9999)
        if self.location:
            try:
                ZoneInfo(self.location)
            except (ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(f"unknown location {self.location!r}") from e
        return self

    def contains(self, when: datetime) -> bool:
        t = when.astimezone(ZoneInfo(self.location)) if self.location else when
        if self.times:
            minute = t.hour * 60 + t.minute
            if not any(a <= minute < b for a, b in (r.minutes() for r in self.times)):
                return False
        if self.weekdays and not any(
            a <= t.weekday() <= b for a, b in _ranges(self.weekdays, _WEEKDAYS, 0, 6)
        ):
            return False
        if self.days_of_month:
            last = calendar.monthrange(t.year, t.month)[1]

            def day(n: int) -> int:
                return n if n > 0 else last + 1 + n

            if not any(
                day(a) <= t.day <= day(b)
                for a, b in _ranges(self.days_of_month, None, 1, 31, negative=True)
            ):
                return False
        if self.months and not any(
            a <= t.month <= b for a, b in _ranges(self.months, _MONTHS, 1, 12)
        ):
            return False
        return not self.years or any(
            a <= t.year <= b for a, b in _ranges(self.years, None, 1, 9999)
        )


class TimeInterval(_Strict):
    name: str = Field(min_length=1)
    time_intervals: list[TimePeriod] = Field(default_factory=list)

    def active(self, when: datetime) -> bool:
        return any(p.contains(when) for p in self.time_intervals)


# --- the routing tree ---------------------------------------------------------------------

_LEGACY_ROUTE = {"group_wait_s": "group_wait", "group_interval_s": "group_interval",
                 "repeat_interval_s": "repeat_interval"}  # fmt: skip


class Route(_Strict):
    receiver: str | None = None
    group_by: list[str] | None = None  # ["..."] groups by every label
    matchers: Matchers = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[Route] = Field(default_factory=list)
    group_wait: Duration | None = None
    group_interval: Duration | None = Field(default=None, gt=0)
    repeat_interval: Duration | None = Field(default=None, gt=0)
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in _LEGACY_ROUTE.items():
            if old in data:
                if new in data:
                    raise ValueError(f"set {new} or {old}, not both")
                data[new] = data.pop(old)
        if "match" in data or "match_re" in data:
            legacy = _legacy_matchers(data.pop("match", None), data.pop("match_re", None))
            data["matchers"] = [*legacy, *(_matchers(data.get("matchers", [])) or [])]  # type: ignore[misc]
        return data

    @field_serializer("matchers", when_used="json")
    def _m(self, ms: list[Matcher]) -> list[str]:
        return _matcher_strings(ms)

    # the seconds, by the names the dispatcher has always used
    @property
    def group_wait_s(self) -> float | None:
        return self.group_wait

    @property
    def group_interval_s(self) -> float | None:
        return self.group_interval

    @property
    def repeat_interval_s(self) -> float | None:
        return self.repeat_interval


class ResolvedRoute(BaseModel):
    """A route with everything inherited filled in; `path` names it in group keys."""

    model_config = ConfigDict(frozen=True)

    path: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()

    def group_key(self, labels: dict[str, str]) -> str:
        keys = sorted(labels) if self.group_by == ("...",) else list(self.group_by)
        return self.path + "{" + ",".join(f"{k}={labels.get(k, '')}" for k in keys) + "}"


def route(root: Route, labels: dict[str, str]) -> list[ResolvedRoute]:
    """The routes an alert goes to (Alertmanager's matching, with inheritance)."""
    base = ResolvedRoute(
        path="/",
        receiver=root.receiver or "default",
        group_by=tuple(root.group_by or ("alertname", "tenant", "model")),
        group_wait_s=root.group_wait if root.group_wait is not None else 30,
        group_interval_s=root.group_interval or 300,
        repeat_interval_s=root.repeat_interval or 4 * 3600,
        mute_time_intervals=tuple(root.mute_time_intervals),
        active_time_intervals=tuple(root.active_time_intervals),
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
                    child.group_wait if child.group_wait is not None else parent.group_wait_s
                ),
                group_interval_s=child.group_interval or parent.group_interval_s,
                repeat_interval_s=child.repeat_interval or parent.repeat_interval_s,
                # Alertmanager: a child without its own time intervals inherits its parent's
                mute_time_intervals=tuple(child.mute_time_intervals) or parent.mute_time_intervals,
                active_time_intervals=tuple(child.active_time_intervals)
                or parent.active_time_intervals,
            )
            out += walk(child, mine) or [mine]
            if not child.continue_:
                break
        return out

    return walk(root, base) or [base]


class Inhibition(_Strict):
    source_matchers: Matchers = Field(default_factory=list)
    target_matchers: Matchers = Field(default_factory=list)
    equal: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for side in ("source", "target"):
            eq, rx = data.pop(f"{side}_match", None), data.pop(f"{side}_match_re", None)
            if eq is not None or rx is not None:
                data[f"{side}_matchers"] = [
                    *_legacy_matchers(eq, rx),
                    *(_matchers(data.get(f"{side}_matchers", [])) or []),  # type: ignore[misc]
                ]
        return data

    @field_serializer("source_matchers", "target_matchers", when_used="json")
    def _m(self, ms: list[Matcher]) -> list[str]:
        return _matcher_strings(ms)


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str = Field(min_length=1, max_length=1000)
    updated_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _order(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: datetime) -> bool:
        return self.active(now) and matches(list(self.matchers), labels)


# fields whose values are secrets: shown as <secret>, as Alertmanager shows them
SECRET_FIELDS = frozenset(
    {
        "credentials",
        "password",
        "auth_password",
        "auth_secret",
        "routing_key",
        "service_key",
        "api_url",
        "webhook_url",
        "driftline_signing_secrets",
        "key",
        "smtp_auth_password",
        "smtp_auth_secret",
        "slack_api_url",
        "opsgenie_api_key",
        "victorops_api_key",
        "wechat_api_secret",
    }
)
KEPT_NOT_USED = ("templates", "tracing")


class AlertingConfig(_Strict):
    """A tenant's Alertmanager configuration: global, route, receivers, inhibit_rules,
    time_intervals (and the older mute_time_intervals). `templates` and `tracing` are kept
    and shown but not used (Driftline writes its own messages; tracing is the operator's)."""

    global_: Global = Field(default_factory=Global, alias="global")
    route: Route = Field(default_factory=Route)
    receivers: list[Receiver] = Field(default_factory=list)
    inhibit_rules: list[Inhibition] = Field(default_factory=list)
    time_intervals: list[TimeInterval] = Field(default_factory=list)
    mute_time_intervals: list[TimeInterval] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    tracing: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _references(self) -> AlertingConfig:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise ValueError("receiver names must be unique")
        intervals = [t.name for t in [*self.time_intervals, *self.mute_time_intervals]]
        if len(set(intervals)) != len(intervals):
            raise ValueError("time interval names must be unique")

        def walk(r: Route) -> list[Route]:
            return [r, *(x for c in r.routes for x in walk(c))]

        routes = walk(self.route)
        missing = sorted({r.receiver for r in routes if r.receiver} - set(names))
        if missing:
            raise ValueError(f"routes name receivers that do not exist: {', '.join(missing)}")
        used = {n for r in routes for n in (*r.mute_time_intervals, *r.active_time_intervals)}
        unknown = sorted(used - set(intervals))
        if unknown:
            raise ValueError(f"routes name time intervals that do not exist: {', '.join(unknown)}")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)

    def interval(self, name: str) -> TimeInterval | None:
        return next(
            (t for t in [*self.time_intervals, *self.mute_time_intervals] if t.name == name), None
        )

    def muted_by(self, r: ResolvedRoute, when: datetime) -> list[str]:
        """The time intervals that mute the route now: its mute intervals that are on, or
        its active intervals when none of them is on."""
        out = [
            n
            for n in r.mute_time_intervals
            if (t := self.interval(n)) is not None and t.active(when)
        ]
        if r.active_time_intervals and not any(
            (t := self.interval(n)) is not None and t.active(when) for n in r.active_time_intervals
        ):
            out += list(r.active_time_intervals)
        return out

    def inhibitors(
        self, labels: dict[str, str], firing: list[tuple[str, dict[str, str]]]
    ) -> list[str]:
        """Fingerprints of the firing alerts that inhibit one with these labels."""
        out = []
        for rule in self.inhibit_rules:
            if not matches(list(rule.target_matchers), labels):
                continue
            for fp, src in firing:
                if src is labels or src == labels:
                    continue
                if matches(list(rule.source_matchers), src) and all(
                    src.get(k) == labels.get(k) for k in rule.equal
                ):
                    out.append(fp)
        return out

    def inhibited(self, labels: dict[str, str], firing: list[dict[str, str]]) -> bool:
        return bool(self.inhibitors(labels, [("", f) for f in firing]))

    def warnings(self) -> list[str]:
        return [f"{k}: kept, but not used by Driftline" for k in KEPT_NOT_USED if getattr(self, k)]


def _clean(v: Any, *, redact: bool, extensions: bool) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not extensions and k.startswith("driftline_"):
                continue
            if x is None or x == [] or x == {}:
                continue
            if redact and k in SECRET_FIELDS:
                out[k] = [SECRET] * len(x) if isinstance(x, list) else SECRET
                continue
            out[k] = _clean(x, redact=redact, extensions=extensions)
        return out
    if isinstance(v, list):
        return [_clean(x, redact=redact, extensions=extensions) for x in v]
    return v


def render(cfg: AlertingConfig, *, redact: bool = True, extensions: bool = True) -> dict[str, Any]:
    """The configuration in Alertmanager's syntax (durations as `30s`, matchers as strings),
    secrets shown as `<secret>` unless `redact` is off; without `extensions`, the
    `driftline_*` fields are left out (what an Alertmanager or amtool would read)."""
    d = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    if not extensions:  # kept for the tenant, but no Alertmanager tool should act on them
        for k in KEPT_NOT_USED:
            d.pop(k, None)
    out = dict(_clean(d, redact=redact, extensions=extensions))
    out.setdefault("route", {})
    out.setdefault("receivers", [])
    return out


Route.model_rebuild()
