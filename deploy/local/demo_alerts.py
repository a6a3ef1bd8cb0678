"""The demo's alert path: a webhook receiver on loopback that verifies every Standard
Webhooks signature (as a real consumer would), and the demo tenant's routing to it."""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Receiver", "configure", "show"]


class Receiver:
    def __init__(self) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.received: list[dict[str, Any]] = []
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

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            payload = Webhook(self.secret).verify(body, headers)
            status = 204
            self.received.append({"payload": payload, "id": headers["webhook-id"]})
        except WebhookVerificationError:
            status = 401
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> Receiver:
        self._thread.start()
        for _ in range(100):
            if self._server.started:
                break
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


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
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["model"],
            }
        ],
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
    return len(receiver.received)
