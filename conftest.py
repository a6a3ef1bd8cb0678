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
    """Kafka (KRaft), PostgreSQL, Redis and InfluxDB as containers of whatever Docker API
    answers (Docker, or podman's: tests/deploy/test_testcontainers.py runs this in CI). The
    images are the compose file's official ones, or `DRIFTLINE_TEST_<KAFKA|POSTGRES|REDIS|
    INFLUX>_IMAGE` (the local stand-ins where no registry is reachable). Ports are published
    on 127.0.0.1 only; every container is removed at the end of the session."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as e:
        pytest.skip(f"DRIFTLINE_TEST_STACK=docker but no Docker engine answers: {e}")
    import contextlib
    import socket
    import time
    import urllib.request

    import asyncpg
    from testcontainers.core.container import DockerContainer

    def image(name: str, default: str) -> str:
        return os.environ.get(f"DRIFTLINE_TEST_{name}_IMAGE", default)

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def wait(what: str, ready: Callable[[], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not become ready within {timeout} s")
            time.sleep(0.25)

    def loopback(c: DockerContainer, port: int, host_port: int) -> DockerContainer:
        # published on 127.0.0.1 only (docker-py's (address, port) form; with_bind_ports
        # takes a port alone and would publish on every address)
        c.ports[f"{port}/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]
        return c

    def attempt(fn: Callable[[], object]) -> bool:
        try:
            fn()
        except Exception:
            return False
        return True

    kp, pp, rp, ip = free_port(), free_port(), free_port(), free_port()
    kafka = (
        DockerContainer(image("KAFKA", "apache/kafka:4.3.1"))
        .with_env("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw")
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{kp}")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@127.0.0.1:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
    )
    pg = (
        DockerContainer(image("POSTGRES", "postgres:16.6"))
        .with_env("POSTGRES_USER", "driftline")
        .with_env("POSTGRES_PASSWORD", "driftline-dev")
        .with_env("POSTGRES_DB", "driftline")
    )
    redis = DockerContainer(image("REDIS", "redis:7.4.2"))
    influx = DockerContainer(image("INFLUX", "influxdb:1.8.10"))
    for c, port, host_port in (
        (kafka, 9092, kp),
        (pg, 5432, pp),
        (redis, 6379, rp),
        (influx, 8086, ip),
    ):
        loopback(c, port, host_port)
    with contextlib.ExitStack() as started:
        for c in (kafka, pg, redis, influx):
            started.enter_context(c)
        dsn = f"postgresql://driftline:driftline-dev@127.0.0.1:{pp}/driftline"

        async def audit_writer() -> None:
            conn = await asyncpg.connect(dsn, timeout=3)
            try:  # as the local stack does (deploy/local/dlstack/postgres.py)
                if not await conn.fetchval(
                    "SELECT 1 FROM pg_roles WHERE rolname = 'driftline_audit'"
                ):
                    await conn.execute(
                        "CREATE ROLE driftline_audit LOGIN PASSWORD 'driftline-audit-dev'"
                    )
            finally:
                await conn.close()

        def redis_ping() -> None:
            with socket.create_connection(("127.0.0.1", rp), timeout=2) as s:
                s.sendall(b"PING\r\n")
                if not s.recv(16).startswith(b"+PONG"):
                    raise RuntimeError("no PONG")

        def influx_db() -> None:
            body = b"q=CREATE DATABASE driftline"
            urllib.request.urlopen(f"http://127.0.0.1:{ip}/query", data=body, timeout=2).close()

        async def kafka_meta() -> None:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{kp}", request_timeout_ms=3000
            )
            await admin.start()
            try:
                await admin.list_topics()
            finally:
                await admin.close()

        wait("PostgreSQL", lambda: attempt(lambda: asyncio.run(audit_writer())))
        wait("Redis", lambda: attempt(redis_ping))
        wait("InfluxDB", lambda: attempt(influx_db))
        wait("Kafka", lambda: attempt(lambda: asyncio.run(kafka_meta())))
        os.environ["DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{kp}"
        os.environ["DRIFTLINE_POSTGRES__HOST"] = "127.0.0.1"
        os.environ["DRIFTLINE_POSTGRES__PORT"] = str(pp)
        os.environ["DRIFTLINE_REDIS__URL"] = f"redis://127.0.0.1:{rp}/0"
        os.environ["DRIFTLINE_INFLUX__URL"] = f"http://127.0.0.1:{ip}"
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
