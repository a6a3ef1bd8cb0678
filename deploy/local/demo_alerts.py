"""The demo's alert path: a webhook receiver on loopback that verifies every Standard
Webhooks signature (as a real consumer would), and the demo tenant's routing to it."""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["INHIBIT_RULES", "Attempt", "Receiver", "configure", "show"]


@dataclass
class Attempt:
    """One request that reached the receiver, and what it answered."""

    webhook_id: str | None
    idempotency_key: str | None
    status: int  # 204 accepted, 401 bad signature, 503 failed on purpose
    payload: dict[str, Any] | None  # only when the signature verified
    duplicate: bool = False  # accepted before under this idempotency key: acknowledged, dropped
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """A webhook endpoint on loopback that verifies every Standard Webhooks signature
    (HMAC-SHA256 over id, timestamp and body) as a real consumer would, and logs every
    attempt with its `Idempotency-Key`. `fail_first=n` answers 503 (with `Retry-After: 1`) to
    the first attempt of the first n notifications, to see the sender retry them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.attempts: list[Attempt] = []
        self.fail_first = fail_first
        self._failed: set[str] = set()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Accepted notifications: verified, answered 2xx, once per idempotency key (a
        repeat is acknowledged and dropped, as the sender's contract asks of receivers)."""
        return [
            {"payload": a.payload, "id": a.webhook_id, "key": a.idempotency_key}
            for a in self.attempts
            if a.status == 204 and not a.duplicate
        ]

    @property
    def duplicates(self) -> list[Attempt]:
        return [a for a in self.attempts if a.duplicate]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        extra: list[tuple[bytes, bytes]] = []
        payload: dict[str, Any] | None = None
        try:
            payload = Webhook(self.secret).verify(body, headers)
            status = 204
            if key is not None and key not in self._failed and len(self._failed) < self.fail_first:
                self._failed.add(key)
                status, extra = 503, [(b"retry-after", b"1")]
        except WebhookVerificationError:
            status = 401
        seen = status == 204 and any(
            a.status == 204 and a.idempotency_key == key for a in self.attempts
        )
        self.attempts.append(Attempt(headers.get("webhook-id"), key, status, payload, seen))
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> Receiver:
        self._thread.start()
        for _ in range(100):
            if self._server.started:
                break
            time.sleep(0.05)
        if not self._server.started:
            raise RuntimeError(f"the webhook receiver did not start on {self.url}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


# when a model's dataset as a whole drifted (DatasetDrift, critical), its per-feature warnings
# add nothing: they are muted. Feature drift and concept drift are notified side by side (a
# rule muting every warning under any critical alert hid all feature drift behind the
# concept-drift alert); the demo's story table says what an inhibition hid.
INHIBIT_RULES: list[dict[str, Any]] = [
    {
        "source_matchers": ['alertname="DatasetDrift"'],
        "target_matchers": ['alertname="FeatureDrift"'],
        "equal": ["model", "segment"],
    }
]


def configure(alerting_url: str, key: str, receiver: Receiver) -> None:
    """Route the demo tenant's alerts to the receiver (default rules apply)."""
    config = {
        "route": {
            "receiver": "demo-webhook",
            "group_by": ["alertname", "model"],
            "group_wait_s": 0,
            "group_interval_s": 5,
            "repeat_interval_s": 3600,
        },
        "receivers": [
            {
                "name": "demo-webhook",
                "type": "webhook",
                "url": receiver.url,
                "secrets": [receiver.secret],
                "format": "alertmanager",
            }
        ],
        "inhibit_rules": INHIBIT_RULES,
    }
    r = httpx.put(
        f"{alerting_url}/v1/alerting/config",
        content=orjson.dumps(config),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=10,
    )
    r.raise_for_status()


def show(console: Console, receiver: Receiver, wait_s: float = 20.0) -> int:
    deadline = time.monotonic() + wait_s
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.5)
    table = Table(title=f"Signed notifications received at {receiver.url} (signatures verified)")
    for col in ("webhook-id", "status", "alerts in the group"):
        table.add_column(col)
    for hit in receiver.received:
        payload = hit["payload"]
        counts: Counter[str] = Counter()
        for a in payload["alerts"]:
            lab = a["labels"]
            where = "segments" if "segment" in lab else "all"
            counts[
                f"{lab.get('alertname', '')} {lab.get('feature', '')} ({a['status']}, {where})"
            ] += 1
        table.add_row(
            hit["id"][:20],
            "[red]firing" if payload["status"] == "firing" else "[green]resolved",
            escape(", ".join(f"{k} x{n}" if n > 1 else k for k, n in sorted(counts.items()))),
        )
    console.print(table)
    if receiver.duplicates:
        console.print(
            f"[yellow]{len(receiver.duplicates)} repeated delivery(ies) of a notification "
            "already received (same idempotency key) were acknowledged and dropped"
        )
    return len(receiver.received)
