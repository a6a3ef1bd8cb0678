"""A live ingestion server (uvicorn on a free loopback port) for the SDK and the CLI."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from driftline_ingestion.app import build, create_app
from driftline_ingestion.settings import IngestionSettings


@pytest.fixture(scope="module")
async def live_url(stack) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = IngestionSettings(environment="test")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, build(settings)), host="127.0.0.1", port=port, log_config=None
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        await asyncio.sleep(0.1)
    assert server.started, "the ingestion server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 30)


@pytest.fixture
async def admin_key(live_url, unique) -> str:
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.post(
            "/v1/auth/tenants",
            json={"id": unique("sdk").replace("_", "-"), "name": "sdk"},
            headers={"X-Admin-Token": "driftline-dev-admin"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])
