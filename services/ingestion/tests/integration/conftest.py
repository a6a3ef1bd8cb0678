"""The ingestion app in-process against the real stack, and a fresh tenant per test."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
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


# --- a broker of the test's own (fault tests) ---------------------------------------------

ROOT = Path(__file__).resolve().parents[4]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateKafka:
    """A single-node KRaft broker started by the local stack's launcher in its own folder
    (`DRIFTLINE_STACK_DIR`), on free ports, sharing only the download cache."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "stack"
        self.port = free_port()
        self.env = {
            **os.environ,
            "DRIFTLINE_STACK_DIR": str(self.dir),
            "DRIFTLINE_CACHE_DIR": os.environ.get(
                "DRIFTLINE_CACHE_DIR", str(ROOT / ".stack" / "cache")
            ),
            "DRIFTLINE_STACK_KAFKA_PORT": str(self.port),
            "DRIFTLINE_STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
            "DRIFTLINE_STACK_KAFKA_TLS_PORT": str(free_port()),
            "DRIFTLINE_STACK_KAFKA_HEAP": "512m",
        }

    async def run(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "deploy" / "local" / "stack.py"),
            *args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
        assert proc.returncode == 0, out.decode(errors="replace")


@pytest.fixture
async def private_kafka(tmp_path: Path) -> AsyncIterator[PrivateKafka]:
    """A broker of the test's own, to stop and restart (never the shared one)."""
    broker = PrivateKafka(tmp_path)
    await broker.run("start", "kafka")
    try:
        yield broker
    finally:
        await broker.run("stop", "kafka")
        shutil.rmtree(broker.dir, ignore_errors=True)


@pytest.fixture
def read_topic() -> Any:
    """`await read_topic(bootstrap, topic)`: every record's value, from the beginning."""
    return _read_topic


async def _read_topic(bootstrap: str, topic: str) -> list[bytes]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
        if not parts:
            parts = [
                TopicPartition(topic, p)
                for p in (await c._client.fetch_all_metadata()).partitions_for_topic(topic)
            ]
        c.assign(parts)
        await c.seek_to_beginning(*parts)
        ends = await c.end_offsets(parts)
        out: list[bytes] = []
        deadline = time.monotonic() + 60
        while True:
            positions = {tp: await c.position(tp) for tp in parts}
            if all(positions[tp] >= ends[tp] for tp in parts):
                return out
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for batch in (await c.getmany(timeout_ms=500)).values():
                out += [m.value for m in batch]
    finally:
        await c.stop()
