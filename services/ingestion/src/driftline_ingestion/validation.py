"""Validation of incoming events: the wire shape (pydantic), then the model's feature
schema (types, ranges, categories, NaN/inf, unknown and missing features per policy), then
a classifier's output and labels against its class contract (classes, probabilities that
sum to 1, the declared spelling map).

Each event is checked on its own so a batch can be accepted in part; a reason names the
feature and what was wrong with it."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from driftline_core.events.features import FeatureSchema, FeatureSpec
from driftline_core.events.predictions import PredictionValue
from driftline_core.events.registry import ClassContract, check_probabilities, class_label

__all__ = ["ActualIn", "CompiledSchema", "PredictionIn", "describe"]


class PredictionIn(BaseModel):
    """One prediction as a producer sends it (the tenant comes from the API key)."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID | None = None
    model_id: str = Field(min_length=1, max_length=128)
    model_version: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime | None = None
    features: dict[str, Any]
    prediction: PredictionValue
    probabilities: dict[str, float] | None = None
    segment: dict[str, str] = Field(default_factory=dict)
    business_value: float | None = None
    latency_ms: float | None = Field(default=None, ge=0)


class ActualIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: UUID | None = None
    model_id: str = Field(min_length=1, max_length=128)
    prediction_event_id: UUID
    actual: PredictionValue
    timestamp: datetime | None = None
    segment: dict[str, str] = Field(default_factory=dict)


def describe(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
        for err in e.errors(include_url=False)[:5]
    )


def _number(spec: FeatureSpec, v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return f"feature '{spec.name}': expected a number, got {type(v).__name__}"
    if isinstance(v, float) and not math.isfinite(v):
        return f"feature '{spec.name}': {v} is not allowed (send null for a missing value)"
    if spec.on_out_of_range == "reject" and (
        (spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max)
    ):
        return f"feature '{spec.name}': {v} is outside [{spec.min}, {spec.max}]"
    return None


def _category(spec: FeatureSpec, v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, str | int):
        return f"feature '{spec.name}': expected a category (string), got {type(v).__name__}"
    if (
        spec.on_unseen_category == "reject"
        and spec.categories is not None
        and str(v) not in spec.categories
    ):
        return f"feature '{spec.name}': category {v!r} is not one of the allowed categories"
    return None


def _boolean(spec: FeatureSpec, v: Any) -> str | None:
    if not isinstance(v, bool):
        return f"feature '{spec.name}': expected true or false, got {type(v).__name__}"
    return None


def _text(spec: FeatureSpec, v: Any) -> str | None:
    if not isinstance(v, str):
        return f"feature '{spec.name}': expected text, got {type(v).__name__}"
    return None


def _embedding(spec: FeatureSpec, v: Any) -> str | None:
    if not isinstance(v, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in v
    ):
        return f"feature '{spec.name}': expected a list of numbers"
    if not all(math.isfinite(x) for x in v):
        return f"feature '{spec.name}': NaN/inf inside the embedding"
    if spec.dimension is not None and len(v) != spec.dimension:
        return f"feature '{spec.name}': expected {spec.dimension} dimensions, got {len(v)}"
    return None


_CHECKS = {
    "numeric": _number,
    "categorical": _category,
    "boolean": _boolean,
    "text": _text,
    "embedding": _embedding,
}


_NUM = (int, float)  # exactly these types: bool, an int subclass, is refused
_NUMSET = frozenset(_NUM)


class CompiledSchema:
    """A feature schema turned into lookups, built once per model and cached. The common
    case (a finite number for a numeric feature with no range to enforce) costs one set
    lookup and one type check."""

    def __init__(
        self,
        schema: FeatureSchema,
        task: str = "classification",
        contract: ClassContract | None = None,
    ) -> None:
        self.schema = schema
        self.task = task
        self.contract = contract if task == "classification" else None
        self._specs = schema.by_name()
        self._names = frozenset(self._specs)
        self._required = [s.name for s in schema.features if s.required]
        self._required_set = frozenset(self._required)
        self._plain_numeric = frozenset(
            s.name for s in schema.features if s.kind == "numeric" and s.on_out_of_range == "accept"
        )
        self.sensitive = schema.sensitive

    def check(self, features: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Returns (the features to keep, None) or (None, the reason for refusing them)."""
        keys = features.keys()
        # all present, all plain numeric, all int/float: one C-level pass (JSON cannot carry
        # NaN or infinity, so the parsed values are finite)
        if keys == self._plain_numeric and set(map(type, features.values())) <= _NUMSET:
            return features, None
        if not self._required_set <= keys:
            missing = [n for n in self._required if n not in features]
            return None, f"missing feature(s): {', '.join(missing[:5])}"
        if not keys <= self._names:
            unknown = [n for n in features if n not in self._specs]
            policy = self.schema.unknown_features
            if policy == "reject":
                return None, f"unknown feature(s): {', '.join(unknown[:5])}"
            if policy == "drop":
                features = {k: v for k, v in features.items() if k in self._specs}
        plain = self._plain_numeric
        for name, v in features.items():
            # v - v == 0 is False for NaN and for +/-inf
            if name in plain and type(v) in _NUM and v - v == 0:
                continue
            spec = self._specs.get(name)
            if spec is None:
                continue  # an unknown feature the schema accepts
            if v is None:
                if not spec.nullable:
                    return None, f"feature '{name}' may not be null"
                continue
            reason = _CHECKS[spec.kind](spec, v)
            if reason:
                return None, reason
        return features, None

    def check_output(
        self, prediction: Any, probabilities: dict[str, float] | None
    ) -> tuple[Any, dict[str, float] | None, str | None]:
        """(prediction, probabilities, None) to send, or (.., .., the reason to refuse).
        With a class contract both are checked and spelt as its classes; without one, a
        classifier's probabilities must still be probabilities."""
        if self.task != "classification":
            return prediction, probabilities, None
        if self.contract is None:
            if probabilities is not None:
                reason = check_probabilities(probabilities)
                if reason:
                    return prediction, probabilities, reason
            return prediction, probabilities, None
        c, probs, reason = self.contract.check_prediction(prediction, probabilities)
        if reason:
            return prediction, probabilities, reason
        return (prediction if _same(prediction, c) else c), probs, None

    def check_actual(self, actual: Any) -> tuple[Any, str | None]:
        """(the label to send, None) or (.., the reason to refuse it)."""
        if self.contract is None:
            return actual, None
        c, reason = self.contract.check_label(actual)
        if reason:
            return actual, reason
        return (actual if _same(actual, c) else c), None


def _same(value: Any, cls: str) -> bool:
    """Whether a value already spells its class (then it is sent as the producer sent it)."""
    return class_label(value) == cls
