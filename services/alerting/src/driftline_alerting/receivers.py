"""What each kind of integration gets, and one attempt to send it.

- webhook: the Alertmanager webhook payload (version 4), so existing Alertmanager consumers
  work unchanged, or Driftline's own (with the evidence); signed per Standard Webhooks when
  `driftline_signing_secrets` are set (`webhook-id` = the notification id,
  `webhook-timestamp`, `webhook-signature` with one `v1,` signature per secret, so a receiver
  rotating secrets accepts either), and/or authenticated by `http_config` (bearer, basic auth,
  client certificates);
- Slack incoming webhook; PagerDuty Events API v2 (`routing_key`: one trigger or resolve per
  alert, dedup key = the alert's fingerprint) or v1 (`service_key`); Microsoft Teams (an
  Adaptive Card); e-mail over SMTP (STARTTLS, authentication);
- `driftline_alertmanager_configs`: the alerts to an existing Alertmanager's
  POST /api/v2/alerts, firing ones with `endsAt` a few re-send intervals ahead (so that
  Alertmanager resolves them by itself if Driftline goes away), resolved ones with their end.

Every notification links to the alert and the model (`external_url`). Every HTTP request
carries `Idempotency-Key: <notification id>`. An attempt returns an `Outcome`; the delivery
loop decides about retries."""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from .dispatch import GroupAlert, Notification
from .routing import (
    AlertingConfig,
    AlertmanagerConfig,
    EmailConfig,
    HttpConfig,
    Integration,
    MsTeamsConfig,
    PagerDutyConfig,
    SlackConfig,
    TLSConfig,
    WebhookConfig,
)

__all__ = ["Clients", "Links", "Outcome", "alertmanager_payload", "post", "send", "sign_headers"]

PAGERDUTY_V2 = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_V1 = "https://events.pagerduty.com/generic/2010-04-15/create_event.json"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retriable: bool = True
    status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Links:
    """Where a notification's links point: `external_url` is the address users reach
    Driftline's API at (alerting's /v1/alerts, the registry's /v1/models)."""

    external_url: str = "http://localhost:8103"
    models_url: str | None = None  # default: external_url

    def base(self) -> str:
        return self.external_url.rstrip("/")

    def alert(self, a: GroupAlert) -> str:
        return f"{self.base()}/v1/alerts/{a.fingerprint}"

    def model(self, a: GroupAlert) -> str:
        base = (self.models_url or self.external_url).rstrip("/")
        return f"{base}/v1/models/{quote(a.labels.get('model', ''), safe='')}"

    def rule(self, a: GroupAlert) -> str:
        return f"{self.base()}/v1/alert-rules/{quote(a.rule_id, safe='')}"


def _iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(alerts: tuple[GroupAlert, ...], attr: str) -> dict[str, str]:
    if not alerts:
        return {}
    first: dict[str, str] = getattr(alerts[0], attr)
    return {k: v for k, v in first.items() if all(getattr(a, attr).get(k) == v for a in alerts[1:])}


def _annotations(a: GroupAlert, links: Links) -> dict[str, str]:
    return {
        **a.annotations,
        "driftline_alert_url": links.alert(a),
        "driftline_model_url": links.model(a),
    }


