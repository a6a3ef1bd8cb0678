"""`driftline.drift.v1`: per-window drift verdicts for every feature and the prediction."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .windows import WindowResult

__all__ = ["TOPIC", "DriftResult", "FeatureDrift", "MultivariateDrift"]

TOPIC = "driftline.drift.v1"


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    test: str
    statistic: float
    p_value: float | None = None
    threshold: float
    drifted: bool


class MultivariateDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str = "pca_reconstruction_error"
    score: float
    threshold: float
    drifted: bool


class DriftResult(WindowResult):
    TOPIC: ClassVar[str] = TOPIC

    features: list[FeatureDrift]
    prediction: FeatureDrift | None = None
    drifted_share: float = Field(ge=0.0, le=1.0)
    dataset_drift: bool
    multivariate: MultivariateDrift | None = None
