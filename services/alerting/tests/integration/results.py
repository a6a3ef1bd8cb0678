"""The drift results these tests feed to alerting: one builder for every test module."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from driftline_core.events import DriftResult
from driftline_core.kafka import Message


def drift_result(
    tenant: str,
    share: float,
    end: float,
    model: str = "credit",
    version: str = "3",
    *,
    income_feature: bool = True,
) -> DriftResult:
    """A window of 1,000 events ending at `end` with `share` of its features drifted; with
    `income_feature`, one Wasserstein feature whose statistic is `share` (threshold 0.1)."""
    features: list[dict[str, Any]] = []
    if income_feature:
        features.append(
            {
                "feature": "income",
                "test": "wasserstein",
                "statistic": share,
                "threshold": 0.1,
                "drifted": share >= 0.5,
            }
        )
    return DriftResult.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": tenant,
            "model_id": model,
            "model_version": version,
            "window": {
                "start": datetime.fromtimestamp(end - 60, UTC),
                "end": datetime.fromtimestamp(end, UTC),
                "events": 1000,
            },
            "occurred_at": datetime.fromtimestamp(end, UTC),
            "features": features,
            "drifted_share": share,
            "dataset_drift": share >= 0.5,
        }
    )


def as_message(r: DriftResult, offset: int = 0) -> Message[DriftResult]:
    """The result as the consumer loop hands it over."""
    return Message(DriftResult.TOPIC, 0, offset, None, 0, r)
