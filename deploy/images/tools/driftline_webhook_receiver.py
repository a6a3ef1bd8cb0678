"""`driftline-webhook-receiver`: a webhook endpoint that verifies every Standard Webhooks
signature (as a real consumer of Driftline's alerts would) and keeps what it received.

- `POST /alerts` (any path but the ones below): 204 when the signature verifies with the
  secret, 401 otherwise (counted, not kept).
- `GET /received`: what arrived, oldest first: `{"verified": [...], "rejected": n}`, each
  with the webhook id, timestamp, signature header and the raw body, so a client holding the
  secret can check the signature itself.
- `GET /healthz`, `GET /readyz`: 200.

The secret: `DRIFTLINE_WEBHOOK_SECRET`, or the file `DRIFTLINE_WEBHOOK_SECRET_FILE`
(default `/run/secrets/webhook_secret`), `whsec_` + base64. Listens on
`DRIFTLINE_HTTP__HOST`:`DRIFTLINE_HTTP__PORT` (0.0.0.0:8080 in the image).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def secret() -> str:
    value = os.environ.get("DRIFTLINE_WEBHOOK_SECRET")
    if not value:
        path = Path(os.environ.get("DRIFTLINE_WEBHOOK_SECRET_FILE", "/run/secrets/webhook_secret"))
        value = path.read_text().strip()
    if not value.startswith("whsec_"):
        raise SystemExit("the webhook secret must look like whsec_<base64>")
    return value


class Receiver:
    def __init__(self, key: str) -> None:
        self.webhook = Webhook(key)
        self.verified: list[dict[str, Any]] = []
        self.rejected = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in ("/healthz", "/readyz"):
            await self._reply(send, 200, b'{"status":"ok"}')
        elif method == "GET" and path == "/received":
            out = {"verified": self.verified, "rejected": self.rejected}
            await self._reply(send, 200, orjson.dumps(out))
        elif method == "POST":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            try:
                self.webhook.verify(body, headers)
            except WebhookVerificationError:
                self.rejected += 1
                await self._reply(send, 401, b'{"error":"bad signature"}')
                return
            self.verified.append(
                {
                    "path": path,
                    "webhook-id": headers.get("webhook-id"),
                    "webhook-timestamp": headers.get("webhook-timestamp"),
                    "webhook-signature": headers.get("webhook-signature"),
                    "body": body.decode(),
                }
            )
            await self._reply(send, 204, b"")
        else:
            await self._reply(send, 404, b'{"error":"not found"}')

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")] if body else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    uvicorn.run(
        Receiver(secret()),
        host=os.environ.get("DRIFTLINE_HTTP__HOST", "127.0.0.1"),
        port=int(os.environ.get("DRIFTLINE_HTTP__PORT", "8080")),
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
