"""`driftline-init`: the compose file's topic + migration job (tools image).

What a one-host deployment needs before the services start, in order:

1. `DRIFTLINE_INIT_TOPICS` (docker-compose.yml names the topics) must list exactly the
   catalogue's topics (`driftline_core.events.catalogue.TOPICS`): a compose file that fell
   behind the catalogue is refused with the difference;
2. the InfluxDB database (InfluxDB 1.x `CREATE DATABASE`, idempotent; skipped with
   `DRIFTLINE_INIT_INFLUX=false`, e.g. a managed 2.x/3.x bucket made by its owner);
3. the audit writer role (`DRIFTLINE_AUDIT__WRITER_USER` / `__WRITER_PASSWORD`) when it is
   missing and the owner may create roles (a managed database's administrator makes it
   otherwise; the message says how);
4. `driftline-admin init --partitions $DRIFTLINE_INIT_PARTITIONS`: the catalogue's missing
   topics and every installed service's migrations, exactly as the Helm chart's hook job
   runs them (libs/driftline-core/src/driftline_core/admin.py).

Idempotent: a second run finds nothing to do. Dependencies are retried for
`DRIFTLINE_STARTUP_TIMEOUT_S`. Exit 0 when done; 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse
from typing import Any

import asyncpg
import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from driftline_core import admin
from driftline_core.db.pool import connect
from driftline_core.events.catalogue import TOPICS
from driftline_core.settings import DriftlineSettings

RETRIABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


def say(msg: str) -> None:
    print(f"[driftline-init] {msg}", flush=True)


async def retrying(timeout_s: float, fn: Any) -> Any:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((*RETRIABLE, httpx.TransportError)),
        wait=wait_exponential(multiplier=0.25, max=3),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    ):
        with attempt:
            return await fn()
    raise AssertionError("unreachable: reraise=True")


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
    say(f"topics: the compose file names the catalogue's {len(catalogue)} topics")


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

    await retrying(settings.startup_timeout_s, create)
    say(f"influxdb: database {settings.influx.database!r} ready")


async def audit_writer(settings: DriftlineSettings) -> None:
    from driftline_audit.settings import AuditSettings

    opts = AuditSettings().audit
    pg = settings.postgres
    conn = await retrying(
        settings.startup_timeout_s, lambda: connect(pg, "public", "driftline-init")
    )
    try:
        role = opts.writer_user
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            say(f"postgres: the audit writer role {role!r} exists")
            return
        may = await conn.fetchval(
            "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        if not may:
            raise RuntimeError(
                f"the audit writer role {role!r} is missing and {pg.user!r} may not create "
                f"roles: CREATE ROLE {role} LOGIN PASSWORD '...' as an administrator"
            )
        pw = opts.writer_password.get_secret_value().replace("'", "''")
        await conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{pw}'")
        say(f"postgres: created the audit writer role {role!r} (the audit migration grants it)")
    finally:
        await conn.close()


def main() -> int:
    try:
        check_named_topics(os.environ.get("DRIFTLINE_INIT_TOPICS"))
        settings = DriftlineSettings()
        asyncio.run(influx(settings))
        asyncio.run(audit_writer(settings))
    except Exception as e:
        print(f"[driftline-init] failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    args = ["init"]
    partitions = os.environ.get("DRIFTLINE_INIT_PARTITIONS", "").strip()
    if partitions:
        args += ["--partitions", partitions]
    say(f"driftline-admin {' '.join(args)}")
    code = admin.main(args)
    if code == 0:
        say("done")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
