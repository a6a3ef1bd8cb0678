"""A live ingestion server (uvicorn on a free loopback port) for the SDK and the CLI."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

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


@pytest.fixture(scope="module")
def thread_url(stack) -> Iterator[str]:
    """An ingestion server on its own event loop in a thread, so a test's coroutine can call
    the sync client (as a notebook cell does) while its own loop is running."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = IngestionSettings(environment="test")
    holder: dict[str, uvicorn.Server] = {}

    def serve() -> None:
        async def main() -> None:
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, build(settings)),
                    host="127.0.0.1",
                    port=port,
                    log_config=None,
                )
            )
            holder["server"] = server
            await server.serve()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (holder.get("server") and holder["server"].started):
        assert time.monotonic() < deadline, "the ingestion server did not start"
        assert thread.is_alive(), "the ingestion server's thread ended"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    holder["server"].should_exit = True
    thread.join(30)
