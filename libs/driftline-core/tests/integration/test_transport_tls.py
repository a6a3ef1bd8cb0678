"""Services serve HTTPS with the settings' certificate (the local stack's test CA signs it);
PostgreSQL and Redis clients take their TLS settings."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from driftline_core.db.pool import _ssl
from driftline_core.observability import CoreMetrics
from driftline_core.redis_store import RedisStore
from driftline_core.service import create_service_app, server_config
from driftline_core.settings import (
    DriftlineSettings,
    HttpSettings,
    PostgresSettings,
    RedisSettings,
)

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "deploy" / "local"))
from dlstack import tls  # noqa: E402


async def test_a_service_serves_https_with_its_certificate(stack):
    tls.ensure()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = DriftlineSettings(
        environment="test",
        http=HttpSettings(
            port=port, ssl_certfile=str(tls.SERVER_CERT), ssl_keyfile=str(tls.SERVER_KEY)
        ),
    )
    app = create_service_app(
        title="t", metrics=CoreMetrics(CollectorRegistry(), "tls-test"), checks=[], components=[]
    )
    import uvicorn

    server = uvicorn.Server(server_config(app, settings))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(tls.CA))) as c:
            r = await c.get(f"https://127.0.0.1:{port}/healthz")
            assert r.status_code == 200
        async with httpx.AsyncClient() as c:  # the system's CAs do not know the test CA
            with pytest.raises(httpx.ConnectError):
                await c.get(f"https://127.0.0.1:{port}/healthz")
        async with httpx.AsyncClient() as c:
            with pytest.raises(httpx.HTTPError):
                await c.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def test_postgres_tls_modes_become_asyncpg_ssl_arguments():
    tls.ensure()
    assert _ssl(PostgresSettings()) is False
    assert _ssl(PostgresSettings(ssl="require")) == "require"
    ctx = _ssl(PostgresSettings(ssl="verify-full", ssl_rootcert=str(tls.CA)))
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.check_hostname
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    ctx = _ssl(PostgresSettings(ssl="verify-ca", ssl_rootcert=str(tls.CA)))
    assert isinstance(ctx, ssl.SSLContext)
    assert not ctx.check_hostname


def test_redis_tls_settings_reach_the_connection_pool():
    tls.ensure()
    store = RedisStore(
        RedisSettings(url="rediss://127.0.0.1:6380/0", password="pw", ssl_ca_certs=str(tls.CA))
    )
    kw = store.client.connection_pool.connection_kwargs
    assert kw["ssl_ca_certs"] == str(tls.CA)
    assert kw["password"] == "pw"
    assert store.client.connection_pool.connection_class.__name__ == "SSLConnection"
