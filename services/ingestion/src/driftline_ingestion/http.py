"""HTTP plumbing shared by the ingestion routers: API-key authentication with scopes (every
denial audited), bounded body reading (413), JSON/NDJSON parsing, and error mapping."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from driftline_core.audit import AuditEmitter
from driftline_core.errors import (
    ConfigurationError,
    DriftlineError,
    NotFoundError,
    UnavailableError,
)
from driftline_core.events import Actor, Resource

from .apikeys import ApiKeys, Principal
from .registry import ConflictError, SegregationError

__all__ = ["Authenticator", "MalformedLine", "install_error_handlers", "parse_items", "read_body"]

log = logging.getLogger(__name__)

NDJSON = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/ndjson",
)


class Authenticator:
    """`Depends(auth.require("ingest"))` gives the caller's Principal or refuses (401/403)."""

    def __init__(self, keys: ApiKeys, audit: AuditEmitter) -> None:
        self.keys = keys
        self.audit = audit

    def require(self, scope: str) -> Callable[[Request], Awaitable[Principal]]:
        async def dependency(request: Request) -> Principal:
            token = request.headers.get("x-api-key") or ""
            authz = request.headers.get("authorization", "")
            if not token and authz.lower().startswith("bearer "):
                token = authz[7:].strip()
            if not token and request.url.path.endswith("/cloudevents"):
                token = request.query_params.get("api_key", "")
            if not token:
                await self._denied(request, None, "no API key")
                raise HTTPException(
                    401,
                    "an API key is required (Authorization: Bearer ...)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            who = await self.keys.verify(token)
            if who is None:
                await self._denied(request, None, "unknown or revoked API key")
                raise HTTPException(
                    401,
                    "the API key is not valid (unknown or revoked)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if scope not in who.scopes and "admin" not in who.scopes:
                await self._denied(request, who, f"missing scope {scope}")
                raise HTTPException(403, f"this API key lacks the {scope!r} scope")
            return who

        return dependency

    async def _denied(self, request: Request, who: Principal | None, why: str) -> None:
        ip = request.client.host if request.client else None
        actor = who.actor(ip) if who else Actor(type="api_key", id="anonymous", ip=ip)
        try:
            await self.audit.record(
                tenant_id=who.tenant_id if who else "unknown",
                actor=actor,
                action=f"http.{request.method.lower()}",
                outcome="denied",
                resource=Resource(type="endpoint", id=request.url.path),
                details={"reason": why},
            )
        except DriftlineError:
            log.warning("could not audit a denied request", extra={"path": request.url.path})


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_items(body: bytes, content_type: str, max_events: int) -> list[Any]:
    """A JSON array or object, or NDJSON (one event per line; a bad line is one rejected
    event, not a failed request)."""
    ctype = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise HTTPException(400, "the body is empty")
    if ctype in NDJSON:
        items: list[Any] = []
        for n, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                items.append(MalformedLine(n + 1, _json_error(line, e), line))
    elif ctype in ("application/json", "", "text/json"):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise HTTPException(400, f"malformed JSON: {_json_error(body, e)}") from e
        items = parsed if isinstance(parsed, list) else [parsed]
    else:
        raise HTTPException(
            415,
            f"unsupported content type {ctype!r}: send application/json "
            "(an array or one object) or application/x-ndjson",
        )
    if len(items) > max_events:
        raise HTTPException(413, f"{len(items)} events in one request; the limit is {max_events}")
    if not items:
        raise HTTPException(400, "no events in the body")
    return items


_NON_FINITE = re.compile(rb"(?<![\"\w])-?(NaN|Infinity)(?![\"\w])")


def _json_error(raw: bytes, e: orjson.JSONDecodeError) -> str:
    if _NON_FINITE.search(raw):
        return "NaN and Infinity are not JSON numbers; send null for a missing value"
    return str(e)


class MalformedLine:
    """Stands in for an NDJSON line that is not JSON: rejected with this reason, and its
    bytes go to the DLQ as they came."""

    def __init__(self, line: int, error: str, raw: bytes) -> None:
        self.reason = f"line {line}: malformed JSON: {error}"
        self.raw = raw


def install_error_handlers(app: FastAPI) -> None:
    statuses: list[tuple[type[DriftlineError], int]] = [
        (NotFoundError, 404),
        (ConflictError, 409),
        (SegregationError, 403),
        (ConfigurationError, 422),
        (UnavailableError, 503),
    ]

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DriftlineError)
        for kind, status in statuses:
            if isinstance(exc, kind):
                headers = {"Retry-After": "5"} if status == 503 else None
                return JSONResponse({"detail": str(exc), "code": exc.code}, status, headers)
        return JSONResponse({"detail": str(exc), "code": exc.code}, 400)

    app.add_exception_handler(DriftlineError, handle)
