"""`driftline.registry.v1`: every change to the model registry (compacted per model)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .envelope import Envelope, ModelId

__all__ = [
    "TOPIC",
    "ClassContract",
    "Gate",
    "RegistryChange",
    "RegistryChangeKind",
    "ValidationEvidence",
    "check_probabilities",
    "class_label",
]

TOPIC = "driftline.registry.v1"

RegistryChangeKind = Literal[
    "model_registered",
    "model_updated",
    "model_deleted",
    "version_registered",
    "version_approved",
    "version_stage_changed",
    "schema_changed",
    "monitoring_config_changed",
    "reference_profile_updated",
]


class RegistryChange(Envelope):
    TOPIC: ClassVar[str] = TOPIC

    model_id: ModelId
    model_version: str | None = None
    change: RegistryChangeKind
    actor: str
    details: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> bytes:
        return f"{self.tenant_id}:{self.model_id}".encode()


class Gate(BaseModel):
    """A quality gate on a validation metric: at least `min`, at most `max`, or both."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs min, max or both")
        return self


class ValidationEvidence(BaseModel):
    """A version's pre-release validation (`metadata.validation` of a version): the dataset,
    the measured metrics and the gates they must meet. Compliance reports quote it."""

    model_config = ConfigDict(extra="allow")
    dataset: str = Field(min_length=1, max_length=500)
    metrics: dict[str, float] = Field(default_factory=dict)
    gates: dict[str, Gate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _measured(self) -> ValidationEvidence:
        missing = sorted(set(self.gates) - set(self.metrics))
        if missing:
            raise ValueError(f"gates on metrics that were not measured: {', '.join(missing)}")
        return self


ClassValue = str | int | float | bool


def class_label(v: Any) -> str:
    """One spelling per class: booleans as true/false, integral floats as integers (the
    same rule as `driftline_stats.performance.label`)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class ClassContract(BaseModel):
    """What a classifier outputs: its classes, the positive class of a binary task, and
    optionally how the producer's spellings map onto the classes (`{"default": 1}`).

    Declared at registration (or `PUT /v1/models/{id}/classes`), or learnt once from the
    reference's label column. Ingestion checks every prediction, its probabilities and
    every label against it, and the label processor computes precision, recall and ROC-AUC
    for `positive_class` only: nothing is guessed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str] = Field(min_length=2, max_length=1000)
    positive_class: str | None = None
    mapping: dict[str, str] = Field(default_factory=dict, max_length=1000)
    # |sum(probabilities) - 1| allowed
    probability_tolerance: float = Field(default=1e-6, gt=0, le=0.01)
    source: Literal["declared", "reference"] = "declared"

    @field_validator("classes", mode="before")
    @classmethod
    def _spell_classes(cls, v: Any) -> Any:
        return [class_label(c) for c in v] if isinstance(v, list) else v

    @field_validator("positive_class", mode="before")
    @classmethod
    def _spell_positive(cls, v: Any) -> Any:
        return None if v is None else class_label(v)

    @field_validator("mapping", mode="before")
    @classmethod
    def _spell_mapping(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {class_label(k): class_label(c) for k, c in v.items()}
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ClassContract:
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate classes: {', '.join(dupes)}")
        if any(not c or "\x00" in c for c in self.classes):
            raise ValueError("a class must be a non-empty string without NUL")
        known = set(self.classes)
        if self.positive_class is not None and self.positive_class not in known:
            raise ValueError(f"positive_class {self.positive_class!r} is not one of the classes")
        if len(self.classes) == 2 and self.positive_class is None:
            raise ValueError("a binary classifier must declare its positive_class")
        wrong = sorted(c for c in self.mapping.values() if c not in known)
        if wrong:
            raise ValueError(f"mapping targets that are not classes: {', '.join(wrong)}")
        return self

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def cls(self, v: Any) -> str | None:
        """The class a value names (after the mapping), or None if it names none."""
        if isinstance(v, list | dict) or v is None:
            return None
        c = class_label(v)
        c = self.mapping.get(c, c)
        return c if c in self.classes else None

    def _allowed(self) -> str:
        shown = ", ".join(self.classes[:10])
        return f"[{shown}{', ...' if len(self.classes) > 10 else ''}]"

    def check_prediction(
        self, prediction: Any, probabilities: dict[str, float] | None
    ) -> tuple[str, dict[str, float] | None, str | None]:
        """(class, probabilities keyed by class, None) or ("", None, the reason)."""
        c = self.cls(prediction)
        if c is None:
            return (
                "",
                None,
                f"prediction {prediction!r} is not one of the classes {self._allowed()}",
            )
        if probabilities is None:
            return c, None, None
        probs: dict[str, float] = {}
        for k, p in probabilities.items():
            kc = self.cls(k)
            if kc is None:
                return "", None, f"probabilities: {k!r} is not one of the classes {self._allowed()}"
            if kc in probs:
                return "", None, f"probabilities: class {kc!r} is given twice"
            probs[kc] = p
        reason = check_probabilities(probs, self.probability_tolerance, single=self.binary)
        if reason:
            return "", None, reason
        if self.binary and len(probs) == 1:  # the other class's share is implied
            ((given, p),) = probs.items()
            other = self.classes[0] if given == self.classes[1] else self.classes[1]
            probs[other] = 1.0 - p
        return c, probs, None

    def check_label(self, actual: Any) -> tuple[str, str | None]:
        c = self.cls(actual)
        if c is None:
            return "", f"actual {actual!r} is not one of the classes {self._allowed()}"
        return c, None


def check_probabilities(
    probs: dict[str, float], tolerance: float = 1e-6, *, single: bool = True
) -> str | None:
    """None if these are probabilities: each in [0, 1], summing to 1 within `tolerance`.
    With `single`, one value alone is a binary classifier's score, only range-checked."""
    for k, p in probs.items():
        if not (isinstance(p, int | float) and math.isfinite(p) and 0.0 <= p <= 1.0):
            return f"probabilities: {k!r} = {p!r} is not a probability in [0, 1]"
    if len(probs) >= 2 or not single:
        total = math.fsum(probs.values())
        if abs(total - 1.0) > tolerance:
            return f"probabilities sum to {total!r}, not 1 (tolerance {tolerance:g})"
    return None
