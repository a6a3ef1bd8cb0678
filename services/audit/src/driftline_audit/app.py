"""Wiring of the audit service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them, consumes the
audit and control topics into the trail, and signs checkpoints on a clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, operator_authenticator
from driftline_core.auth.revocations import RevocationListener
from driftline_core.crypto.ed25519 import private_key
from driftline_core.crypto.setup import Keyring, build_keyring
from driftline_core.db import Database
from driftline_core.errors import ConfigurationError
from driftline_core.events import Actor, AuditRecord, ReportEvent, Resource
from driftline_core.events.catalogue import model_for
from driftline_core.kafka import ConsumerLoop, Message, consumers_check
from driftline_core.observability.lag import LagReporter
from driftline_core.observability.metrics import AuditMetrics
from driftline_core.service import create_service_app
from driftline_core.tenants import Tenants
from driftline_core.wiring import Deps, build_deps

from .api import router
from .lifecycle import Lifecycle
from .parallel import ParallelVerifier
from .segments import VERIFY_SELECT
from .settings import DEV_SIGNING_SEED, AuditSettings
from .sources import CHECKPOINT_ACTION, VERIFY_ACTION, to_item
from .trail import Item, Trail

__all__ = ["MIGRATIONS", "SERVICE", "AuditDeps", "build", "create_app"]

SERVICE = "audit"
MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def signing_key(settings: AuditSettings) -> Ed25519PrivateKey:
    return private_key(
        settings.audit.signing_key_file, DEV_SIGNING_SEED, "DRIFTLINE_AUDIT__SIGNING_KEY_FILE"
    )


def _grants(role: str) -> Any:
    async def grant(conn: asyncpg.Connection) -> None:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            raise ConfigurationError(
                f"the audit writer role {role!r} does not exist: CREATE ROLE {role} LOGIN "
                "PASSWORD '...' (no other rights; the service grants SELECT and INSERT)"
            )
        q = '"' + role.replace('"', '""') + '"'
        await conn.execute(f"GRANT USAGE ON SCHEMA audit TO {q}")
        await conn.execute(f"GRANT SELECT, INSERT ON audit.records, audit.checkpoints TO {q}")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE ON audit.policies, audit.holds TO {q}")
        await conn.execute(f"GRANT SELECT, INSERT ON audit.archives TO {q}")
        await conn.execute(f"GRANT EXECUTE ON FUNCTION audit.purge(text, bigint) TO {q}")
        await conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit.records FROM {q}")
        await conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit.checkpoints FROM {q}")

    return grant


def _model(topic: str) -> type[Any]:
    """The catalogue's model for a Driftline topic; any other topic carries audit records."""
    try:
        return model_for(topic)
    except KeyError:
        return AuditRecord


@dataclass
class Runner:
    """Consumes into the trail and signs checkpoints every second of the clock that is due."""

    trail: Trail
    consumer: ConsumerLoop[Any]
    parallel: ParallelVerifier | None = None
    _tasks: tuple[asyncio.Task[None], ...] = ()

    async def start(self) -> None:
        if self.parallel is not None:
            await asyncio.to_thread(self.parallel.start)
        await self.consumer.start()
        self._tasks = (
            asyncio.create_task(self.consumer.run()),
            asyncio.create_task(self._clock()),
        )

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.trail.tick()
            except Exception:  # a failed checkpoint is retried on the next tick
                log.exception("checkpoint failed")

    async def stop(self) -> None:
        await self.consumer.stop()
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        with contextlib.suppress(Exception):
            await self.trail.flush()
        if self.parallel is not None:
            self.parallel.stop()


@dataclass
class AuditDeps:
    core: Deps
    keyring: Keyring
    keys: ApiKeys
    audit: AuditEmitter
    trail: Trail
    runner: Runner
    lifecycle: Lifecycle


