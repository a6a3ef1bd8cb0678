"""Shared test fixtures.

Integration tests (any test under an `integration/` or `e2e/` folder is marked so
automatically) use the `stack` fixture, which gives settings for real servers:

- default: the project's local stack (`deploy/local/stack.py up`, started or reused);
- `DRIFTLINE_TEST_STACK=external`: the endpoints in `DRIFTLINE_*` settings as they are
  (managed Kafka, PostgreSQL, Redis and InfluxDB);
- `DRIFTLINE_TEST_STACK=docker`: containers through testcontainers, skipped with the
  reason when no Docker engine answers.

Deselect integration tests only on purpose: `pytest -m "not integration"`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from driftline_core.settings import DriftlineSettings

ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "e2e" in parts:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.e2e)


def _local_stack() -> DriftlineSettings:
    out = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "local" / "stack.py"), "up", "--no-prometheus"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        pytest.fail(f"the local stack did not start:\n{out.stdout}\n{out.stderr}", pytrace=False)
    return DriftlineSettings(environment="test")


def _docker_stack() -> Iterator[DriftlineSettings]:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as e:
        pytest.skip(f"DRIFTLINE_TEST_STACK=docker but no Docker engine answers: {e}")
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer(
            "postgres:16", username="driftline", password="driftline-dev", dbname="driftline"
        ) as pg,
        RedisContainer("redis:7") as redis,
    ):
        os.environ["DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"] = kafka.get_bootstrap_server()
        os.environ["DRIFTLINE_POSTGRES__HOST"] = pg.get_container_host_ip()
        os.environ["DRIFTLINE_POSTGRES__PORT"] = str(pg.get_exposed_port(5432))
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        os.environ["DRIFTLINE_REDIS__URL"] = f"redis://{host}:{port}/0"
        yield DriftlineSettings(environment="test")


@pytest.fixture(scope="session")
def stack() -> Iterator[DriftlineSettings]:
    mode = os.environ.get("DRIFTLINE_TEST_STACK", "local")
    if mode == "external":
        yield DriftlineSettings(environment="test")
    elif mode == "docker":
        yield from _docker_stack()
    else:
        yield _local_stack()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Random names per test, so tests never see each other's topics, groups or schemas."""

    def make(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
async def new_topic(
    stack: DriftlineSettings, unique: Callable[[str], str]
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Create a fresh topic (deleted after the test)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from driftline_core.kafka.config import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(stack.kafka))
    await admin.start()
    made: list[str] = []

    async def create(prefix: str = "t", partitions: int = 1) -> str:
        name = unique(f"test.{prefix}")
        await admin.create_topics([NewTopic(name, partitions, 1)])
        made.append(name)
        return name

    yield create
    if made:
        await admin.delete_topics(made)
    await admin.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, interval: float = 0.1
) -> None:
    """Bounded polling for an eventual outcome (never a bare sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    return eventually


class TopicReader:
    """Reads what was appended to a topic after `mark()`: for checking that what a service
    acknowledged is in Kafka, where it said."""

    def __init__(self, settings: DriftlineSettings, topic: str) -> None:
        self.settings, self.topic = settings, topic
        self.start: dict[Any, int] = {}

    async def _consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        from driftline_core.kafka.config import client_kwargs

        c = AIOKafkaConsumer(
            **client_kwargs(self.settings.kafka),
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=5000,
        )
        await c.start()
        return c

    async def mark(self) -> TopicReader:
        from aiokafka import TopicPartition

        c = await self._consumer()
        try:
            cluster = await c._client.fetch_all_metadata()
            parts = [
                TopicPartition(self.topic, p)
                for p in sorted(cluster.partitions_for_topic(self.topic) or [])
            ]
            self.start = await c.end_offsets(parts)
        finally:
            await c.stop()
        return self

    async def read(
        self, *, until: Callable[[list[Any]], bool] | None = None, timeout: float = 20.0
    ) -> list[Any]:
        """Records appended since mark(), until `until(records)` holds or the end is reached."""
        c = await self._consumer()
        records: list[Any] = []
        try:
            c.assign(list(self.start))
            for tp, off in self.start.items():
                c.seek(tp, off)
            deadline = asyncio.get_running_loop().time() + timeout
            while asyncio.get_running_loop().time() < deadline:
                batch = await c.getmany(timeout_ms=300)
                for recs in batch.values():
                    records.extend(recs)
                if until is not None and until(records):
                    break
                if until is None and not batch:
                    ends = await c.end_offsets(list(self.start))
                    positions = [await c.position(tp) for tp in self.start]
                    if all(p >= ends[tp] for p, tp in zip(positions, self.start, strict=True)):
                        break
        finally:
            await c.stop()
        return records


@pytest.fixture
def topic_reader(stack: DriftlineSettings) -> Callable[[str], Awaitable[TopicReader]]:
    async def make(topic: str) -> TopicReader:
        return await TopicReader(stack, topic).mark()

    return make


@pytest.fixture
async def superuser(stack) -> AsyncIterator[Any]:
    """The cluster's superuser over the local socket (tampering as an attacker with full
    database rights would)."""
    if os.environ.get("DRIFTLINE_TEST_STACK", "local") != "local":
        pytest.skip("needs the local stack's superuser socket")
    sock = ROOT / ".stack" / "data" / "postgres-sock"
    import asyncpg

    conn = await asyncpg.connect(
        host=str(sock), port=stack.postgres.port, user="postgres", database=stack.postgres.database
    )
    yield conn
    await conn.close()
