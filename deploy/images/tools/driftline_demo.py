"""`driftline-demo`: the compose file's demo producer (profile `demo`).

Creates a demo tenant through ingestion's admin API, routes the tenant's alerts to the
webhook receiver (signed with the shared webhook secret), registers the synthetic
credit-risk model with its reference data and streams predictions with scheduled drift and
late labels (`driftline.demo`, the same stream as `make demo`). The last line it prints is
a JSON summary (`{"tenant_id": ..., "predictions": ...}`) for scripts and tests.

Settings: `DRIFTLINE_DEMO_INGESTION_URL` (http://ingestion:8080), `DRIFTLINE_DEMO_ALERTING_URL`
(http://alerting:8080), `DRIFTLINE_DEMO_RECEIVER_URL` (http://webhook-receiver:8080/alerts),
`DEMO_SECONDS` (45), `DEMO_RATE` (events/s, 400), `DEMO_LABEL_DELAY_S` (5); the admin token
`DRIFTLINE_INGESTION__ADMIN_TOKEN` and the webhook secret `DRIFTLINE_WEBHOOK_SECRET` come
from the environment or from files in /run/secrets (`DRIFTLINE_INGESTION__ADMIN_TOKEN`,
`webhook_secret`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from driftline.client import AsyncClient
from driftline.demo.run import run as run_demo

SECRETS = Path(os.environ.get("DRIFTLINE_SECRETS_DIR") or "/run/secrets")


def setting(name: str, default: str | None = None, file: str | None = None) -> str:
    value = os.environ.get(name)
    if value:
        return value
    path = SECRETS / (file or name)
    if path.is_file():
        return path.read_text().strip()
    if default is None:
        raise SystemExit(f"driftline-demo: set {name} (or the secret file {path})")
    return default


def route(receiver_url: str, secret: str) -> dict[str, object]:
    return {
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
                "url": receiver_url,
                "secrets": [secret],
                "format": "alertmanager",
            }
        ],
    }


async def prepare(ingestion: str, alerting: str, receiver: str) -> tuple[str, str]:
    token = setting("DRIFTLINE_INGESTION__ADMIN_TOKEN")
    secret = setting("DRIFTLINE_WEBHOOK_SECRET", file="webhook_secret")
    tenant = os.environ.get("DRIFTLINE_DEMO_TENANT") or f"demo-{uuid.uuid4().hex[:8]}"
    async with AsyncClient(ingestion, admin_token=token) as c:
        out = await c.create_tenant(tenant, "Compose demo tenant")
    key = str(out["api_key"])
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.put(
            f"{alerting}/v1/alerting/config",
            content=orjson.dumps(route(receiver, secret)),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        r.raise_for_status()
    return tenant, key


def main() -> int:
    console = Console(width=120)
    ingestion = os.environ.get("DRIFTLINE_DEMO_INGESTION_URL", "http://ingestion:8080")
    alerting = os.environ.get("DRIFTLINE_DEMO_ALERTING_URL", "http://alerting:8080")
    receiver = os.environ.get("DRIFTLINE_DEMO_RECEIVER_URL", "http://webhook-receiver:8080/alerts")
    tenant, key = asyncio.run(prepare(ingestion, alerting, receiver))
    console.print(f"tenant {tenant}: alerts go to {receiver} (signed)")
    seconds = float(os.environ.get("DEMO_SECONDS", "45"))
    code = run_demo(
        ingestion,
        key,
        seconds=seconds,
        rate=float(os.environ.get("DEMO_RATE", "400")),
        label_delay=float(os.environ.get("DEMO_LABEL_DELAY_S", "5")),
        console=console,
    )
    summary = {"tenant_id": tenant, "seconds": seconds, "exit": code}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
