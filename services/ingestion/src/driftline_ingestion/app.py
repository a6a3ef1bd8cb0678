"""Wiring of the ingestion service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them."""

from __future__ import annotations

from pathlib import Path

from driftline_core.service import create_service_app
from driftline_core.settings import DriftlineSettings
from driftline_core.wiring import Deps, build_deps
from fastapi import FastAPI

__all__ = ["SERVICE", "build", "create_app"]

SERVICE = "ingestion"
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: DriftlineSettings) -> Deps:
    return build_deps(
        settings, service=SERVICE, schema="ingestion", migrations=MIGRATIONS, redis=True
    )


def create_app(settings: DriftlineSettings, deps: Deps) -> FastAPI:
    return create_service_app(
        title="Driftline ingestion",
        metrics=deps.metrics,
        checks=deps.checks(),
        components=deps.components(),
        startup_timeout_s=settings.startup_timeout_s,
    )
