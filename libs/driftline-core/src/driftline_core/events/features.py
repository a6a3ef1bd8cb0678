"""A model's feature schema and monitoring configuration, as the registry stores them and
`driftline.registry.v1` carries them to drift detection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ConceptDriftConfig",
    "FeatureKind",
    "FeatureSchema",
    "FeatureSpec",
    "FeatureTest",
    "MonitoringConfig",
    "WindowConfig",
    "monitoring_problems",
]

FeatureKind = Literal["numeric", "categorical", "boolean", "text", "embedding"]
Policy = Literal["accept", "reject"]


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
    kind: FeatureKind
    required: bool = True
    nullable: bool = True
    sensitive: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    dimension: int | None = Field(default=None, ge=1)
    # what to do with a value outside [min, max] or an unseen category: `accept` keeps it
    # (drift detection counts it as a quality problem), `reject` refuses the event
    on_out_of_range: Policy = "accept"
    on_unseen_category: Policy = "accept"

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if (self.min is not None or self.max is not None) and self.kind != "numeric":
            raise ValueError(f"{self.name}: min/max apply to numeric features only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} is above max {self.max}")
        if self.categories is not None and self.kind != "categorical":
            raise ValueError(f"{self.name}: categories apply to categorical features only")
        if self.dimension is not None and self.kind != "embedding":
            raise ValueError(f"{self.name}: dimension applies to embedding features only")
        return self


class FeatureSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[FeatureSpec] = Field(min_length=1)
    unknown_features: Literal["reject", "drop", "accept"] = "reject"

    @model_validator(mode="after")
    def _unique(self) -> FeatureSchema:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        return self

    def by_name(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    @property
    def sensitive(self) -> list[str]:
        return [f.name for f in self.features if f.sensitive]


class FeatureTest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    test: Literal[
        "auto",
        "ks",
        "psi",
        "jensen_shannon",
        "wasserstein",
        "hellinger",
        "chi_squared",
        "z",
        "total_variation",
    ] = "auto"
    threshold: float | None = Field(default=None, gt=0)


class WindowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # only time windows are implemented; `count` is refused rather than run as time windows
    kind: Literal["time", "count"] = "time"
    seconds: int = Field(default=300, ge=10)
    size: int | None = Field(default=None, ge=100)
    grace_seconds: int = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _time_only(self) -> WindowConfig:
        if self.kind == "count":
            raise ValueError(
                "count windows are not supported: use kind 'time' with `seconds` "
                "(windows by event time)"
            )
        if self.size is not None:
            raise ValueError("`size` belongs to count windows, which are not supported")
        return self


class ConceptDriftConfig(BaseModel):
    """Page-Hinkley on the error stream (0/1 for classes, APE capped at 1 for regression)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delta: float = Field(default=0.005, ge=0)
    threshold: float = Field(default=50.0, gt=0)
    min_samples: int = Field(default=30, ge=1)


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window: WindowConfig = Field(default_factory=WindowConfig)
    features: dict[str, FeatureTest] = Field(default_factory=dict)
    prediction: FeatureTest = Field(default_factory=FeatureTest)
    segments: list[str] = Field(default_factory=list, max_length=8)
    dataset_drift_share: float = Field(default=0.5, gt=0, le=1)
    # predictions are kept this long for late labels (Redis, ~150 bytes each)
    label_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # binary classifiers: the class precision, recall and ROC-AUC are about (default: "1",
    # "true", "yes" or "positive" if present, else the last class in sorted order)
    positive_class: str | None = None
    concept_drift: ConceptDriftConfig = Field(default_factory=ConceptDriftConfig)


# the drift tests each kind of profile supports (see driftline_stats.detector.Detector)
NUMERIC_TESTS = frozenset(
    {"ks", "wasserstein", "psi", "jensen_shannon", "hellinger", "total_variation"}
)
CATEGORICAL_TESTS = frozenset(
    {"chi_squared", "z", "psi", "jensen_shannon", "hellinger", "total_variation"}
)


def monitoring_problems(
    monitoring: MonitoringConfig,
    kinds: Mapping[str, str] | None,
    task: str | None,
    *,
    complete: bool = True,
) -> list[tuple[str, str]]:
    """What is wrong with a monitoring config for these feature kinds (name -> kind) and
    task, as (field, message) pairs; empty if the detector can run it. A test the feature's
    kind does not support (`ks` on a categorical feature) is refused here rather than
    raised at the first window. With `complete`, `kinds` is the whole schema and a test on
    a feature it lacks is refused too."""
    problems: list[tuple[str, str]] = []
    for name, t in monitoring.features.items():
        where = f"monitoring.features.{name}.test"
        kind = kinds.get(name) if kinds is not None else None
        if kind is None:
            if kinds is not None and complete:
                problems.append(
                    (f"monitoring.features.{name}", f"no feature {name!r} in the schema")
                )
            continue
        if t.test == "auto":
            continue
        if kind == "numeric" and t.test not in NUMERIC_TESTS:
            problems.append((where, f"{t.test} does not apply to numeric feature {name!r}"))
        elif kind in ("categorical", "boolean") and t.test not in CATEGORICAL_TESTS:
            problems.append((where, f"{t.test} does not apply to {kind} feature {name!r}"))
        elif kind in ("text", "embedding"):
            problems.append((where, f"{kind} feature {name!r} is not drift-tested"))
    out = monitoring.prediction.test
    if out != "auto":
        if task == "regression" and out not in NUMERIC_TESTS:
            problems.append(("monitoring.prediction.test", f"{out} does not apply to a regression"))
        elif task == "classification" and out not in CATEGORICAL_TESTS:
            problems.append(
                ("monitoring.prediction.test", f"{out} does not apply to a classifier's classes")
            )
    return problems
