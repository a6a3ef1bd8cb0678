"""ASGI middleware counting every HTTP request by method, route template and status, and
timing it to the end of the response body. Requests that match no route are labelled
`__unmatched__`, so a scan of random paths cannot grow the label set."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import CoreMetrics

__all__ = ["HTTPMetricsMiddleware", "route_of"]

UNMATCHED = "__unmatched__"


def route_of(scope: Scope) -> str:
    """The template of the route that answered (`/v1/models/{model_id}`), set on the scope
    by FastAPI's router when it matched."""
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class HTTPMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: CoreMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # an exception before the response started is answered 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            labels = (scope.get("method", ""), route_of(scope), str(status))
            self.metrics.http_requests.labels(*labels).inc()
            self.metrics.http_duration.labels(*labels).observe(time.perf_counter() - t0)
