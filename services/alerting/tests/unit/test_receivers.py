"""The body each receiver kind gets (httpx MockTransport stands in for Slack, PagerDuty and
Teams, whose servers are not reachable here), and signatures with two secrets."""

from __future__ import annotations

import base64
import time

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from driftline_alerting.dispatch import GroupAlert, Notification
from driftline_alerting.receivers import Clients, Links, alertmanager_payload, send, sign_headers
from driftline_alerting.routing import (
    MsTeamsConfig,
    PagerDutyConfig,
    SlackConfig,
    WebhookConfig,
)

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def alert(fp: str, status: str = "firing") -> GroupAlert:
    return GroupAlert(
        fp,
        "share",
        {"alertname": "DatasetDrift", "model": "credit", "severity": "critical", "tenant": "t"},
        {"summary": "80% drifted", "runbook_url": "https://rb"},
        status,  # type: ignore[arg-type]
        1.8e9,
        None if status == "firing" else 1.8e9 + 60,
        0.8,
    )


LINKS = Links("https://driftline.example.org/")
N = Notification(
    "ntf_1",
    "t",
    "r",
    "t|/{alertname=DatasetDrift}",
    {"alertname": "DatasetDrift"},
    "firing",
    (alert("a1"), alert("a2", "resolved")),
    1.8e9,
)


async def capture(receiver, now: float = 1.8e9) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
        out = await send(receiver, N, Clients(default=c), now, links=LINKS)
    assert out.ok
    return seen


async def test_pagerduty_gets_one_event_per_alert_with_the_fingerprint_as_dedup_key():
    reqs = await capture(PagerDutyConfig(routing_key="KEY", url="http://pd/enqueue"))
    events = [orjson.loads(r.content) for r in reqs]
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", "a1"),
        ("resolve", "a2"),
    ]
    assert events[0]["payload"]["severity"] == "critical"
    assert events[0]["routing_key"] == "KEY"
    assert all(r.headers["idempotency-key"] == "ntf_1" for r in reqs)
    assert events[0]["links"][0]["href"] == "https://driftline.example.org/v1/alerts/a1"
    assert events[0]["links"][1]["href"] == "https://driftline.example.org/v1/models/credit"


async def test_pagerduty_v1_with_a_service_key():
    reqs = await capture(PagerDutyConfig(service_key="SK", url="http://pd/v1"))
    events = [orjson.loads(r.content) for r in reqs]
    assert [(e["event_type"], e["incident_key"]) for e in events] == [
        ("trigger", "a1"),
        ("resolve", "a2"),
    ]
    assert events[0]["service_key"] == "SK"


async def test_webhook_with_bearer_or_basic_auth_instead_of_signatures():
    [r] = await capture(
        WebhookConfig(url="http://hook/x", http_config={"authorization": {"credentials": "T0KEN"}})
    )
    assert r.headers["authorization"] == "Bearer T0KEN"
    assert "webhook-signature" not in r.headers
    [r] = await capture(
        WebhookConfig(
            url="http://hook/x",
            http_config={"basic_auth": {"username": "am", "password": "pw"}},
            driftline_signing_secrets=[NEW],
        ),
        now=time.time(),
    )
    assert r.headers["authorization"] == "Basic " + base64.b64encode(b"am:pw").decode()
    assert Webhook(NEW).verify(r.content, dict(r.headers))["version"] == "4"  # and signed
    body = orjson.loads(r.content)
    assert body["externalURL"] == "https://driftline.example.org"
    assert body["alerts"][0]["generatorURL"] == "https://driftline.example.org/v1/alerts/a1"
    assert body["alerts"][0]["annotations"]["driftline_model_url"].endswith("/v1/models/credit")


async def test_an_integration_without_send_resolved_gets_only_the_firing_alerts():
    [s] = await capture(SlackConfig(api_url="http://slack/hook"))  # Alertmanager's default
    titles = [a["title"] for a in orjson.loads(s.content)["attachments"]]
    assert len(titles) == 1


async def test_slack_and_teams_bodies():
    [s] = await capture(SlackConfig(api_url="http://slack/hook", channel="#ml", send_resolved=True))
    body = orjson.loads(s.content)
    assert body["channel"] == "#ml"
    assert body["text"].startswith("[FIRING]")
    assert body["attachments"][0]["title"] == "80% drifted"
    assert body["attachments"][0]["title_link"] == "https://driftline.example.org/v1/alerts/a1"
    assert "model: https://driftline.example.org/v1/models/credit" in body["attachments"][0]["text"]
    [t] = await capture(MsTeamsConfig(webhook_url="http://teams/hook"))
    card = orjson.loads(t.content)["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "80% drifted" in str(card["content"]["body"])


def test_alertmanager_payload_and_two_signatures():
    p = alertmanager_payload(N)
    assert p["version"] == "4"
    assert p["commonLabels"]["model"] == "credit"
    assert [a["status"] for a in p["alerts"]] == ["firing", "resolved"]
    assert p["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"  # as Alertmanager sends it
    body = orjson.dumps(p).decode()
    headers = sign_headers([OLD, NEW], "ntf_1", body, time.time())
    for secret in (OLD, NEW):  # during a rotation receivers know either secret
        assert Webhook(secret).verify(body, headers)["version"] == "4"
