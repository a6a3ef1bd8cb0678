"""Wiring of the alerting service: `build(settings)` makes its adapters (unconnected),
`create_app(settings, deps)` makes the ASGI app whose lifespan connects them."""

from __future__ import annotations

from fastapi import FastAPI

from driftline_core.service import create_service_app
from driftline_core.settings import DriftlineSettings
from driftline_core.wiring import Deps, build_deps

__all__ = ["SERVICE", "build", "create_app"]

SERVICE = "alerting"


def build(settings: DriftlineSettings) -> Deps:
    return build_deps(settings, service=SERVICE, schema="alerting", redis=True)


def create_app(settings: DriftlineSettings, deps: Deps) -> FastAPI:
    return create_service_app(
        title="Driftline alerting",
        metrics=deps.metrics,
        checks=deps.checks(),
        components=deps.components(),
        startup_timeout_s=settings.startup_timeout_s,
    )
