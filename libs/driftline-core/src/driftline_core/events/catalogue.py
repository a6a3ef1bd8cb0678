"""The one catalogue of Driftline topics: name, partitions, retention, cleanup, key, model.

The local stack, the tests and the Helm chart's topic job all create topics from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from . import (
    actuals,
    alerts,
    audit,
    dlq,
    drift,
    performance,
    predictions,
    quality,
    registry,
    remediation,
    reports,
    revocations,
)

__all__ = ["TOPICS", "TopicSpec", "by_name", "model_for"]

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[BaseModel]
    partitions: int
    retention_ms: int  # -1 keeps forever
    cleanup_policy: Literal["delete", "compact", "compact,delete"]
    key: str
    description: str

    def configs(self) -> dict[str, str]:
        return {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": "1",
        }


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        predictions.TOPIC,
        predictions.PredictionEvent,
        12,
        7 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "every inference event from model servers",
    ),
    TopicSpec(
        actuals.TOPIC,
        actuals.ActualEvent,
        12,
        14 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "ground-truth labels, joined by prediction event id",
    ),
    TopicSpec(
        registry.TOPIC,
        registry.RegistryChange,
        3,
        -1,
        "delete",
        "tenant_id:model_id",
        "model registry changes (kept forever: the history)",
    ),
    TopicSpec(
        drift.TOPIC,
        drift.DriftResult,
        6,
        30 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "per-window drift verdicts",
    ),
    TopicSpec(
        quality.TOPIC,
        quality.QualityResult,
        6,
        30 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "per-window data-quality results",
    ),
    TopicSpec(
        performance.TOPIC,
        performance.PerformanceResult,
        6,
        30 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "per-window performance and concept-drift signals",
    ),
    TopicSpec(
        alerts.TOPIC,
        alerts.AlertEvent,
        3,
        90 * DAY_MS,
        "delete",
        "tenant_id:fingerprint",
        "alert lifecycle, silences and delivery outcomes",
    ),
    TopicSpec(
        remediation.TOPIC,
        remediation.RetrainRequested,
        3,
        90 * DAY_MS,
        "delete",
        "tenant_id:model_id",
        "remediation commands such as retraining",
    ),
    TopicSpec(
        audit.TOPIC,
        audit.AuditRecord,
        6,
        30 * DAY_MS,
        "delete",
        "tenant_id",
        "audit records from every service (durable copy: audit service)",
    ),
    TopicSpec(
        reports.TOPIC,
        reports.ReportEvent,
        3,
        90 * DAY_MS,
        "delete",
        "tenant_id",
        "compliance report lifecycle",
    ),
    TopicSpec(
        revocations.TOPIC,
        revocations.Revocation,
        1,
        DAY_MS,
        "delete",
        "tenant_id",
        "credentials revoked (API keys, sessions, users, erased tenants): every process "
        "drops its cached verifications at once",
    ),
    TopicSpec(
        dlq.TOPIC,
        dlq.DeadLetter,
        3,
        30 * DAY_MS,
        "delete",
        "source topic's key",
        "records no consumer could process, with the reason",
    ),
)

_BY_NAME = {t.name: t for t in TOPICS}


def by_name(name: str) -> TopicSpec:
    return _BY_NAME[name]


def model_for(topic: str) -> type[BaseModel]:
    return _BY_NAME[topic].model
