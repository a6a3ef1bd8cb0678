"""Metrics shared by every service, registered on a registry passed in (never the global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CoreMetrics"]


class CoreMetrics:
    """Consumer, DLQ, InfluxDB-writer and readiness metrics. A service adds its own
    metrics on the same registry."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.info = Gauge(
            "driftline_service_info", "Service identity", ["service"], registry=registry
        )
        self.info.labels(service).set(1)
        self.consumed_records = Counter(
            "driftline_consumed_records",
            "Records consumed and committed",
            ["group"],
            registry=registry,
        )
        self.dlq_records = Counter(
            "driftline_dlq_records",
            "Records sent to driftline.dlq.v1",
            ["source_topic", "error_type"],
            registry=registry,
        )
        self.retries = Counter(
            "driftline_retries",
            "Retriable failures retried with backoff",
            ["group", "what"],
            registry=registry,
        )
        self.influx_points_written = Counter(
            "driftline_influx_points_written", "Points InfluxDB acknowledged", registry=registry
        )
        self.influx_points_failed = Counter(
            "driftline_influx_points_failed",
            "Points InfluxDB refused after retries (spooled)",
            registry=registry,
        )
        self.dependency_up = Gauge(
            "driftline_dependency_up",
            "1 if the last readiness check of a dependency passed",
            ["dependency"],
            registry=registry,
        )
        self.readiness_seconds = Histogram(
            "driftline_readiness_check_seconds",
            "Time a readiness check took",
            ["dependency"],
            registry=registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5),
        )
