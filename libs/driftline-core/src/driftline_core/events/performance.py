"""`driftline.performance.v1`: model performance per window once labels arrive, and
concept-drift signals from a change detector on the error stream."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .windows import WindowResult

__all__ = ["TOPIC", "PerformanceResult"]

TOPIC = "driftline.performance.v1"


class PerformanceResult(WindowResult):
    TOPIC: ClassVar[str] = TOPIC

    kind: Literal["window_metrics", "concept_drift"] = "window_metrics"
    task: Literal["classification", "regression"]
    labelled: int = Field(ge=0)
    metrics: dict[str, float]
    detector: str | None = None