def alertmanager_payload(n: Notification, links: Links | None = None) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4."""
    links = links or Links()
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": _common(n.alerts, "labels"),
        "commonAnnotations": _common(n.alerts, "annotations"),
        "externalURL": links.base(),
        "alerts": [
            {
                "status": a.status,
                "labels": a.labels,
                "annotations": _annotations(a, links),
                "startsAt": _iso(a.starts_at),
                "endsAt": _iso(a.ends_at),
                "generatorURL": links.alert(a),
                "fingerprint": a.fingerprint,
            }
            for a in n.alerts
        ],
    }


def driftline_payload(n: Notification, links: Links | None = None) -> dict[str, Any]:
    links = links or Links()
    body = n.to_json()
    for a, d in zip(n.alerts, body["alerts"], strict=True):
        d["links"] = {"alert": links.alert(a), "model": links.model(a), "rule": links.rule(a)}
    return {"type": "driftline.notification.v1", **body}


def sign_headers(secrets: list[str], msg_id: str, body: str, now: float) -> dict[str, str]:
    ts = datetime.fromtimestamp(int(now), UTC)
    sigs = " ".join(Webhook(s).sign(msg_id, ts, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now)), "webhook-signature": sigs}


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def auth_headers(hc: HttpConfig | None) -> dict[str, str]:
    """`authorization` (Bearer or another type) or `basic_auth`, files read now (so a
    rotated token file is picked up)."""
    if hc is None:
        return {}
    if hc.authorization is not None:
        a = hc.authorization
        cred = a.credentials if a.credentials is not None else None
        if cred is None and a.credentials_file:
            cred = _read(a.credentials_file)
        return {"Authorization": f"{a.type} {cred}"} if cred else {}
    if hc.basic_auth is not None:
        b = hc.basic_auth
        user = _read(b.username_file) if b.username_file else b.username
        pw = _read(b.password_file) if b.password_file else (b.password or "")
        token = base64.b64encode(f"{user}:{pw}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_file, cadata=tls.ca)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.min_version:
        ctx.minimum_version = {
            "TLS10": ssl.TLSVersion.TLSv1,
            "TLS11": ssl.TLSVersion.TLSv1_1,
            "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3,
        }[tls.min_version]
    if tls.cert_file or tls.cert:
        if tls.cert:  # inline PEM: ssl needs files
            import tempfile

            with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=True) as f:
                f.write(tls.cert + "\n" + (tls.key or ""))
                f.flush()
                ctx.load_cert_chain(f.name)
        else:
            ctx.load_cert_chain(tls.cert_file or "", tls.key_file)
    return ctx


@dataclass
class Clients:
    """One httpx client per distinct transport setting (TLS, proxy, redirects); the default
    one for integrations without `http_config`."""

    default: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)
    _by_key: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def for_config(self, hc: HttpConfig | None) -> httpx.AsyncClient:
        if hc is None or (hc.tls_config is None and hc.proxy_url is None and hc.follow_redirects):
            return self.default
        key = hashlib.sha256(
            orjson.dumps(
                {
                    "tls": hc.tls_config.model_dump() if hc.tls_config else None,
                    "proxy": hc.proxy_url,
                    "redirects": hc.follow_redirects,
                }
            )
        ).hexdigest()
        c = self._by_key.get(key)
        if c is None:
            c = self._by_key[key] = httpx.AsyncClient(
                verify=_ssl_context(hc.tls_config) if hc.tls_config else True,
                proxy=hc.proxy_url,
                follow_redirects=hc.follow_redirects,
            )
        return c

    async def aclose(self) -> None:
        await self.default.aclose()
        for c in self._by_key.values():
            await c.aclose()


def _retry_after(resp: httpx.Response) -> float | None:
    v = resp.headers.get("retry-after")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _outcome(resp: httpx.Response) -> Outcome:
    if resp.is_success:
        return Outcome(True, status=resp.status_code)
    retriable = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
    return Outcome(
        False,
        retriable,
        resp.status_code,
        f"HTTP {resp.status_code}: {resp.text[:200]}",
        _retry_after(resp),
    )


def _summary(a: GroupAlert) -> str:
    return a.annotations.get("summary") or a.labels.get("alertname", "alert")


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
) -> Outcome:
    try:
        resp = await client.post(
            url,
            content=body,
            headers={"content-type": "application/json", **headers},
            timeout=timeout_s,
        )
    except httpx.TimeoutException as e:
        return Outcome(False, True, error=f"timeout: {e!r}")
    except httpx.HTTPError as e:
        return Outcome(False, True, error=f"{type(e).__name__}: {e}")
    except (OSError, ssl.SSLError) as e:
        return Outcome(False, True, error=f"{type(e).__name__}: {e}")
    return _outcome(resp)


def _shown(n: Notification, send_resolved: bool) -> Notification | None:
    """The notification as an integration that does (not) want resolved alerts sees it."""
    if send_resolved:
        return n
    firing = tuple(a for a in n.alerts if a.status == "firing")
    if not firing:
        return None
    return Notification(
        n.id, n.tenant, n.receiver, n.group_key, n.group_labels, "firing", firing, n.at
    )


async def send(
    integration: Integration,
    n: Notification,
    clients: Clients,
    now: float,
    *,
    config: AlertingConfig | None = None,
    links: Links | None = None,
) -> Outcome:
    cfg = config or AlertingConfig()
    links = links or Links()
    shown = _shown(n, integration.send_resolved)
    if shown is None:
        return Outcome(True, status=None, error=None)  # nothing for it: resolved only
    n = shown
    if isinstance(integration, EmailConfig):
        return await _mail(integration, cfg, n, links)
    hc = integration.http_config or cfg.global_.http_config
    client = clients.for_config(hc)
    headers = {"Idempotency-Key": n.id, **auth_headers(hc)}
    if isinstance(integration, WebhookConfig):
        payload = (
            alertmanager_payload(n, links)
            if integration.driftline_format == "alertmanager"
            else driftline_payload(n, links)
        )
        if integration.max_alerts and len(payload["alerts"]) > integration.max_alerts:
            payload["truncatedAlerts"] = len(payload["alerts"]) - integration.max_alerts
            payload["alerts"] = payload["alerts"][: integration.max_alerts]
        body = orjson.dumps(payload).decode()
        if integration.driftline_signing_secrets:
            headers.update(sign_headers(integration.driftline_signing_secrets, n.id, body, now))
        return await post(
            client, str(integration.url), body.encode(), headers, integration.timeout or 10
        )
    if isinstance(integration, AlertmanagerConfig):
        return await _handoff(integration, n, client, headers, now, links)
    if isinstance(integration, SlackConfig):
        url = integration.api_url or cfg.global_.slack_api_url
        if integration.api_url_file or (url is None and cfg.global_.slack_api_url_file):
            url = _read(integration.api_url_file or cfg.global_.slack_api_url_file or "")
        if not url:
            return Outcome(False, False, error="no Slack api_url (nor global.slack_api_url)")
        color = "#d93f0b" if n.status == "firing" else "#2eb67d"
        text = f"[{n.status.upper()}] " + ", ".join(f"{k}={v}" for k, v in n.group_labels.items())
        slack: dict[str, Any] = {
            "text": text,
            "attachments": [
                {
                    "color": color,
                    "title": _summary(a),
                    "title_link": links.alert(a),
                    "text": _details(a, links),
                }
                for a in n.alerts
            ],
        }
        for k in ("channel", "username", "icon_emoji", "icon_url"):
            if getattr(integration, k):
                slack[k] = getattr(integration, k)
        if integration.link_names:
            slack["link_names"] = True
        return await post(client, url, orjson.dumps(slack), headers, 10)
    if isinstance(integration, PagerDutyConfig):
        return await _pagerduty(integration, cfg, n, client, headers, links)
    assert isinstance(integration, MsTeamsConfig)
    url = integration.webhook_url or _read(integration.webhook_url_file or "")
    card = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "size": "Large",
                            "weight": "Bolder",
                            "text": f"[{n.status.upper()}] "
                            + ", ".join(f"{k}={v}" for k, v in n.group_labels.items()),
                        },
                        *(
                            {"type": "TextBlock", "wrap": True, "text": _details(a, links)}
                            for a in n.alerts
                        ),
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": "Alert", "url": links.alert(a)}
                        for a in n.alerts[:1]
                    ]
                    + [
                        {"type": "Action.OpenUrl", "title": "Model", "url": links.model(a)}
                        for a in n.alerts[:1]
                    ],
                },
            }
        ],
    }
    return await post(client, url, orjson.dumps(card), headers, 10)


async def _pagerduty(
    p: PagerDutyConfig,
    cfg: AlertingConfig,
    n: Notification,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    links: Links,
) -> Outcome:
    v1 = p.service_key is not None or p.service_key_file is not None
    url = p.url or cfg.global_.pagerduty_url or (PAGERDUTY_V1 if v1 else PAGERDUTY_V2)
    if v1 and url.rstrip("/").endswith("/v2/enqueue") and not p.url:
        url = PAGERDUTY_V1  # global.pagerduty_url names v2's host; v1 has its own path
    key = (
        (p.service_key or _read(p.service_key_file or ""))
        if v1
        else (p.routing_key or _read(p.routing_key_file or ""))
    )
    for a in n.alerts:
        event: dict[str, Any]
        if v1:
            event = {
                "service_key": key,
                "event_type": "trigger" if a.status == "firing" else "resolve",
                "incident_key": a.fingerprint,
                "description": _summary(a),
                "client": p.client or "Driftline",
                "client_url": p.client_url or links.alert(a),
                "details": {"labels": a.labels, "annotations": _annotations(a, links)},
            }
        else:
            event = {
                "routing_key": key,
                "event_action": "trigger" if a.status == "firing" else "resolve",
                "dedup_key": a.fingerprint,
                "client": p.client or "Driftline",
                "client_url": p.client_url or links.alert(a),
                "links": [
                    {"href": links.alert(a), "text": "Alert"},
                    {"href": links.model(a), "text": "Model"},
                ],
                "payload": {
                    "summary": _summary(a),
                    "source": f"driftline/{a.labels.get('tenant')}/{a.labels.get('model')}",
                    "severity": a.labels.get("severity", "warning"),
                    "custom_details": {"labels": a.labels, "annotations": a.annotations},
                },
            }
        out = await post(client, url, orjson.dumps(event), headers, 10)
        if not out.ok:
            return out
    return Outcome(True, status=202)


def handoff_alerts(
    am: AlertmanagerConfig, n: Notification, now: float, links: Links
) -> list[dict[str, Any]]:
    """Prometheus' way: a firing alert's endsAt is a few re-send intervals ahead, so the
    receiving Alertmanager resolves it by itself when Driftline stops re-sending."""
    out = []
    for a in n.alerts:
        ends = a.ends_at if a.status == "resolved" else now + 4 * am.resend_interval
        out.append(
            {
                "labels": a.labels,
                "annotations": _annotations(a, links),
                "startsAt": _iso(a.starts_at),
                "endsAt": _iso(ends),
                "generatorURL": links.alert(a),
            }
        )
    return out


async def _handoff(
    am: AlertmanagerConfig,
    n: Notification,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    now: float,
    links: Links,
) -> Outcome:
    url = str(am.url).rstrip("/") + "/api/v2/alerts"
    body = orjson.dumps(handoff_alerts(am, n, now, links))
    return await post(client, url, body, headers, am.timeout or 10)


def _details(a: GroupAlert, links: Links | None = None) -> str:
    lines = [f"*{_summary(a)}* ({a.status})"]
    lines += [f"{k}: {v}" for k, v in sorted(a.labels.items())]
    for k in ("runbook_url", "dashboard_url", "description"):
        if k in a.annotations:
            lines.append(f"{k}: {a.annotations[k]}")
    if links is not None:
        lines.append(f"alert: {links.alert(a)}")
        lines.append(f"model: {links.model(a)}")
    return "\n".join(lines)


async def _mail(e: EmailConfig, cfg: AlertingConfig, n: Notification, links: Links) -> Outcome:
    g = cfg.global_
    smarthost = e.smarthost or g.smtp_smarthost
    sender = e.from_ or g.smtp_from
    if not smarthost or not sender:
        return Outcome(False, False, error="no smarthost or from (nor global.smtp_*)")
    host, _, port = smarthost.rpartition(":")
    user = e.auth_username or g.smtp_auth_username
    password = e.auth_password or g.smtp_auth_password
    pw_file = e.auth_password_file or g.smtp_auth_password_file
    if password is None and pw_file:
        password = _read(pw_file)
    require_tls = e.require_tls if e.require_tls is not None else g.smtp_require_tls
    msg = EmailMessage()
    msg["From"] = e.headers.get("From", sender)
    msg["To"] = e.headers.get("To", e.to)
    msg["Subject"] = e.headers.get("Subject") or f"[{n.status.upper()}:{len(n.alerts)}] " + (
        " ".join(f"{k}={v}" for k, v in n.group_labels.items())
    )
    for k, v in e.headers.items():
        if k.lower() not in ("from", "to", "subject"):
            msg[k] = v
    msg["Message-ID"] = f"<{n.id}@driftline>"
    msg["X-Driftline-Notification"] = n.id
    msg.set_content("\n\n".join(_details(a, links) for a in n.alerts))
    tls = e.tls_config
    ctx = None
    if tls is not None and (tls.ca or tls.ca_file or tls.insecure_skip_verify):
        ctx = ssl.create_default_context(cafile=tls.ca_file, cadata=tls.ca)
        if tls.insecure_skip_verify:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        await aiosmtplib.send(
            msg,
            hostname=host,
            port=int(port or 25),
            start_tls=require_tls if int(port or 25) != 465 else False,
            use_tls=int(port or 25) == 465,
            username=user,
            password=password,
            tls_context=ctx,
            local_hostname=e.hello or g.smtp_hello,
            timeout=15,
        )
    except aiosmtplib.SMTPResponseException as ex:
        return Outcome(False, 400 <= ex.code < 500, ex.code, f"SMTP {ex.code}: {ex.message}")
    except (aiosmtplib.SMTPException, OSError) as ex:
        return Outcome(False, True, error=f"{type(ex).__name__}: {ex}")
    return Outcome(True, status=250)
