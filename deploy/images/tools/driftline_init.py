"""`driftline-init`: the topic + migration job of a deployment (compose's `init` service,
the Helm chart's pre-install/pre-upgrade Job).

1. creates every topic of the catalogue (`driftline_core.events.catalogue.TOPICS`) that is
   missing, with the catalogue's configs (`DRIFTLINE_INIT_PARTITIONS` overrides the
   partition count, for a small single-broker deployment). `DRIFTLINE_INIT_TOPICS`, when
   set (docker-compose.yml names them), must list exactly the catalogue's topics: a
   deployment file that fell behind the catalogue is refused with the difference;
2. creates the InfluxDB database (InfluxDB 1.x `CREATE DATABASE`; skipped when
   `DRIFTLINE_INIT_INFLUX=false`, e.g. a managed 2.x/3.x bucket made by its owner);
3. creates the audit writer role when it is missing and the owner may create roles
   (`DRIFTLINE_AUDIT__WRITER_USER` / `__WRITER_PASSWORD`);
4. applies the migrations of the keyring and of every service, in the order the services
   need them, with the audit writer's grants.

Idempotent: a second run finds nothing to do. Dependencies are retried for
`DRIFTLINE_STARTUP_TIMEOUT_S`. Exit 0 when done; 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from driftline_core.crypto.keyring import MIGRATIONS as KEYRING_MIGRATIONS
from driftline_core.crypto.keyring import SCHEMA as KEYRING_SCHEMA
from driftline_core.db.migrations import apply_migrations, load_migrations
from driftline_core.db.pool import connect
from driftline_core.events.catalogue import TOPICS
from driftline_core.kafka.admin import ensure_topics
from driftline_core.settings import DriftlineSettings

# (schema, package holding a `migrations/` folder), in the order they are applied
SERVICE_SCHEMAS = [
    ("ingestion", "driftline_ingestion"),
    ("drift", "driftline_drift_detection"),
    ("alerting", "driftline_alerting"),
    ("audit", "driftline_audit"),
    ("reports", "driftline_compliance_report"),
]
RETRIABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


def say(msg: str) -> None:
    print(f"[driftline-init] {msg}", flush=True)


def migrations_of(package: str) -> Path:
    return Path(str(importlib.resources.files(package) / "migrations"))


async def retrying(what: str, timeout_s: float, fn: Any) -> Any:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((*RETRIABLE, ConnectionError, TimeoutError)),
        wait=wait_exponential(multiplier=0.25, max=3),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    ):
        with attempt:
            return await fn()
    raise AssertionError(what)  # unreachable: reraise=True


def check_named_topics(named: str | None) -> None:
    if named is None:
        return
    listed = set(named.replace(",", " ").split())
    catalogue = {t.name for t in TOPICS}
    if listed != catalogue:
        raise RuntimeError(
            "DRIFTLINE_INIT_TOPICS does not name the catalogue's topics: "
            f"missing {sorted(catalogue - listed)}, unknown {sorted(listed - catalogue)}"
        )


async def topics(settings: DriftlineSettings) -> None:
    check_named_topics(os.environ.get("DRIFTLINE_INIT_TOPICS"))
    raw = os.environ.get("DRIFTLINE_INIT_PARTITIONS", "").strip()
    partitions = int(raw) if raw else None

    async def create() -> list[str]:
        try:
            return await ensure_topics(settings.kafka, TOPICS, partitions=partitions)
        except Exception as e:  # aiokafka raises its own errors while the broker starts
            if type(e).__module__.startswith("aiokafka"):
                raise ConnectionError(str(e)) from e
            raise

    created = await retrying("topics", settings.startup_timeout_s, create)
    say(f"topics: {len(TOPICS)} in the catalogue, {len(created)} created {sorted(created)}")


async def influx(settings: DriftlineSettings) -> None:
    if os.environ.get("DRIFTLINE_INIT_INFLUX", "true").lower() in ("0", "false", "no"):
        say("influxdb: skipped (DRIFTLINE_INIT_INFLUX=false)")
        return
    token = settings.influx.token.get_secret_value()
    headers = {"Authorization": f"Token {token}"} if token else {}
    q = f'CREATE DATABASE "{settings.influx.database}"'

    async def create() -> None:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.post(
                f"{settings.influx.url.rstrip('/')}/query",
                content=urllib.parse.urlencode({"q": q}),
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            )
        if r.status_code >= 400:
            raise RuntimeError(f"InfluxDB refused {q!r}: HTTP {r.status_code} {r.text[:200]}")

    try:
        await retrying("influx", settings.startup_timeout_s, create)
    except httpx.TransportError as e:
        raise RuntimeError(f"InfluxDB unreachable at {settings.influx.url}: {e}") from e
    say(f"influxdb: database {settings.influx.database!r} ready")


async def postgres(settings: DriftlineSettings) -> None:
    from driftline_audit.app import _grants
    from driftline_audit.settings import AuditSettings

    audit = AuditSettings().audit
    pg = settings.postgres
    conn = await retrying(
        "postgres", settings.startup_timeout_s, lambda: connect(pg, "public", "driftline-init")
    )
    try:
        role = audit.writer_user
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            may = await conn.fetchval(
                "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            if not may:
                raise RuntimeError(
                    f"the audit writer role {role!r} is missing and {pg.user!r} may not create "
                    f"roles: CREATE ROLE {role} LOGIN PASSWORD '...' as an administrator"
                )
            pw = audit.writer_password.get_secret_value().replace("'", "''")
            await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{pw}'")
            say(f"postgres: created the audit writer role {role!r}")
        plan = [(KEYRING_SCHEMA, Path(KEYRING_MIGRATIONS))]
        plan += [(schema, migrations_of(pkg)) for schema, pkg in SERVICE_SCHEMAS]
        for schema, folder in plan:
            applied = await apply_migrations(conn, schema, load_migrations(folder))
            if schema == "audit":
                await _grants(role)(conn)
            say(f"postgres: schema {schema}: {len(applied)} migration(s) applied {applied}")
    finally:
        await conn.close()


async def run() -> None:
    settings = DriftlineSettings()
    await topics(settings)
    await influx(settings)
    await postgres(settings)


def main() -> int:
    try:
        asyncio.run(run())
    except Exception as e:
        print(f"[driftline-init] failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    say("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
