"""The fuzzing machinery finds what it is meant to find: against a small app that breaks
each promise once (a 500, an answer its schema does not allow, a request that violates the
schema accepted), each check reports its route, and a route that keeps them reports
nothing. No stack needed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Query, Request
from fuzzing import Credentials, Finding, fuzz_service
from harness import free_port
from pydantic import BaseModel


class Out(BaseModel):
    n: int


def broken_app() -> FastAPI:
    app = FastAPI()

    @app.get("/crash", response_model=Out)
    async def crash(x: int = Query(ge=0, le=10)) -> Out:
        raise RuntimeError("boom")

    @app.get("/wrong-shape", response_model=None, responses={200: {"model": Out}})
    async def wrong_shape(x: int = Query(ge=0, le=10)) -> Any:
        return {"n": "not a number"}

    @app.post(
        "/accepts-anything",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"n": {"type": "integer"}},
                            "required": ["n"],
                            "additionalProperties": False,
                        }
                    }
                },
            }
        },
    )
    async def accepts_anything(request: Request) -> Out:
        await request.body()  # never validated
        return Out(n=1)

    @app.get("/fine", response_model=Out)
    async def fine(x: int = Query(ge=0, le=10)) -> Out:
        return Out(n=x)

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FastAPI, str]]:
    app, port = broken_app(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.025)
    assert server.started
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_each_check_reports_the_route_that_breaks_it(served) -> None:
    app, url = served
    creds = Credentials("t", "dlk_x", "m", "u", "p", url)
    findings: list[Finding] = []
    sent = fuzz_service("selfcheck", url, creds, findings, document=app.openapi())
    assert sent > 0
    by_route: dict[str, str] = {}
    for f in findings:
        by_route[f.operation] = by_route.get(f.operation, "") + f.message.lower()
    assert "server error" in by_route.get("GET /crash", ""), by_route
    assert "response violates schema" in by_route.get("GET /wrong-shape", ""), by_route
    assert "schema-violating request" in by_route.get("POST /accepts-anything", ""), by_route
    assert "GET /fine" not in by_route, by_route["GET /fine"]
