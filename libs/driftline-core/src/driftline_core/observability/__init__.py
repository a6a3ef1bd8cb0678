"""Structured JSON logs, Prometheus metrics and the /healthz, /readyz, /metrics routes."""

from .health import Check, ops_router
from .logging import configure_logging
from .metrics import CoreMetrics

__all__ = ["Check", "CoreMetrics", "configure_logging", "ops_router"]
