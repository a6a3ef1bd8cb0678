"""The whole system for end-to-end tests: every service as its own process, started as
`make demo` starts it (`deploy/local/dlstack/services.py`: the installed `driftline-<name>`
executable, `DRIFTLINE_HTTP__PORT`, `DRIFTLINE_SERVICE_NAME`, the idle close), on free ports,
against real servers, and isolated from anything else that runs on the machine.

Isolation (docs/decisions.md, 25): topic names are fixed by the catalogue, and every service
reads every tenant's records, so two copies of the services on one broker would both act on
each other's tenants (two alerting services notifying one webhook, two audit services
appending one chain). A run therefore gets its own Kafka broker (the local stack's launcher
with a private stack folder and free ports), its own PostgreSQL database and InfluxDB
database on the shared servers, its own Redis database number, and its own consumer group
ids (`DRIFTLINE_*__GROUP_ID`). Everything it made is removed when it stops.

With `DRIFTLINE_TEST_STACK=external` (or `DRIFTLINE_E2E_KAFKA=shared`) the configured broker
is used as it is (`DRIFTLINE_E2E_KAFKA=private` starts one anyway); the group ids and
databases are still the run's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftline import AsyncClient, KafkaLogger
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import DriftlineSettings, KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from demo_alerts import Attempt, Receiver  # noqa: E402  (deploy/local: the demo's receiver)

__all__ = [
    "SERVICES",
    "Attempt",
    "PrivateKafka",
    "PrivateServer",
    "Receiver",
    "ServiceProcess",
    "System",
    "Tenant",
    "TopicLog",
    "free_port",
    "poll",
    "to_csv",
    "unique_by_id",
]

SERVICES = ("ingestion", "drift-detection", "alerting", "audit", "compliance-report")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def poll(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "the condition",
) -> T:
    """Bounded polling: the first truthy value `check()` returns, or AssertionError naming
    `what` (with the last value seen) after `timeout` seconds. Never a bare sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f} s (last: {last!r})")
        await asyncio.sleep(interval)


# --- a broker of the run's own ------------------------------------------------------------


