"""Errors as RFC 9457 problem details (`application/problem+json`), in every service.

One model (`Problem`) describes every 4xx and 5xx body the services send, and one set of
handlers (`install_problem_handlers`, called by `create_service_app`) makes that true:
- an `HTTPException` (any route's 4xx or 503, and Starlette's own 404 and 405) keeps its
  status and headers; its message is `detail`, and `title` the status's reason phrase;
- a request that fails validation is a 422 whose `detail` names the first bad field and
  whose `errors` lists them all (FastAPI's `loc`, `msg`, `type`);
- an `HTTPException` raised with a list (a configuration that fails several checks) keeps
  that list in `errors` and says how many in `detail`;
- services map their domain errors with `problem_response(status, detail, code=...)`.

`detail` is always a string, as the RFC has it; `code`, `errors` and `correlation_id` are
extension members. Problem type URIs are not used: `type` is "about:blank" throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "install_problem_handlers",
    "problem_body",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    type: str = Field(default="about:blank", description="always about:blank here")
    title: str = Field(description="the status code's reason phrase")
    status: int = Field(ge=400, le=599, description="the HTTP status code")
    detail: str = Field(description="what went wrong, for a person to read")
    code: str | None = Field(default=None, description="a stable error code, where one exists")
    errors: list[Any] | None = Field(
        default=None,
        description="every failed check of the request: validation errors (loc, msg, type) "
        "or a configuration's findings",
    )
    correlation_id: str | None = Field(
        default=None, description="500 only: the id the error was logged under"
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: Any, **extensions: Any) -> dict[str, Any]:
    """The problem's members (a list `detail` goes to `errors`)."""
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status}
    if isinstance(detail, list):
        body["errors"] = jsonable_encoder(detail)
        body["detail"] = _summary(detail)
    else:
        body["detail"] = "" if detail is None else str(detail)
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


def problem_response(
    status: int, detail: Any, headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, **extensions),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _summary(errors: list[Any]) -> str:
    first = errors[0] if errors else None
    if isinstance(first, dict):
        where = first.get("field") or ".".join(str(p) for p in first.get("loc", ()))
        msg = first.get("msg") or first.get("message") or ""
        text = f"{where}: {msg}" if where else str(msg)
    else:
        text = str(first) if first is not None else "invalid request"
    more = len(errors) - 1
    return text + (f" (and {more} more, see errors)" if more > 0 else "")


def install_problem_handlers(app: FastAPI, plain_prefixes: Sequence[str] = ()) -> None:
    """Problems for every HTTP error, except under `plain_prefixes`: APIs that speak another
    product's error format (alerting's Alertmanager v2: a JSON string, which amtool reads)."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        if request.url.path.startswith(tuple(plain_prefixes)):
            return JSONResponse(str(exc.detail), status_code=exc.status_code, headers=headers)
        return problem_response(exc.status_code, exc.detail, headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in exc.errors()]
        return problem_response(422, errors or "the request is not valid")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
