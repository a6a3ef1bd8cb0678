"""Shaping events on the client: ids are chosen here, so a retried batch is recognised by
the server as the same events (refused as duplicates) instead of being stored twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

__all__ = ["batched", "prediction", "with_ids"]


def prediction(
    model_id: str, model_version: str, features: dict[str, Any], prediction: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "model_id": model_id,
        "model_version": model_version,
        "timestamp": datetime.now(UTC).isoformat(),
        "features": features,
        "prediction": prediction,
        **extra,
    }


def with_ids(events: Iterable[dict[str, Any]], **defaults: Any) -> list[dict[str, Any]]:
    out = []
    for e in events:
        ev = {**defaults, **e}
        ev.setdefault("event_id", str(uuid.uuid4()))
        out.append(ev)
    return out


def batched(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