class PrivateKafka:
    """A single-node KRaft broker started by the local stack's launcher in its own stack
    folder (`DRIFTLINE_STACK_DIR`), on free ports, sharing only the download cache."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "stack"
        self.port = free_port()
        self.env = {
            "DRIFTLINE_STACK_DIR": str(self.dir),
            "DRIFTLINE_CACHE_DIR": os.environ.get(
                "DRIFTLINE_CACHE_DIR", str(ROOT / ".stack" / "cache")
            ),
            "DRIFTLINE_STACK_KAFKA_PORT": str(self.port),
            "DRIFTLINE_STACK_KAFKA_CONTROLLER_PORT": str(free_port()),
            "DRIFTLINE_STACK_KAFKA_TLS_PORT": str(free_port()),
            "DRIFTLINE_STACK_KAFKA_HEAP": os.environ.get("DRIFTLINE_STACK_KAFKA_HEAP", "512m"),
        }
        self.last_restart: dict[str, float] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _stack(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "local" / "stack.py"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def start(self) -> PrivateKafka:
        out = self._stack("start", "kafka")
        if out.returncode != 0:
            raise RuntimeError(f"the private broker did not start:\n{out.stdout}\n{out.stderr}")
        return self

    def restart(self) -> None:
        """Stop the broker and start it again on the same ports and data (fault tests); how
        long each half took is in `last_restart` (seconds)."""
        t0 = time.monotonic()
        self._stack("stop", "kafka")
        t1 = time.monotonic()
        self.start()
        self.last_restart = {"stop_s": t1 - t0, "start_s": time.monotonic() - t1}

    def stop(self) -> None:
        self._stack("stop", "kafka")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateServer:
    """One data server of the local stack (redis, influxdb, postgres) started by the launcher
    in a stack folder of the run's own, on free ports, so a fault test can stop it and start
    it again (`stop(keep=True)`, `start`) without touching the shared one.

    PostgreSQL runs as the `postgres` user when the tests run as root (the launcher's
    `as_owner`): its folder is made under the checkout's `.stack/private` (pytest's tmp
    folders are private to root), readable by that user, and removed at `stop(keep=False)`."""

    PORTS = {
        "redis": ("redis",),
        "influxdb": ("influxdb", "influxdb_rpc"),
        "postgres": ("postgres",),
    }

    def __init__(self, workdir: Path, name: str) -> None:
        self.name = name
        self.dir = workdir / f"stack-{name}"
        if name == "postgres":
            base = ROOT / ".stack" / "private"
            base.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix="postgres-", dir=base))
            self.dir.chmod(0o755)
        self.ports = {p: free_port() for p in self.PORTS[name]}
        self.env = {
            "DRIFTLINE_STACK_DIR": str(self.dir),
            "DRIFTLINE_CACHE_DIR": os.environ.get(
                "DRIFTLINE_CACHE_DIR", str(ROOT / ".stack" / "cache")
            ),
            **{f"DRIFTLINE_STACK_{p.upper()}_PORT": str(v) for p, v in self.ports.items()},
        }

    @property
    def port(self) -> int:
        return self.ports[self.name]

    def _stack(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "local" / "stack.py"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def start(self) -> PrivateServer:
        out = self._stack("start", self.name)
        if out.returncode != 0:
            raise RuntimeError(f"private {self.name} did not start:\n{out.stdout}\n{out.stderr}")
        return self

    def stop(self, *, keep: bool = True) -> None:
        self._stack("stop", self.name)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- the services -------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    replica: int = 0  # 0: the service's first process; n: its (n+1)th replica

    @property
    def key(self) -> str:
        """Its name in `System.services`: the service's name, `name#n` for a replica."""
        return self.name if self.replica == 0 else f"{self.name}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _executable(name: str) -> str:
    exe = Path(sys.executable).with_name(f"driftline-{name}")
    found = str(exe) if exe.exists() else shutil.which(f"driftline-{name}")
    if not found:
        raise RuntimeError(f"driftline-{name} is not installed in this environment")
    return found


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class System:
    """Every Driftline service as a process, on the run's own broker and databases.

    `env` is added to every service's environment (a fault or dashboard test's overrides);
    `idle_close_s` is drift detection's `DRIFTLINE_DRIFT__IDLE_CLOSE_S`."""

    settings: DriftlineSettings
    workdir: Path
    idle_close_s: float = 4.0
    env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    kafka: PrivateKafka | None = None
    bootstrap: str = ""
    # data servers of the run's own (fault tests stop them): "redis", "influxdb", "postgres"
    private_servers: tuple[str, ...] = ()
    servers: dict[str, PrivateServer] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"e2e_{self.run_id}"

    @property
    def influx_database(self) -> str:
        return f"e2e_{self.run_id}"

    @property
    def kafka_settings(self) -> KafkaSettings:
        return self.settings.kafka.model_copy(update={"bootstrap_servers": self.bootstrap})

    def url(self, name: str) -> str:
        return self.services[name].url

    def service_env(self) -> dict[str, str]:
        redis_db = int(os.environ.get("DRIFTLINE_E2E_REDIS_DB", "7"))
        return {
            "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "DRIFTLINE_POSTGRES__DATABASE": self.database,
            "DRIFTLINE_INFLUX__DATABASE": self.influx_database,
            "DRIFTLINE_INFLUX__SPOOL_DIR": str(self.workdir / "spool"),
            "DRIFTLINE_REDIS__URL": _redis_db(self.settings.redis.url, redis_db),
            "DRIFTLINE_DRIFT__GROUP_ID": f"e2e-{self.run_id}-drift",
            "DRIFTLINE_ALERTING__GROUP_ID": f"e2e-{self.run_id}-alerting",
            "DRIFTLINE_AUDIT__GROUP_ID": f"e2e-{self.run_id}-audit",
            "DRIFTLINE_REPORTS__GROUP_ID": f"e2e-{self.run_id}-reports",
            "DRIFTLINE_AUDIT__ARCHIVE_DIR": str(self.workdir / "archive"),
            "DRIFTLINE_DRIFT__IDLE_CLOSE_S": str(self.idle_close_s),
            "DRIFTLINE_LOG_JSON": "true",
            **self.env,
        }

    async def start(self, timeout: float = 120.0) -> System:
        self.workdir.mkdir(parents=True, exist_ok=True)
        local = os.environ.get("DRIFTLINE_TEST_STACK", "local") == "local"
        private = os.environ.get("DRIFTLINE_E2E_KAFKA", "private" if local else "shared")
        if private == "private":
            self.kafka = await asyncio.to_thread(PrivateKafka(self.workdir).start)
            self.bootstrap = self.kafka.bootstrap
        else:
            self.bootstrap = self.settings.kafka.bootstrap_servers
        await asyncio.to_thread(self._start_private_servers)
        conn = await asyncpg.connect(self.settings.postgres.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()
        async with httpx.AsyncClient(base_url=self.settings.influx.url, timeout=10) as c:
            q = f'CREATE DATABASE "{self.influx_database}"'
            (await c.post("/query", data={"q": q})).raise_for_status()
        for name in SERVICES:
            self._spawn(ServiceProcess(name, free_port(), self.workdir / f"{name}.log"))
        for s in self.services.values():
            await self.wait_ready(s.name, timeout)
        return self

    def _start_private_servers(self) -> None:
        for name in self.private_servers:
            srv = self.servers[name] = PrivateServer(self.workdir, name).start()
            if name == "redis":
                url = f"redis://127.0.0.1:{srv.port}/0"
                self.settings = self.settings.model_copy(
                    update={"redis": self.settings.redis.model_copy(update={"url": url})}
                )
            elif name == "influxdb":
                url = f"http://127.0.0.1:{srv.port}"
                self.settings = self.settings.model_copy(
                    update={"influx": self.settings.influx.model_copy(update={"url": url})}
                )
                self.env.setdefault("DRIFTLINE_INFLUX__URL", url)
            elif name == "postgres":
                pg = self.settings.postgres.model_copy(
                    update={"host": "127.0.0.1", "port": srv.port}
                )
                self.settings = self.settings.model_copy(update={"postgres": pg})
                self.env.setdefault("DRIFTLINE_POSTGRES__HOST", "127.0.0.1")
                self.env.setdefault("DRIFTLINE_POSTGRES__PORT", str(srv.port))

    def _spawn(self, s: ServiceProcess) -> None:
        env = {**os.environ, **self.service_env()}
        with open(s.log, "ab") as out:
            s.proc = subprocess.Popen(
                [_executable(s.name)],
                env={**env, "DRIFTLINE_HTTP__PORT": str(s.port), "DRIFTLINE_SERVICE_NAME": s.name},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its workers stop with it (by process group)
            )
        self.services[s.key] = s

    async def wait_ready(self, name: str, timeout: float = 120.0) -> None:
        """Until the service's /readyz answers 200; RuntimeError with its log's tail if it
        exits or does not get ready in time."""
        s = self.services[name]

        async def ready() -> bool:
            assert s.proc is not None
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} exited {s.proc.returncode}:\n{s.tail()}")
            try:
                async with httpx.AsyncClient(timeout=3) as http:
                    return (await http.get(f"{s.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        try:
            await poll(ready, timeout=timeout, what=f"{s.name} /readyz")
        except AssertionError as e:
            raise RuntimeError(f"{e}\n{s.tail()}") from e

    async def restart_service(self, name: str, *, kill: bool = False) -> None:
        """Stop a service (SIGTERM, or SIGKILL with `kill`) and start it again on the same
        port, with the same settings; returns once it is ready."""
        s = self.services[name]
        if kill and s.proc is not None and s.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait(10)
        await asyncio.to_thread(self.stop_service, name)
        self._spawn(s)
        await self.wait_ready(name)

    # --- replicas and faults (tests/faults, decision 39) -----------------------------------

    async def add_replica(self, name: str, *, ready: bool = True) -> str:
        """Another process of service `name` with the same settings, on its own port; its key
        in `services` (`name#n`). With `ready=False` it only waits for /healthz (a standby
        answers /readyz 503 with only its `leader` check failing)."""
        n = 1 + max(p.replica for p in self.services.values() if p.name == name)
        s = ServiceProcess(name, free_port(), self.workdir / f"{name}-{n}.log", replica=n)
        self._spawn(s)
        if ready:
            await self.wait_ready(s.key)
        else:
            await self.wait_standby(s.key)
        return s.key

    def replicas(self, name: str) -> list[str]:
        return [k for k, p in self.services.items() if p.name == name]

    async def readiness(self, key: str) -> dict[str, Any] | None:
        """The /readyz body of a process (None if it does not answer)."""
        try:
            async with httpx.AsyncClient(timeout=3) as http:
                r = await http.get(f"{self.services[key].url}/readyz")
                out: dict[str, Any] = r.json()
                return out
        except (httpx.TransportError, ValueError):
            return None

    async def wait_standby(self, key: str, timeout: float = 120.0) -> None:
        """Until the process answers /readyz with every check ok but possibly `leader`."""
        s = self.services[key]

        async def up() -> bool:
            assert s.proc is not None
            if s.proc.poll() is not None:
                raise RuntimeError(f"{key} exited {s.proc.returncode}:\n{s.tail()}")
            body = await self.readiness(key)
            checks = (body or {}).get("checks") or {}
            return bool(checks) and all(v == "ok" for c, v in checks.items() if c != "leader")

        await poll(up, timeout=timeout, what=f"{key} up (standby or ready)")

    async def leaders(self, name: str) -> list[str]:
        """The keys of the processes of `name` whose /readyz is 200 (for an active/standby
        service: the leader)."""
        out = []
        for k in self.replicas(name):
            body = await self.readiness(k)
            checks = (body or {}).get("checks") or {}
            if checks and all(v == "ok" for v in checks.values()):
                out.append(k)
        return out

    def kill(self, key: str) -> None:
        """kill -9 of the process group, no restart (see `respawn`)."""
        s = self.services[key]
        if s.proc is not None and s.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait(10)

    def respawn(self, key: str) -> None:
        """Start a stopped or killed process again with its port and settings."""
        self._spawn(self.services[key])

    def stop_service(self, name: str, timeout: float = 20.0) -> int | None:
        """SIGTERM the service's process group, SIGKILL what is left; its exit code."""
        s = self.services[name]
        if s.proc is None or s.proc.poll() is not None:
            return s.proc.returncode if s.proc else None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(s.proc.pid, signal.SIGTERM)
        try:
            return s.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            return s.proc.wait(5)

    async def stop(self) -> None:
        for name in reversed(list(self.services)):
            await asyncio.to_thread(self.stop_service, name)
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(self.settings.postgres.dsn())
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()
        with contextlib.suppress(Exception):
            async with httpx.AsyncClient(base_url=self.settings.influx.url, timeout=10) as c:
                await c.post("/query", data={"q": f'DROP DATABASE "{self.influx_database}"'})
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.stop)
        for srv in self.servers.values():
            await asyncio.to_thread(lambda x=srv: x.stop(keep=False))

    # --- reading what the system published ------------------------------------------------

    def topic(self, name: str) -> TopicLog:
        return TopicLog(self.kafka_settings, name)

    async def influx(self, query: str) -> list[dict[str, Any]]:
        """InfluxQL on the run's database; rows as dicts (time in epoch ms)."""
        async with httpx.AsyncClient(base_url=self.settings.influx.url, timeout=10) as c:
            r = await c.get(
                "/query", params={"db": self.influx_database, "q": query, "epoch": "ms"}
            )
            r.raise_for_status()
        rows: list[dict[str, Any]] = []
        for result in r.json().get("results", []):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series["values"]:
                    rows.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return rows


class TopicLog:
    """Every record of a topic from its beginning, decoded as JSON, read with no consumer
    group (so reading changes nothing)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings, self.topic = settings, topic

    async def read(
        self,
        *,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        until: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """The records `where` keeps: until `until(records)` holds, or without `until`, up
        to the topic's end as it is now; at most `timeout` seconds, then what was read."""
        c = AIOKafkaConsumer(
            **client_kwargs(self.settings),
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=5000,
        )
        await c.start()
        out: list[dict[str, Any]] = []
        try:
            cluster = await c._client.fetch_all_metadata()
            parts = [
                TopicPartition(self.topic, p)
                for p in sorted(cluster.partitions_for_topic(self.topic) or [])
            ]
            c.assign(parts)
            await c.seek_to_beginning(*parts)
            ends = await c.end_offsets(parts)
            deadline = time.monotonic() + timeout
            while True:
                batch = await c.getmany(timeout_ms=300)
                for records in batch.values():
                    for r in records:
                        try:
                            value = orjson.loads(r.value)
                        except orjson.JSONDecodeError:
                            continue
                        if isinstance(value, dict) and where(value):
                            out.append(value)
                if until is not None:
                    if until(out):
                        return out
                elif all([await c.position(tp) >= ends[tp] for tp in parts]):
                    return out
                if time.monotonic() > deadline:
                    return out  # the caller's assertions say what is missing
        finally:
            await c.stop()


def unique_by_id(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records once per event id (a result republished after a restart has the same id)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in records:
        seen.setdefault(str(r.get("event_id")), r)
    return list(seen.values())


# --- a tenant's view of the system --------------------------------------------------------


@dataclass
class Tenant:
    """One tenant of a running System, through the public APIs and the Kafka SDK."""

    system: System
    tenant_id: str
    api_key: str

    @classmethod
    async def create(cls, system: System, prefix: str = "e2e") -> Tenant:
        token = os.environ.get("DRIFTLINE_INGESTION__ADMIN_TOKEN", "driftline-dev-admin")
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        async with AsyncClient(system.url("ingestion"), admin_token=token) as c:
            out = await c.create_tenant(tenant_id, f"end-to-end test {tenant_id}")
        return cls(system, out["tenant_id"], out["api_key"])

    def client(self) -> AsyncClient:
        return AsyncClient(self.system.url("ingestion"), self.api_key)

    def http(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.system.url(service),
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )

    async def register(
        self, spec: dict[str, Any], reference: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Register a model and, when given, upload its reference rows at once."""
        async with self.client() as c:
            out: dict[str, Any] = await c.register_model(spec)
        if reference is not None:
            out = await self.upload_reference(spec["id"], reference)
        return out

    async def upload_reference(self, model_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Reference rows as CSV; the upload's answer (version, rows profiled)."""
        async with self.client() as c:
            out: dict[str, Any] = await c.request(
                "POST",
                f"/v1/models/{model_id}/reference",
                content=to_csv(rows),
                headers={"Content-Type": "text/csv"},
            )
        return out

    async def add_version(self, model_id: str, version: str) -> dict[str, Any]:
        digest = hashlib.sha256(f"{model_id}:{version}".encode()).hexdigest()
        async with self.client() as c:
            out: dict[str, Any] = await c.add_version(
                model_id,
                {
                    "version": version,
                    "artifact_uri": f"s3://e2e/{model_id}/{version}",
                    "artifact_sha256": digest,
                },
            )
        return out

    async def log_http(
        self, model_id: str, version: str, events: list[dict[str, Any]]
    ) -> list[str]:
        """Predictions over HTTP (the SDK's client); the event ids the service accepted."""
        async with self.client() as c:
            report = await c.log_predictions(model_id, version, events)
        if report.rejected:
            raise AssertionError(f"ingestion rejected events: {report.rejected[:3]}")
        return list(dict.fromkeys(report.event_ids))

    async def log_kafka(
        self, model_id: str, version: str, events: list[dict[str, Any]]
    ) -> list[str]:
        """Predictions straight to Kafka (`driftline.KafkaLogger`); the ids the broker
        acknowledged."""
        async with KafkaLogger(self.tenant_id, self.system.kafka_settings) as k:
            await k.log_predictions(model_id, version, events)
        return [str(e["event_id"]) for e in events]

    async def log_actuals(self, model_id: str, labels: list[dict[str, Any]]) -> list[str]:
        async with self.client() as c:
            report = await c.log_actuals(model_id, labels)
        if report.rejected:
            raise AssertionError(f"ingestion rejected labels: {report.rejected[:3]}")
        return list(dict.fromkeys(report.event_ids))

    async def put_alerting(self, config: dict[str, Any], rules: list[dict[str, Any]]) -> None:
        async with self.http("alerting") as c:
            for rule in rules:
                (await c.post("/v1/alert-rules", json=rule)).raise_for_status()
            (await c.put("/v1/alerting/config", json=config)).raise_for_status()

    async def audit_records(self) -> list[dict[str, Any]]:
        """The tenant's whole trail (every page), payloads decrypted."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        async with self.http("audit") as c:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = await c.get("/v1/audit/records", params=params)
                r.raise_for_status()
                body = r.json()
                out += body["items"]
                cursor = body["next_cursor"]
                if not cursor:
                    return out

    async def audit_verify(self) -> dict[str, Any]:
        async with self.http("audit") as c:
            r = await c.get("/v1/audit/verify")
            r.raise_for_status()
            out: dict[str, Any] = r.json()
            return out

    async def report(
        self,
        framework: str,
        start: datetime,
        end: datetime,
        *,
        model_id: str | None = None,
        formats: tuple[str, ...] = ("json",),
        timeout: float = 180.0,
    ) -> dict[str, Any]:
        """Generate a compliance report and return its document (report.json)."""
        body: dict[str, Any] = {
            "framework": framework,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "formats": list(formats),
        }
        if model_id is not None:
            body["model_id"] = model_id
        async with self.http("compliance-report") as c:
            r = await c.post("/v1/reports", json=body)
            r.raise_for_status()
            rid = r.json()["id"]

            async def finished() -> dict[str, Any] | None:
                job: dict[str, Any] = (await c.get(f"/v1/reports/{rid}")).json()
                return job if job["status"] in ("done", "failed") else None

            job = await poll(finished, timeout=timeout, interval=0.5, what=f"report {rid}")
            if job["status"] != "done":
                raise AssertionError(f"report {rid} failed: {job.get('error') or job}")
            bundle = (await c.get(f"/v1/reports/{rid}/bundle")).content
        with zipfile.ZipFile(io.BytesIO(bundle)) as z:
            doc: dict[str, Any] = orjson.loads(z.read("report.json"))
        return doc


def _cell(v: Any) -> Any:
    return "" if v is None else str(v).lower() if isinstance(v, bool) else v


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue().encode()