def build(settings: AuditSettings) -> AuditDeps:
    opts = settings.audit
    core = build_deps(settings, service=SERVICE, redis=True)
    writer = settings.postgres.model_copy(
        update={"user": opts.writer_user, "password": opts.writer_password}
    )
    core.database = Database(
        settings.postgres,
        "audit",
        migrations_dir=MIGRATIONS,
        application="driftline-audit",
        pool_settings=writer,
        after_migrations=_grants(opts.writer_user),
    )
    keyring = build_keyring(settings.postgres, settings.kek, SERVICE)
    emitter = AuditEmitter(core.producer, SERVICE)

    async def announce(cp: dict[str, Any]) -> None:
        await emitter.record(
            tenant_id=cp["tenant_id"],
            actor=Actor(type="service", id="service:audit"),
            action=CHECKPOINT_ACTION,
            resource=Resource(type="audit_chain", id=f"{cp['tenant_id']}@{cp['seq']}"),
            details=cp,
        )

    parallel = ParallelVerifier(
        writer,
        "audit",
        VERIFY_SELECT,
        workers=opts.parallel_verify_workers or None,
        min_records=opts.parallel_verify_min_records,
    )
    trail = Trail(
        core.database,
        keyring.cipher,
        signing_key(settings),
        opts.signing_key_id,
        every_records=opts.checkpoint_every_records,
        every_s=opts.checkpoint_every_s,
        announce=announce,
        parallel=parallel,
    )

    async def attest(ev: ReportEvent) -> None:
        """Answer a compliance report's request: sign the tenant's head, verify its whole
        chain against its checkpoints, and publish the result for the report to quote."""
        try:
            cp = await trail.checkpoint(ev.tenant_id)
            result = await trail.verify_range(ev.tenant_id, authenticate=False)
        except Exception as e:
            log.exception("verification for a report failed")
            cp, result = None, {"ok": False, "error": f"{type(e).__name__}: {e}"}
        await emitter.record(
            tenant_id=ev.tenant_id,
            actor=Actor(type="service", id="service:audit"),
            action=VERIFY_ACTION,
            resource=Resource(type="audit_trail", id=ev.tenant_id),
            outcome="success" if result.get("ok") else "failure",
            details={**result, "report_id": str(ev.report_id), "checkpoint": cp},
        )

    attestations: set[asyncio.Task[None]] = set()

    async def handle(msgs: list[Message[Any]]) -> None:
        items: list[Item] = [i for i in map(to_item, msgs) if i is not None]
        if items:
            n = await trail.append(items)
            log.debug("audit records appended", extra={"new": n, "batch": len(items)})
        # after the append, so the request itself is inside the chain it verifies
        for m in msgs:
            if isinstance(m.value, ReportEvent) and m.value.kind == "requested":
                task = asyncio.create_task(attest(m.value))
                attestations.add(task)
                task.add_done_callback(attestations.discard)

    consumer = ConsumerLoop[Any](
        settings.kafka,
        topics=opts.topics,
        group_id=opts.group_id,
        handler=handle,
        dlq=core.producer,
        models={t: _model(t) for t in opts.topics},
        metrics=core.metrics,
        tenants=Tenants(keyring.database),  # no hash chain for a tenant never created
    )
    AuditMetrics(core.metrics.registry, trail)
    core.extra_checks.append(consumers_check(consumer.runtime))  # fails if Kafka refused
    return AuditDeps(
        core,
        keyring,
        # the keyring's pool connects as the schema owner; the writer role reads nothing else
        ApiKeys(keyring.database, settings.auth.api_key_cache_ttl_s, schema="ingestion"),
        emitter,
        trail,
        Runner(trail, consumer, parallel),
        Lifecycle(core.database, trail, Path(opts.archive_dir)),
    )


def create_app(settings: AuditSettings, deps: AuditDeps) -> FastAPI:
    assert deps.core.redis is not None
    auth = operator_authenticator(settings.auth, deps.keys, deps.audit, deps.core.redis.client)
    revocations = RevocationListener.for_service(
        settings.kafka, SERVICE, deps.core, deps.keys, deps.keyring.keyring
    )
    return create_service_app(
        title="Driftline audit",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[
            *deps.core.components(),
            deps.keyring.database,
            revocations,  # drops cached credentials on news of a revocation
            deps.runner,
            LagReporter(settings.kafka, deps.core.metrics, [settings.audit.group_id]),
        ],
        routers=[router(auth, deps.trail, deps.lifecycle, deps.audit, settings.audit.max_page)],
        startup_timeout_s=settings.startup_timeout_s,
    )
