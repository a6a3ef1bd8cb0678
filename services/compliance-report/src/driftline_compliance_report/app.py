"""Wiring of the compliance-report service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them, consumes the
audit, registry and alert topics into its evidence table, and, on the replica that holds the
leadership (decision 45), runs the report worker and the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

from driftline_core.audit import AuditEmitter
from driftline_core.auditchain import DEV_CHECKPOINT_SEED
from driftline_core.auth import ApiKeys, Principal, operator_authenticator
from driftline_core.auth.revocations import RevocationListener
from driftline_core.crypto.ed25519 import private_key, public_key
from driftline_core.crypto.setup import Keyring, build_keyring
from driftline_core.events import Actor, ReportEvent, Resource
from driftline_core.events.catalogue import model_for
from driftline_core.kafka import ConsumerLoop, Message, consumers_check
from driftline_core.leader import Leadership
from driftline_core.observability.lag import LagReporter
from driftline_core.service import create_service_app
from driftline_core.tenants import Tenants
from driftline_core.wiring import Deps, build_deps

from .api import router
from .evidence import ERASURE_ACTIONS, EvidenceStore, Fact, to_fact
from .jobs import Generator, Scheduler
from .settings import DEV_SIGNING_SEED, ReportSettings
from .store import ReportStore

__all__ = ["MIGRATIONS", "SERVICE", "ReportDeps", "build", "create_app"]

SERVICE = "compliance-report"
MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)
_ACTIONS = {
    "requested": "report.request",
    "generated": "report.generate",
    "failed": "report.fail",
    "downloaded": "report.download",
}


@dataclass
class Runner:
    """The evidence consumer, on every replica (one consumer group shares the partitions;
    `caught_up` reads the group's offsets, so any member's generator can wait on it)."""

    consumer: ConsumerLoop[Any]
    _tasks: tuple[asyncio.Task[None], ...] = ()

    async def start(self) -> None:
        await self.consumer.start()
        self._tasks = (asyncio.create_task(self.consumer.run()),)

    async def stop(self) -> None:
        await self.consumer.stop()
        await _cancel(self._tasks)


@dataclass
class Active:
    """What only the leader runs (decision 45): the generator and the scheduler. At the start
    of each term the reports left running by an earlier leader are queued again (no other
    replica can be generating while this one holds the lock)."""

    store: ReportStore
    generator: Generator
    scheduler: Scheduler
    _tasks: tuple[asyncio.Task[None], ...] = ()

    async def start(self) -> None:
        taken = await self.store.requeue_running()
        if taken:
            log.warning("reports left running by an earlier leader queued again: %s", taken)
        self._tasks = (
            asyncio.create_task(self.generator.run()),
            asyncio.create_task(self.scheduler.run()),
        )

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, ()
        await _cancel(tasks)


async def _cancel(tasks: tuple[asyncio.Task[None], ...]) -> None:
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


@dataclass
class ReportDeps:
    core: Deps
    keyring: Keyring
    keys: ApiKeys
    audit: AuditEmitter
    evidence: EvidenceStore
    store: ReportStore
    generator: Generator
    scheduler: Scheduler
    runner: Runner
    announce: Callable[..., Awaitable[None]]
    leadership: Leadership | None = None


def build(settings: ReportSettings) -> ReportDeps:
    opts = settings.reports
    core = build_deps(
        settings, service=SERVICE, schema="reports", migrations=MIGRATIONS, redis=True, influx=True
    )
    keyring = build_keyring(settings.postgres, settings.kek, SERVICE)
    emitter = AuditEmitter(core.producer, SERVICE)
    assert core.database is not None
    evidence = EvidenceStore(core.database, keyring.cipher)
    store = ReportStore(core.database, keyring.cipher)
    signing = private_key(
        opts.signing_key_file, DEV_SIGNING_SEED, "DRIFTLINE_REPORTS__SIGNING_KEY_FILE"
    )

    async def announce(
        job: dict[str, Any], kind: str, manifest: dict[str, Any] | None, actor: Actor | None = None
    ) -> None:
        """On the reports topic (which the audit service records) and as an audit record."""
        who = actor or Actor(type="service", id=f"service:{SERVICE}")
        await core.producer.send(
            ReportEvent(
                tenant_id=job["tenant_id"],
                report_id=job["id"],
                kind=kind,
                framework=job["framework"],
                period_start=job["period_start"],
                period_end=job["period_end"],
                actor=who.id,
                formats=job["formats"],
                manifest_sha256=None if manifest is None else _manifest_digest(manifest),
            )
        )
        await emitter.record(
            tenant_id=job["tenant_id"],
            actor=who,
            action=_ACTIONS[kind],
            resource=Resource(type="report", id=job["id"]),
            outcome="failure" if kind == "failed" else "success",
            details={"framework": job["framework"], "formats": job["formats"]},
        )

    generator = Generator(
        store,
        evidence,
        core.influx.reader if core.influx else None,
        keyring.keyring,
        signing,
        opts.signing_key_id,
        public_key(
            opts.audit_public_key_file,
            DEV_CHECKPOINT_SEED,
            "DRIFTLINE_REPORTS__AUDIT_PUBLIC_KEY_FILE",
        ),
        announce,
        verify_timeout_s=opts.verify_timeout_s,
        poll_s=opts.worker_poll_s,
        stale_after_s=opts.stale_after_s,
        catch_up_timeout_s=opts.catch_up_timeout_s,
    )

    async def queued(job: dict[str, Any]) -> None:
        await announce(job, "requested", None)

    scheduler = Scheduler(store, queued, opts.scheduler_tick_s)

    async def handle(msgs: list[Message[Any]]) -> None:
        facts: list[Fact] = [f for f in map(to_fact, msgs) if f is not None]
        for f in facts:
            if f.kind in ERASURE_ACTIONS or f.kind == "data_key.rotate":
                keyring.keyring.forget(f.tenant_id)  # do not wait for the key cache to expire
        if facts:
            await evidence.add(facts)

    consumer = ConsumerLoop[Any](
        settings.kafka,
        topics=opts.topics,
        group_id=opts.group_id,
        handler=handle,
        dlq=core.producer,
        models={t: model_for(t) for t in opts.topics},
        metrics=core.metrics,
        auto_offset_reset=opts.offset_reset,
        commit_start=True,
        tenants=Tenants(keyring.database),  # no data key for a tenant never created
    )
    generator.caught_up = consumer.caught_up
    core.extra_checks.append(consumers_check(consumer.runtime))  # fails if Kafka refused
    active = Active(store, generator, scheduler)
    leadership = Leadership(
        settings.postgres,
        # one leader per deployment (its replicas share the consumer group); two systems on
        # one database with their own groups (test runs) do not wait on each other
        f"reports:{opts.group_id}",
        on_acquire=active.start,
        on_release=active.stop,
        interval_s=opts.leader_interval_s,
    )
    # says which replica leads; a standby serves the API (it reads the database) all the same
    core.extra_checks.append(leadership.check(required=False))
    return ReportDeps(
        core,
        keyring,
        ApiKeys(keyring.database, settings.auth.api_key_cache_ttl_s, schema="ingestion"),
        emitter,
        evidence,
        store,
        generator,
        scheduler,
        Runner(consumer),
        announce,
        leadership,
    )


def _manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def create_app(settings: ReportSettings, deps: ReportDeps) -> FastAPI:
    assert deps.core.redis is not None
    auth = operator_authenticator(settings.auth, deps.keys, deps.audit, deps.core.redis.client)
    revocations = RevocationListener.for_service(
        settings.kafka, SERVICE, deps.core, deps.keys, deps.keyring.keyring
    )
    announce = deps.announce

    async def by_caller(who: Principal, job: dict[str, Any], kind: str) -> None:
        if kind.startswith("schedule."):
            await deps.audit.record(
                tenant_id=who.tenant_id,
                actor=who.actor(),
                action=f"report.{kind}",
                resource=Resource(type="report_schedule", id=job["schedule"]["id"]),
            )
            return
        await announce(job, kind, job.get("manifest"), who.actor())

    return create_service_app(
        title="Driftline compliance reports",
        metrics=deps.core.metrics,
        checks=deps.core.checks(),
        components=[
            *deps.core.components(),
            deps.keyring.database,
            revocations,  # drops cached credentials on news of a revocation
            deps.runner,
            # runs the generator and the scheduler while this replica is the leader
            *([deps.leadership] if deps.leadership is not None else []),
            LagReporter(settings.kafka, deps.core.metrics, [settings.reports.group_id]),
        ],
        routers=[
            router(
                auth,
                deps.store,
                by_caller,
                admin_token=settings.reports.admin_token.get_secret_value(),
                public_key=deps.generator.signing_key.public_key(),
                key_id=settings.reports.signing_key_id,
                max_period_days=settings.reports.max_period_days,
                max_page=settings.reports.max_page,
            )
        ],
        startup_timeout_s=settings.startup_timeout_s,
    )
