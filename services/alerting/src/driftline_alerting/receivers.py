"""What each kind of receiver gets, and one attempt to send it.

- webhook: the Alertmanager webhook payload (version 4), so existing Alertmanager consumers
  work unchanged, or Driftline's own (with the evidence); signed per Standard Webhooks
  (`webhook-id` = the notification id, `webhook-timestamp`, `webhook-signature` with one
  `v1,` signature per secret, so a receiver rotating secrets accepts either);
- Slack incoming webhook; PagerDuty Events API v2 (one trigger or resolve per alert, dedup key
  = the alert's fingerprint); Microsoft Teams (an Adaptive Card); e-mail over SMTP (STARTTLS,
  authentication).

Every HTTP request carries `Idempotency-Key: <notification id>`. An attempt returns an
`Outcome`; the delivery loop decides about retries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from .dispatch import GroupAlert, Notification
from .routing import (
    EmailReceiver,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    TeamsReceiver,
    WebhookReceiver,
)

__all__ = ["Outcome", "alertmanager_payload", "post", "send", "sign_headers"]

EXTERNAL_URL = "http://driftline-alerting"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retriable: bool = True
    status: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def _iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(alerts: tuple[GroupAlert, ...], attr: str) -> dict[str, str]:
    if not alerts:
        return {}
    first: dict[str, str] = getattr(alerts[0], attr)
    return {k: v for k, v in first.items() if all(getattr(a, attr).get(k) == v for a in alerts[1:])}


def alertmanager_payload(n: Notification) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4."""
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": _common(n.alerts, "labels"),
        "commonAnnotations": _common(n.alerts, "annotations"),
        "externalURL": EXTERNAL_URL,
        "alerts": [
            {
                "status": a.status,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": _iso(a.starts_at),
                "endsAt": _iso(a.ends_at),
                "generatorURL": f"{EXTERNAL_URL}/v1/alert-rules/{a.rule_id}",
                "fingerprint": a.fingerprint,
            }
            for a in n.alerts
        ],
    }


def driftline_payload(n: Notification) -> dict[str, Any]:
    return {"type": "driftline.notification.v1", **n.to_json()}


def sign_headers(secrets: list[str], msg_id: str, body: str, now: float) -> dict[str, str]:
    ts = datetime.fromtimestamp(int(now), UTC)
    sigs = " ".join(Webhook(s).sign(msg_id, ts, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now)), "webhook-signature": sigs}


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
    return _outcome(resp)


async def send(
    receiver: Receiver, n: Notification, client: httpx.AsyncClient, now: float
) -> Outcome:
    idem = {"Idempotency-Key": n.id}
    if isinstance(receiver, WebhookReceiver):
        payload = (
            alertmanager_payload(n) if receiver.format == "alertmanager" else driftline_payload(n)
        )
        body = orjson.dumps(payload).decode()
        headers = {**idem, **sign_headers(receiver.secrets, n.id, body, now)}
        return await post(client, str(receiver.url), body.encode(), headers, receiver.timeout_s)
    if isinstance(receiver, SlackReceiver):
        color = "#d93f0b" if n.status == "firing" else "#2eb67d"
        text = f"[{n.status.upper()}] " + ", ".join(f"{k}={v}" for k, v in n.group_labels.items())
        slack: dict[str, Any] = {
            "text": text,
            "attachments": [
                {"color": color, "title": _summary(a), "text": _details(a)} for a in n.alerts
            ],
        }
        if receiver.channel:
            slack["channel"] = receiver.channel
        return await post(client, str(receiver.url), orjson.dumps(slack), idem, 10)
    if isinstance(receiver, PagerDutyReceiver):
        for a in n.alerts:
            event = {
                "routing_key": receiver.routing_key,
                "event_action": "trigger" if a.status == "firing" else "resolve",
                "dedup_key": a.fingerprint,
                "payload": {
                    "summary": _summary(a),
                    "source": f"driftline/{a.labels.get('tenant')}/{a.labels.get('model')}",
                    "severity": a.labels.get("severity", "warning"),
                    "custom_details": {"labels": a.labels, "annotations": a.annotations},
                },
            }
            out = await post(client, str(receiver.url), orjson.dumps(event), idem, 10)
            if not out.ok:
                return out
        return Outcome(True, status=202)
    if isinstance(receiver, TeamsReceiver):
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
                                {"type": "TextBlock", "wrap": True, "text": _details(a)}
                                for a in n.alerts
                            ),
                        ],
                    },
                }
            ],
        }
        return await post(client, str(receiver.url), orjson.dumps(card), idem, 10)
    assert isinstance(receiver, EmailReceiver)
    return await _mail(receiver, n)


def _details(a: GroupAlert) -> str:
    lines = [f"*{_summary(a)}* ({a.status})"]
    lines += [f"{k}: {v}" for k, v in sorted(a.labels.items())]
    for k in ("runbook_url", "dashboard_url", "description"):
        if k in a.annotations:
            lines.append(f"{k}: {a.annotations[k]}")
    return "\n".join(lines)


async def _mail(r: EmailReceiver, n: Notification) -> Outcome:
    msg = EmailMessage()
    msg["From"] = r.sender
    msg["To"] = ", ".join(r.to)
    msg["Subject"] = f"[{n.status.upper()}:{len(n.alerts)}] " + " ".join(
        f"{k}={v}" for k, v in n.group_labels.items()
    )
    msg["Message-ID"] = f"<{n.id}@driftline>"
    msg["X-Driftline-Notification"] = n.id
    msg.set_content("\n\n".join(_details(a) for a in n.alerts))
    try:
        await aiosmtplib.send(
            msg,
            hostname=r.host,
            port=r.port,
            start_tls=r.starttls,
            username=r.username,
            password=r.password,
            cert_bundle=r.ca_file,
            timeout=15,
        )
    except aiosmtplib.SMTPResponseException as e:
        return Outcome(False, e.code >= 400 and e.code < 500, e.code, f"SMTP {e.code}: {e.message}")
    except (aiosmtplib.SMTPException, OSError) as e:
        return Outcome(False, True, error=f"{type(e).__name__}: {e}")
    return Outcome(True, status=250)
