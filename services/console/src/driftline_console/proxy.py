"""The reverse proxy: /api/<service>/<path> to that service's API, streamed both ways.

Request headers and body pass through (less the hop-by-hop headers and Host; the caller's
address goes as X-Forwarded-For, which the services' uvicorn trusts from loopback only, so
login lockouts count the browser's address, not the console's). The response streams back
as the service sent it (raw bytes: a compressed body stays compressed, Content-Length holds).
A service that cannot be reached is a 502 problem naming it, one that does not answer in
time a 504; an unknown service a 404. The console never calls a service for itself: every
upstream request is a browser's.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import Counter
from starlette.background import BackgroundTask

from .settings import ConsoleOptions

__all__ = ["HOP_BY_HOP", "Proxy", "problem", "proxy_router"]

log = logging.getLogger(__name__)

# RFC 9110 7.6.1, plus the ones a proxy sets itself
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    }
)
# the console's own server sets these on the answer
RESPONSE_OWN = frozenset({"date", "server"})
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra},
        status_code=status,
        media_type="application/problem+json",
    )


class Proxy:
    """One pooled httpx client for every upstream; started and stopped with the app."""

    def __init__(self, opts: ConsoleOptions, registry: Any) -> None:
        self.upstreams = opts.upstreams.by_service()
        self._opts = opts
        self._client: httpx.AsyncClient | None = None
        self.errors = Counter(
            "driftline_console_upstream_errors",
            "Proxied requests no upstream answered, by service and reason (unreachable, timeout)",
            ["service", "reason"],
            registry=registry,
        )
        self.requests = Counter(
            "driftline_console_proxied_requests",
            "Proxied requests an upstream answered, by service and status class",
            ["service", "status"],
            registry=registry,
        )

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("Proxy.start() was not awaited")
        return self._client

    async def start(self) -> None:
        o = self._opts
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(o.read_timeout_s, connect=o.connect_timeout_s),
            limits=httpx.Limits(max_connections=o.max_connections),
            follow_redirects=False,
            trust_env=False,
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def forward(self, service: str, path: str, request: Request) -> Response:
        base = self.upstreams.get(service)
        if base is None:
            known = ", ".join(sorted(self.upstreams))
            return problem(404, "Not Found", f"no service {service!r} (one of: {known})")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        if request.client:
            headers.append(("x-forwarded-for", request.client.host))
        headers.append(("x-forwarded-proto", request.url.scheme))
        if host := request.headers.get("host"):
            headers.append(("x-forwarded-host", host))
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        # the path and query as the browser encoded them (a %2F in a path segment stays one)
        raw = request.scope.get("raw_path") or request.url.path.encode()
        prefix = f"/api/{service}".encode()
        tail = raw[len(prefix) :].decode("latin-1") if raw.startswith(prefix) else f"/{path}"
        query = f"?{request.url.query}" if request.url.query else ""
        upstream = self.client.build_request(
            request.method,
            f"{base}{tail}{query}",
            headers=headers,
            content=request.stream() if has_body else None,
        )
        try:
            answer = await self.client.send(upstream, stream=True)
        except httpx.TimeoutException as e:
            self.errors.labels(service, "timeout").inc()
            log.warning("upstream timed out", extra={"service": service, "error": repr(e)})
            return problem(
                504, "Gateway Timeout", f"{service} did not answer in time", service=service
            )
        except httpx.TransportError as e:
            self.errors.labels(service, "unreachable").inc()
            log.warning("upstream unreachable", extra={"service": service, "error": repr(e)})
            return problem(
                502,
                "Bad Gateway",
                f"{service} cannot be reached ({type(e).__name__}); it may be down",
                service=service,
            )
        self.requests.labels(service, f"{answer.status_code // 100}xx").inc()
        out = [
            (k, v)
            for k, v in answer.headers.multi_items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in RESPONSE_OWN
        ]
        return StreamingResponse(
            _raw(answer),
            status_code=answer.status_code,
            headers=_merge(out),
            background=BackgroundTask(answer.aclose),
        )


async def _raw(answer: httpx.Response) -> Any:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    except httpx.HTTPError as e:  # the upstream went away mid-body: the browser sees a cut
        log.warning("upstream body cut", extra={"url": str(answer.url), "error": repr(e)})


def _merge(items: list[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict (StreamingResponse takes a mapping); Set-Cookie is the one header
    that cannot be joined, and the services set none."""
    out: dict[str, str] = {}
    for k, v in items:
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def proxy_router(proxy: Proxy) -> APIRouter:
    r = APIRouter(tags=["proxy"])

    @r.api_route("/api/{service}/{path:path}", methods=METHODS, include_in_schema=False)
    async def forward(service: str, path: str, request: Request) -> Response:
        return await proxy.forward(service, path, request)

    return r
