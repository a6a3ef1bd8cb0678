"""The ingestion app in-process against the real stack, and a fresh tenant per test."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from driftline_ingestion.app import build, create_app
from driftline_ingestion.settings import IngestionSettings

SCHEMA = {
    "features": [
        {"name": "age", "kind": "numeric", "min": 18, "max": 100},
        {"name": "income", "kind": "numeric", "on_out_of_range": "reject", "min": 0},
        {
            "name": "region",
            "kind": "categorical",
            "categories": ["north", "south"],
            "on_unseen_category": "reject",
        },
        {"name": "vip", "kind": "boolean", "required": False},
        {"name": "ssn", "kind": "text", "sensitive": True, "required": False},
    ],
    "unknown_features": "reject",
}


def settings(**ingestion: Any) -> IngestionSettings:
    s = IngestionSettings(environment="test")
    return s.model_copy(update={"ingestion": s.ingestion.model_copy(update=ingestion)})


@dataclass
class Tenant:
    id: str
    admin: httpx.AsyncClient
    ingest: httpx.AsyncClient
    keys: dict[str, str]

    def event(self, **kw: Any) -> dict[str, Any]:
        return {
            "model_id": "credit",
            "model_version": "1",
            "features": {"age": 40, "income": 5e4, "region": "north"},
            "prediction": 0.3,
            **kw,
        }


async def make_tenant(client: httpx.AsyncClient, model: bool = True) -> Tenant:
    tid = f"t{uuid.uuid4().hex[:10]}"
    r = await client.post(
        "/v1/auth/tenants",
        json={"id": tid, "name": tid},
        headers={"X-Admin-Token": "driftline-dev-admin"},
    )
    assert r.status_code == 201, r.text
    admin_key = r.json()["api_key"]
    admin = httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    r = await admin.post("/v1/auth/keys", json={"name": "producer", "scopes": ["ingest"]})
    assert r.status_code == 201, r.text
    ingest_key = r.json()["api_key"]
    ingest = httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {ingest_key}"},
    )
    if model:
        r = await admin.post(
            "/v1/models",
            json={
                "id": "credit",
                "name": "Credit risk",
                "task": "classification",
                "feature_schema": SCHEMA,
            },
        )
        assert r.status_code == 201, r.text
    return Tenant(
        tid,
        admin,
        ingest,
        {"admin": admin_key, "ingest": ingest_key, "ingest_id": r.json().get("key_id", "")},
    )


@pytest.fixture(scope="module")
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    s = settings()
    app = create_app(s, build(s))
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://ingestion", timeout=30
        ) as c,
    ):
        yield c


@pytest.fixture
async def tenant(client) -> Tenant:
    return await make_tenant(client)


@pytest.fixture
def new_tenant():
    """`await new_tenant(client, model=True)`: another tenant, with keys (and a model)."""
    return make_tenant


@pytest.fixture
def ingestion_settings():
    """`ingestion_settings(rate_per_s=5, ...)`: settings with ingestion options changed."""
    return settings


@pytest.fixture
def serve():
    """`async with serve(settings) as client`: another ingestion app in-process."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(s: IngestionSettings):
        app = create_app(s, build(s))
        async with (
            LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),
                base_url="http://ingestion",
                timeout=30,
            ) as c,
        ):
            yield c

    return run


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
