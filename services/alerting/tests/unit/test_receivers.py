"""The body each receiver kind gets (httpx MockTransport stands in for Slack, PagerDuty and
Teams, whose servers are not reachable here), and signatures with two secrets."""

from __future__ import annotations

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from driftline_alerting.dispatch import GroupAlert, Notification
from driftline_alerting.receivers import alertmanager_payload, send, sign_headers
from driftline_alerting.routing import PagerDutyReceiver, SlackReceiver, TeamsReceiver

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


async def capture(receiver) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
        out = await send(receiver, N, c, 1.8e9)
    assert out.ok
    return seen


async def test_pagerduty_gets_one_event_per_alert_with_the_fingerprint_as_dedup_key():
    reqs = await capture(PagerDutyReceiver(name="pd", routing_key="KEY", url="http://pd/enqueue"))
    events = [orjson.loads(r.content) for r in reqs]
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", "a1"),
        ("resolve", "a2"),
    ]
    assert events[0]["payload"]["severity"] == "critical"
    assert events[0]["routing_key"] == "KEY"
    assert all(r.headers["idempotency-key"] == "ntf_1" for r in reqs)


async def test_slack_and_teams_bodies():
    [s] = await capture(SlackReceiver(name="s", url="http://slack/hook", channel="#ml"))
    body = orjson.loads(s.content)
    assert body["channel"] == "#ml"
    assert body["text"].startswith("[FIRING]")
    assert body["attachments"][0]["title"] == "80% drifted"
    [t] = await capture(TeamsReceiver(name="t", url="http://teams/hook"))
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
    import time

    headers = sign_headers([OLD, NEW], "ntf_1", body, time.time())
    for secret in (OLD, NEW):  # during a rotation receivers know either secret
        assert Webhook(secret).verify(body, headers)["version"] == "4"
