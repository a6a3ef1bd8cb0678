"""HTTP plumbing shared by the ingestion routers: bounded body reading (413), JSON/NDJSON
parsing, and error mapping."""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from driftline_core.errors import (
    ConfigurationError,
    DriftlineError,
    NotFoundError,
    UnavailableError,
)
from driftline_core.problems import problem_response

from .limits import EventTooLargeError, Refused, SizeLimits
from .registry import ConflictError, InvalidModelError, SegregationError

__all__ = ["MalformedLine", "install_error_handlers", "parse_items", "read_body"]

log = logging.getLogger(__name__)

NDJSON = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/ndjson",
)


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


def parse_items(
    body: bytes, content_type: str, max_events: int, limits: SizeLimits | None = None
) -> list[Any]:
    """A JSON array or object, or NDJSON (one event per line; a bad line is one rejected
    event, not a failed request). With `limits`, an event over a size limit is a refused
    stand-in (limits.py), measured before it is parsed where it can be."""
    ctype = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise HTTPException(400, "the body is empty")
    if ctype in NDJSON:
        items: list[Any] = []
        for n, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            if limits is not None and len(line) > limits.event_bytes:  # never parsed
                items.append(Refused(limits.event_too_large(len(line), f"line {n + 1}"), line))
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                items.append(MalformedLine(n + 1, _json_error(line, e), line))
    elif ctype in ("application/json", "", "text/json"):
        if limits is not None and len(body) > limits.event_bytes and body.lstrip()[:1] != b"[":
            raise HTTPException(413, limits.event_too_large(len(body), "the event"))
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
    return items if limits is None else limits.screen(items, len(body))


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
        (InvalidModelError, 422),
        (UnavailableError, 503),
        (EventTooLargeError, 413),
    ]

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DriftlineError)
        for kind, status in statuses:
            if isinstance(exc, kind):
                headers = {"Retry-After": "5"} if status == 503 else None
                return problem_response(status, str(exc), headers, code=exc.code)
        return problem_response(400, str(exc), code=exc.code)

    app.add_exception_handler(DriftlineError, handle)

    async def redis_away(request: Request, exc: Exception) -> JSONResponse:
        # rate limits and event-id claims live in Redis: while it is away, nothing is taken
        # in and the client is told to retry (the fault suite met 500s here, issue 18)
        return problem_response(
            503, f"Redis unavailable, retry: {exc}", {"Retry-After": "1"}, code="unavailable"
        )

    app.add_exception_handler(RedisConnectionError, redis_away)
    app.add_exception_handler(RedisTimeoutError, redis_away)
