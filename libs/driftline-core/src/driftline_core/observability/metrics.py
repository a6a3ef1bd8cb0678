"""Prometheus metrics of the platform itself, registered on a registry passed in (never the
global). `CoreMetrics` is what every service shares (HTTP, consumers, DLQ, InfluxDB writer,
readiness, build info); `IngestionMetrics`, `DriftMetrics`, `AlertingMetrics` and
`AuditMetrics` are a service's own, on the same registry.

Names follow the Prometheus conventions: `driftline_` prefix, base units (seconds, bytes),
counters end in `_total` (prometheus_client appends it). No label takes unbounded values:
routes are templates, reasons are classes, receivers are receiver types
(docs/metrics.md lists every metric and its labels)."""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "HTTP_BUCKETS",
    "AlertingMetrics",
    "AuditMetrics",
    "CoreMetrics",
    "DriftMetrics",
    "IngestionMetrics",
    "integration_type",
    "rejection_reason",
]

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _version() -> str:
    try:
        return metadata.version("driftline-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - always installed in the venv
        return "unknown"


class CoreMetrics:
    """Consumer, DLQ, InfluxDB-writer, readiness, HTTP and build metrics. A service adds
    its own metrics on the same registry."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.info = Gauge(
            "driftline_service_info", "Service identity", ["service"], registry=registry
        )
        self.info.labels(service).set(1)
        self.build_info = Gauge(
            "driftline_build_info",
            "Always 1; the labels say which build runs",
            ["service", "version", "python"],
            registry=registry,
        )
        self.build_info.labels(service, _version(), platform.python_version()).set(1)
        self.http_requests = Counter(
            "driftline_http_requests",
            "HTTP requests answered, by route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "driftline_http_request_duration_seconds",
            "Time from request to the end of the response, by route template and status code",
            ["method", "route", "status"],
            registry=registry,
            buckets=HTTP_BUCKETS,
        )
        self.consumed_records = Counter(
            "driftline_consumed_records",
            "Records consumed and committed",
            ["group"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "driftline_consumer_lag_records",
            "Records in a partition the group has not committed yet (end offset - committed)",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.dlq_records = Counter(
            "driftline_dlq_records",
            "Records sent to driftline.dlq.v1 (acknowledged), by source topic and reason class",
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
        self.influx_spool_bytes = Gauge(
            "driftline_influx_spool_bytes",
            "Size of the spool of points InfluxDB refused, waiting for replay",
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
        self.consumer_failures = Counter(
            "driftline_consumer_failures",
            "Failed batches and rebalance callbacks (each followed by a seek back to the last"
            " commit or checkpoint); where = batch, assigned, revoked, fatal",
            ["group", "where", "error_type"],
            registry=registry,
        )
        self.http_unhandled = Counter(
            "driftline_http_unhandled_errors",
            "Requests answered by the last-resort problem-details 500 (an error no route"
            " turned into a 4xx or 503): the fuzz tests require none",
            ["route", "error_type"],
            registry=registry,
        )

    def watch_spool(self, path: Path) -> None:
        """Report the spool files' size at every scrape (the sum over every writer's spool
        watched: drift detection has two writers, each with its own)."""
        paths: list[Path] = self.__dict__.setdefault("_spools", [])
        paths.append(path)
        self.influx_spool_bytes.set_function(
            lambda: sum(p.stat().st_size for p in paths if p.exists())
        )

    def dead_letters_sent(self, values: Iterable[bytes]) -> None:
        """Count encoded DeadLetter records the broker acknowledged (EventProducer calls
        this for every write to driftline.dlq.v1, whoever writes)."""
        for v in values:
            try:
                d = orjson.loads(v)
                topic, kind = str(d.get("source_topic") or ""), str(d.get("error_type") or "")
            except (orjson.JSONDecodeError, AttributeError):
                topic, kind = "", "unparsable"
            self.dlq_records.labels(topic, kind or "unknown").inc()


_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^duplicate event_id"), "duplicate"),
    (re.compile(r"^unknown model"), "unknown_model"),
    (re.compile(r"^missing feature"), "missing_feature"),
    (re.compile(r"^unknown feature"), "unknown_feature"),
    (re.compile(r"may not be null$"), "null_feature"),
    (re.compile(r"is outside \["), "out_of_range"),
    (re.compile(r"not one of the allowed categories"), "unknown_category"),
    (re.compile(r"^feature '.*': expected"), "wrong_type"),
    (re.compile(r"must be a JSON object"), "not_an_object"),
]


def rejection_reason(reason: str) -> str:
    """A bounded class for an ingestion rejection's free-text reason (a metric label)."""
    for pattern, name in _REASONS:
        if pattern.search(reason):
            return name
    return "invalid"


class IngestionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "driftline_events_accepted",
            "Events the broker acknowledged, by kind (prediction, actual)",
            ["kind"],
            registry=registry,
        )
        self.rejected = Counter(
            "driftline_events_rejected",
            "Events refused at ingestion (each also goes to the DLQ), by kind and reason class",
            ["kind", "reason"],
            registry=registry,
        )

        self.last_event = Gauge(
            "driftline_model_last_event_timestamp_seconds",
            "When ingestion last accepted a prediction of a model (Unix time); drift "
            "detection exports the same gauge with source=kafka for Kafka-native records",
            ["tenant", "model", "source"],
            registry=registry,
        )

    def intake(self, kind: str, accepted: int, rejected: Iterable[dict[str, object]]) -> None:
        if accepted:
            self.accepted.labels(kind).inc(accepted)
        for r in rejected:
            self.rejected.labels(kind, rejection_reason(str(r.get("reason", "")))).inc()


class _Callback(Collector):
    """Counters read from a component's own tallies at scrape time (no increments to add
    in the hot path)."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: list[str],
        read: Callable[[], dict[Any, float]],
    ) -> None:
        self.name, self.doc, self.labelnames, self.read = name, doc, labels, read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, value in self.read().items():
            family.add_metric(list(labels), value)
        yield family


class DriftMetrics:
    """Counters of the drift-detection service, read from its processors' tallies: the
    predictions counted into windows, windows closed (drift, performance), events too late,
    labels joined and unmatched, concept drifts."""

    def __init__(self, registry: CollectorRegistry, processor: Any, performance: Any) -> None:
        def tally(obj: Any, name: str) -> float:
            return float(getattr(obj, name, 0))

        for name, doc, labels, read in (
            (
                "driftline_predictions_processed",
                "Prediction events counted into drift windows",
                [],
                lambda: {(): tally(processor, "events_counted")},
            ),
            (
                "driftline_windows_closed",
                "Windows closed and published, by kind (drift, performance)",
                ["kind"],
                lambda: {
                    ("drift",): tally(processor, "windows_closed"),
                    ("performance",): tally(performance, "windows_closed"),
                },
            ),
            (
                "driftline_events_too_late",
                "Events for a window that had closed already (not counted)",
                [],
                lambda: {(): tally(getattr(processor, "manager", None), "too_late")},
            ),
            (
                "driftline_labels_joined",
                "Labels joined to their prediction",
                [],
                lambda: {(): tally(performance, "labels_joined")},
            ),
            (
                "driftline_labels_unmatched",
                "Labels whose prediction was not found within the label TTL (sent to the DLQ)",
                [],
                lambda: {(): tally(performance, "labels_unmatched")},
            ),
            (
                "driftline_concept_drifts",
                "Concept drifts the Page-Hinkley detector signalled",
                [],
                lambda: {(): tally(performance, "concept_drifts")},
            ),
        ):
            registry.register(_Callback(name, doc, labels, read))


def integration_type(integration: object) -> str:
    """`webhook`, `slack`, `pagerduty`, `msteams` ... from a receiver integration's class
    (`WebhookConfig`): the bounded label notifications are counted by."""
    name = type(integration).__name__
    return (name.removesuffix("Config") or name).lower()


class AlertingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "driftline_notifications_sent",
            "Notifications a receiver accepted, by receiver type",
            ["receiver"],
            registry=registry,
        )
        self.failed = Counter(
            "driftline_notifications_failed",
            "Notification attempts that failed, by receiver type",
            ["receiver"],
            registry=registry,
        )

    def delivery(self, receiver: str, ok: bool) -> None:
        (self.sent if ok else self.failed).labels(receiver).inc()


class _CallbackGauge(_Callback):
    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.doc, labels=self.labelnames)
        for labels, value in self.read().items():
            family.add_metric(list(labels), value)
        yield family


class AuditMetrics:
    """The audit chains, read from the trail at scrape time: each tenant's head (newest
    seq written since the service started) and its last verification (ok and when)."""

    def __init__(self, registry: CollectorRegistry, trail: Any) -> None:
        def heads() -> dict[Any, float]:
            return {(t,): float(seq) for t, seq in dict(trail.heads).items()}

        def verified(i: int) -> dict[Any, float]:
            return {(t,): float(v[i]) for t, v in dict(trail.verifications).items()}

        for gauge in (
            _CallbackGauge(
                "driftline_audit_chain_head_sequence",
                "Sequence number of the newest record of a tenant's hash chain",
                ["tenant"],
                heads,
            ),
            _CallbackGauge(
                "driftline_audit_verification_ok",
                "1 if the last verification of a tenant's chain passed, 0 if it found a break",
                ["tenant"],
                lambda: verified(0),
            ),
            _CallbackGauge(
                "driftline_audit_last_verification_timestamp_seconds",
                "When a tenant's chain was last verified (Unix time)",
                ["tenant"],
                lambda: verified(1),
            ),
        ):
            registry.register(gauge)
