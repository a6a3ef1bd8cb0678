"""Wiring of the ingestion service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from driftline_core.audit import AuditEmitter
from driftline_core.auth import ApiKeys, Authenticator, Sessions, TokenService
from driftline_core.auth.revocations import RevocationListener, RevocationPublisher
from driftline_core.crypto.setup import Keyring, build_keyring
from driftline_core.db.outbox import Outbox
from driftline_core.influx import InfluxWriter
from driftline_core.influx.live import IntakeObserver, LiveSeries
from driftline_core.observability.metrics import IngestionMetrics
from driftline_core.service import create_service_app
from driftline_core.wiring import Deps, build_deps

from .api import auth_router, events_router, models_router
from .cloudevents import CloudEventJoins, cloudevents_router
from .http import install_error_handlers
from .identity import Identity
from .intake import Intake
from .mfa_policy import RequiredMfa, required_mfa_router
from .oidc import OidcClient, SsoLogin, oidc_router
from .operators import operators_router
from .ratelimit import RateLimiter
from .registry import Registry
from .settings import IngestionSettings

__all__ = ["SERVICE", "IngestionDeps", "build", "create_app"]

SERVICE = "ingestion"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class IngestionDeps:
    core: Deps
    keyring: Keyring
    outbox: Outbox
    keys: ApiKeys
    registry: Registry


def build(settings: IngestionSettings) -> IngestionDeps:
    core = build_deps(
        settings, service=SERVICE, schema="ingestion", migrations=MIGRATIONS, redis=True
    )
    assert core.database is not None
    opts = settings.ingestion
    outbox = Outbox(core.database, core.producer)
    return IngestionDeps(
        core=core,
        keyring=build_keyring(settings.postgres, settings.kek, SERVICE),
        outbox=outbox,
        keys=ApiKeys(core.database, settings.auth.api_key_cache_ttl_s),
        registry=Registry(core.database, outbox, opts.schema_cache_ttl_s),
    )


def create_app(settings: IngestionSettings, deps: IngestionDeps) -> FastAPI:
    core, opts = deps.core, settings.ingestion
    assert core.redis is not None
    assert core.database is not None
    audit = AuditEmitter(core.producer, SERVICE)
    redis = core.redis.client
    tokens = TokenService(settings.auth)
    sessions = Sessions(redis, settings.auth.refresh_ttl_s)
    # revocations made here are pushed to every process; those made elsewhere arrive here
    sessions.revocations = deps.keys.revocations = RevocationPublisher(core.producer, SERVICE)
    revocations = RevocationListener.for_service(
        settings.kafka, SERVICE, core, deps.keys, deps.keyring.keyring
    )
    auth = Authenticator(deps.keys, audit, tokens, sessions)
    identity = Identity(
        core.database,
        redis,
        deps.keyring.cipher,
        deps.keyring.keyring,
        sessions,
        tokens,
        audit,
        settings.auth,
        keys=deps.keys,
    )
    required_mfa = RequiredMfa(settings.mfa, identity, redis, audit)
    identity.mfa_gate = required_mfa.check
    oidc = OidcClient(settings.oidc) if settings.oidc.enabled else None
    sso = (
        SsoLogin(oidc, identity, core.database, redis, audit, settings.mfa, core.metrics.registry)
        if oidc is not None
        else None
    )
    limiter = RateLimiter(redis, opts.rate_per_s, opts.burst)
    # live series: own spool, so ingestion and drift detection never share a spool file
    influx = settings.influx.model_copy(update={"spool_dir": f"{settings.influx.spool_dir}/live"})
    live = LiveSeries(InfluxWriter(influx, core.metrics))
    core.metrics.watch_spool(live.writer.spool_path)
    intake = Intake(
        registry=deps.registry,
        producer=core.producer,
        redis=redis,
        cipher=deps.keyring.cipher,
        dedup_ttl_s=opts.dedup_ttl_s,
        kafka_timeout_s=opts.kafka_timeout_s,
        pending_ttl_s=opts.pending_ttl_s,
        batch_records=opts.batch_records,
        limits=opts.size_limits(),
        observer=IntakeObserver(IngestionMetrics(core.metrics.registry), live),
    )
    # CloudEvent halves waiting for their mate; the expired ones are swept to the DLQ
    joins = CloudEventJoins(redis, core.producer, core.metrics.registry, opts.cloudevent_join_ttl_s)
    app = create_service_app(
        title="Driftline ingestion",
        metrics=core.metrics,
        checks=core.checks(),
        components=[
            *core.components(),
            deps.keyring.database,
            deps.outbox,
            live,
            joins,
            *([oidc] if oidc is not None else []),
            revocations,
        ],
        routers=[
            events_router(auth, intake, limiter, opts),
            cloudevents_router(auth, intake, deps.registry, joins, limiter, opts.max_body_bytes),
            auth_router(auth, deps.keys, audit, opts),
            operators_router(auth, identity, deps.keyring.keyring, audit, opts),
            oidc_router(sso),
            required_mfa_router(required_mfa),
            models_router(auth, deps.registry, settings.kafka, opts.max_reference_bytes),
        ],
        startup_timeout_s=settings.startup_timeout_s,
    )
    install_error_handlers(app)
    return app
