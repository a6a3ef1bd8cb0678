"""`driftline.quality.v1`: per-window data-quality counts and a 0-100 score."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .windows import WindowResult

__all__ = ["TOPIC", "FeatureQuality", "QualityResult"]

TOPIC = "driftline.quality.v1"


class FeatureQuality(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    count: int = Field(ge=0)
    missing: int = Field(default=0, ge=0)
    out_of_range: int = Field(default=0, ge=0)
    unseen_categories: int = Field(default=0, ge=0)
    type_errors: int = Field(default=0, ge=0)
    outliers: int = Field(default=0, ge=0)


class QualityResult(WindowResult):
    TOPIC: ClassVar[str] = TOPIC

    features: list[FeatureQuality]
    quality_score: float = Field(ge=0.0, le=100.0)
