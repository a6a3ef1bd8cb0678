"""Alert rules and their evaluation on results.

A rule names a metric of a result (`drift.drifted_share`, `drift.feature.statistic`,
`quality.score`, `performance.accuracy`, `events.absent_for_s`, ...), a comparison, and
`for_windows`: how many consecutive windows the condition must hold before the alert fires.
Per-feature metrics give one series per feature (`feature: "*"`) or follow one feature. Each
series (rule, model, version, segment, feature) has a streak; an alert fires when the streak
reaches `for_windows` and resolves at the first window where the condition no longer holds.

Pure logic: the service feeds results (`observe`) and the clock (`absent`), persists
`Series`, and hands the transitions to the dispatcher."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationInfo, field_validator

__all__ = [
    "METRICS",
    "Alert",
    "Condition",
    "Remediation",
    "Rule",
    "RuleEngine",
    "Series",
    "default_rules",
    "fingerprint",
    "values_of",
]

Severity = Literal["info", "warning", "critical"]
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

# metric -> (result kind, per feature?)
METRICS: dict[str, tuple[str, bool]] = {
    "drift.drifted_share": ("drift", False),
    "drift.dataset_drift": ("drift", False),
    "drift.feature.statistic": ("drift", True),
    "drift.feature.ratio": ("drift", True),  # statistic / threshold
    "drift.feature.drifted": ("drift", True),
    "drift.prediction.drifted": ("drift", False),
    "drift.prediction.statistic": ("drift", False),
    "drift.multivariate.score": ("drift", False),
    "drift.multivariate.drifted": ("drift", False),
    "events.count": ("drift", False),
    "events.absent_for_s": ("clock", False),
    "quality.score": ("quality", False),
    "quality.feature.missing": ("quality", True),
    "quality.feature.missing_rate": ("quality", True),
    "quality.feature.out_of_range": ("quality", True),
    "quality.feature.unseen_categories": ("quality", True),
    "quality.feature.type_errors": ("quality", True),
    "quality.feature.outliers": ("quality", True),
    "performance.concept_drift": ("performance", False),
}
PERFORMANCE = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse")
METRICS.update({f"performance.{m}": ("performance", False) for m in (*PERFORMANCE, "mape")})
METRICS["performance.labelled"] = ("performance", False)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float
    feature: str | None = Field(
        default=None, description="per-feature metrics: a feature name, or * for each"
    )

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; one of: {', '.join(sorted(METRICS))}")
        return v

    def holds(self, x: float) -> bool:
        return OPS[self.op](x, self.value)


class Remediation(BaseModel):
    """Retraining when the alert fires: a command on `driftline.remediation.v1` and/or a
    signed call to a webhook (e.g. a CI pipeline), at most once per `cooldown_s` per model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: bool = True
    webhook: HttpUrl | None = None
    webhook_secret: str | None = Field(
        default=None, description="Standard Webhooks secret (whsec_...) to sign the call"
    )
    cooldown_s: int = Field(default=3600, ge=0)


# every alert of a rule carries its labels and annotations (Kafka records, notifications,
# the saved state): bounded, so a rule accepted here cannot make an alert too large to send.
# What is read back from the store is not bounded again (`context=STORED`): a rule or silence
# an older version accepted must not stop alerting from starting.
LABEL_MAX_CHARS, ANNOTATION_MAX_CHARS, MAX_ENTRIES = 1024, 8192, 64
STORED = {"stored": True}


def stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _bounded(v: dict[str, str], what: str, limit: int, info: ValidationInfo) -> dict[str, str]:
    if stored(info):
        return v
    if len(v) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} {what}s, got {len(v)}")
    for k, x in v.items():
        if len(k) > 128:
            raise ValueError(f"a {what} name is at most 128 characters, got {len(k)}")
        if len(x) > limit:
            raise ValueError(f"{what} {k!r}: at most {limit} characters, got {len(x)}")
    return v


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=128)
    model_id: str | None = None  # None: every model of the tenant
    condition: Condition
    for_windows: int = Field(default=1, ge=1, le=1000)
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    remediation: Remediation | None = None
    enabled: bool = True

    @field_validator("condition")
    @classmethod
    def _feature_for_feature_metrics(cls, c: Condition) -> Condition:
        per_feature = METRICS[c.metric][1]
        if per_feature and not c.feature:
            raise ValueError(f"{c.metric} is per feature: set `feature` (a name, or *)")
        if not per_feature and c.feature:
            raise ValueError(f"{c.metric} is not per feature: drop `feature`")
        return c

    @field_validator("labels")
    @classmethod
    def _reserved(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        taken = set(v) & {"alertname", "tenant", "model", "version", "segment", "feature"}
        if taken:
            raise ValueError(f"labels set by Driftline: {', '.join(sorted(taken))}")
        return _bounded(v, "label", LABEL_MAX_CHARS, info)

    @field_validator("annotations")
    @classmethod
    def _annotations_bounded(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return _bounded(v, "annotation", ANNOTATION_MAX_CHARS, info)


def default_rules() -> list[Rule]:
    """What a newly registered model gets unless the tenant defines its own."""

    def r(id_: str, name: str, metric: str, op: str, value: float, **kw: Any) -> Rule:
        cond = {"metric": metric, "op": op, "value": value}
        if "feature" in kw:
            cond["feature"] = kw.pop("feature")
        return Rule.model_validate({"id": id_, "name": name, "condition": cond, **kw})

    return [
        r(
            "dataset-drift",
            "DatasetDrift",
            "drift.drifted_share",
            ">=",
            0.5,
            severity="critical",
            annotations={"summary": "{value:.0%} of the features of {model} drifted"},
        ),
        r(
            "feature-drift",
            "FeatureDrift",
            "drift.feature.drifted",
            "==",
            1,
            feature="*",
            for_windows=2,
            annotations={"summary": "{feature} of {model} drifted two windows running"},
        ),
        r(
            "prediction-drift",
            "PredictionDrift",
            "drift.prediction.drifted",
            "==",
            1,
            annotations={"summary": "the output of {model} drifted"},
        ),
        r(
            "data-quality",
            "DataQuality",
            "quality.score",
            "<",
            90,
            annotations={"summary": "data quality of {model} is {value:.1f}/100"},
        ),
        r(
            "concept-drift",
            "ConceptDrift",
            "performance.concept_drift",
            "==",
            1,
            severity="critical",
            annotations={"summary": "the error rate of {model} rose (Page-Hinkley)"},
        ),
        r(
            "no-data",
            "NoData",
            "events.absent_for_s",
            ">",
            1800,
            annotations={"summary": "no events from {model} for 30 minutes"},
        ),
    ]


def values_of(kind: str, result: dict[str, Any], cond: Condition) -> Iterator[tuple[str, float]]:
    """(feature or "", value) for the condition's metric in one result."""
    m = cond.metric
    if kind == "drift":
        if m == "drift.drifted_share":
            yield "", float(result["drifted_share"])
        elif m == "drift.dataset_drift":
            yield "", float(result["dataset_drift"])
        elif m == "events.count":
            yield "", float(result["window"]["events"])
        elif m.startswith("drift.prediction.") and result.get("prediction"):
            p = result["prediction"]
            yield "", float(p["drifted"] if m.endswith("drifted") else p["statistic"])
        elif m.startswith("drift.multivariate.") and result.get("multivariate"):
            mv = result["multivariate"]
            yield "", float(mv["drifted"] if m.endswith("drifted") else mv["score"])
        elif m.startswith("drift.feature."):
            for f in result.get("features", []):
                if cond.feature in ("*", f["feature"]):
                    if m.endswith("ratio"):
                        v = f["statistic"] / f["threshold"] if f["threshold"] else 0.0
                    else:
                        v = float(f[m.rsplit(".", 1)[1]])
                    yield f["feature"], float(v)
    elif kind == "quality":
        if m == "quality.score":
            yield "", float(result["quality_score"])
        else:
            field = m.rsplit(".", 1)[1]
            for f in result.get("features", []):
                if cond.feature in ("*", f["feature"]):
                    if field == "missing_rate":
                        yield f["feature"], f["missing"] / f["count"] if f["count"] else 0.0
                    else:
                        yield f["feature"], float(f[field])
    elif kind == "performance":
        if m == "performance.concept_drift":
            yield "", 1.0 if result.get("kind") == "concept_drift" else 0.0
        elif result.get("kind", "window_metrics") == "window_metrics":
            name = m.split(".", 1)[1]
            if name == "labelled":
                yield "", float(result["labelled"])
            elif name in result.get("metrics", {}):
                yield "", float(result["metrics"][name])


def fingerprint(labels: dict[str, str]) -> str:
    """Stable id of an alert: its label set (as Alertmanager does)."""
    h = hashlib.sha256()
    for k in sorted(labels):
        h.update(k.encode() + b"\xff" + labels[k].encode() + b"\xff")
    return h.hexdigest()[:16]


@dataclass
class Series:
    streak: int = 0
    firing: bool = False
    started_at: float = 0.0
    evidence: list[dict[str, Any]] | None = None  # the windows that made it fire
    last_end: float = 0.0  # the latest window counted: a result seen again is skipped
    touched: float = 0.0


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    rule: Rule
    tenant_id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: Literal["firing", "resolved"]
    starts_at: float
    ends_at: float | None
    value: float
    evidence: tuple[dict[str, Any], ...] = ()

    @property
    def model_id(self) -> str:
        return self.labels["model"]


def _annotate(rule: Rule, labels: dict[str, str], value: float) -> dict[str, str]:
    out = {}
    for k, v in rule.annotations.items():
        try:
            out[k] = v.format(value=value, **labels)
        except (KeyError, ValueError, IndexError):
            out[k] = v  # a template that does not fit is shown as written
    return out


class RuleEngine:
    """Series state per (tenant, rule, model, version, segment, feature)."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.last_seen: dict[tuple[str, str], float] = {}  # (tenant, model) -> wall clock
        self.dirty: set[str] = set()  # series changed since the last save
        self.removed: set[str] = set()
        self._ids: dict[tuple[Any, ...], tuple[dict[str, str], str]] = {}  # labels, fingerprint

    def _identity(
        self, rule: Rule, tenant: str, model: str, version: str, segment: dict[str, str], f: str
    ) -> tuple[dict[str, str], str]:
        key = (
            rule.id,
            rule.name,
            rule.severity,
            tuple(sorted(rule.labels.items())),
            tenant,
            model,
            version,
            tuple(sorted(segment.items())),
            f,
        )
        hit = self._ids.get(key)
        if hit is None:
            if len(self._ids) > 200_000:
                self._ids.clear()
            labels = self.labels(rule, tenant, model, version, segment, f)
            hit = self._ids[key] = (labels, fingerprint(labels))
        return hit

    @staticmethod
    def labels(
        rule: Rule, tenant: str, model: str, version: str, segment: dict[str, str], feature: str
    ) -> dict[str, str]:
        out = {
            **rule.labels,
            "alertname": rule.name,
            "rule_id": rule.id,
            "severity": rule.severity,
            "tenant": tenant,
            "model": model,
        }
        if version:
            out["version"] = version
        if segment:
            out["segment"] = ",".join(f"{k}={v}" for k, v in sorted(segment.items()))
        if feature:
            out["feature"] = feature
        return out

    def observe(
        self, kind: str, result: dict[str, Any], rules: list[Rule], now: float
    ) -> list[Alert]:
        """One result against the tenant's rules: the alerts that fire or resolve."""
        tenant, model = result["tenant_id"], result["model_id"]
        if kind == "drift" and result["window"]["events"]:
            self.last_seen[(tenant, model)] = now
        out = []
        window = {
            "kind": kind,
            "event_id": str(result.get("event_id", "")),
            "start": result["window"]["start"],
            "end": result["window"]["end"],
            "end_ts": datetime.fromisoformat(result["window"]["end"]).timestamp(),
        }
        for rule in rules:
            if not rule.enabled or METRICS[rule.condition.metric][0] != kind:
                continue
            if rule.model_id not in (None, model):
                continue
            for feature, value in values_of(kind, result, rule.condition):
                labels, fp = self._identity(
                    rule,
                    tenant,
                    model,
                    str(result.get("model_version", "")),
                    result.get("segment") or {},
                    feature,
                )
                alert = self._step(
                    rule, tenant, labels, fp, rule.condition.holds(value), value, now, window
                )
                if alert is not None:
                    out.append(alert)
        return out

    def absent(self, tenant: str, rules: list[Rule], now: float) -> list[Alert]:
        """`events.absent_for_s` rules, on the clock, for every model seen so far."""
        out = []
        for (t, model), seen in self.last_seen.items():
            if t != tenant:
                continue
            for rule in rules:
                if not rule.enabled or rule.condition.metric != "events.absent_for_s":
                    continue
                if rule.model_id not in (None, model):
                    continue
                quiet = now - seen
                labels, fp = self._identity(rule, tenant, model, "", {}, "")
                alert = self._step(
                    rule, tenant, labels, fp, rule.condition.holds(quiet), quiet, now, None
                )
                if alert is not None:
                    out.append(alert)
        return out

    def _step(
        self,
        rule: Rule,
        tenant: str,
        labels: dict[str, str],
        fp: str,
        holds: bool,
        value: float,
        now: float,
        window: dict[str, Any] | None,
    ) -> Alert | None:
        s = self.series.setdefault(fp, Series())
        self.dirty.add(fp)
        if window is not None:
            if window["end_ts"] <= s.last_end and rule.condition.metric != (
                "performance.concept_drift"
            ):
                return None  # seen already (a redelivery after a crash)
            s.last_end = window["end_ts"]
        s.touched = now
        if holds:
            s.streak += 1
            if window is not None:
                s.evidence = [*(s.evidence or []), window][-rule.for_windows :]
            if not s.firing and s.streak >= rule.for_windows:
                s.firing, s.started_at = True, now
                return Alert(
                    fp,
                    rule,
                    tenant,
                    labels,
                    _annotate(rule, labels, value),
                    "firing",
                    now,
                    None,
                    value,
                    tuple(s.evidence or ()),
                )
            return None
        s.streak, s.evidence = 0, None
        if s.firing:
            s.firing = False
            return Alert(
                fp,
                rule,
                tenant,
                labels,
                _annotate(rule, labels, value),
                "resolved",
                s.started_at,
                now,
                value,
            )
        return None

    def prune(self, now: float, max_age_s: float = 7 * 86400) -> None:
        """Forget quiet series that are not firing (their last window is long past)."""
        quiet = [f for f, s in self.series.items() if not s.firing and now - s.touched > max_age_s]
        for fp in quiet:
            del self.series[fp]
            self.dirty.discard(fp)
            self.removed.add(fp)

    @staticmethod
    def series_json(s: Series) -> dict[str, Any]:
        return {
            "streak": s.streak,
            "firing": s.firing,
            "started_at": s.started_at,
            "evidence": s.evidence,
            "last_end": s.last_end,
            "touched": s.touched,
        }

    def changes(self) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """Series to write and to delete since the last call."""
        out = [(fp, self.series_json(self.series[fp])) for fp in self.dirty if fp in self.series]
        gone = sorted(self.removed)
        self.dirty.clear()
        self.removed.clear()
        return out, gone

    def meta(self) -> dict[str, Any]:
        return {"last_seen": [[t, m, v] for (t, m), v in self.last_seen.items()]}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.meta(),
            "series": {fp: self.series_json(s) for fp, s in self.series.items()},
        }

    def load(self, d: dict[str, Any]) -> None:
        self.series = {
            fp: Series(
                v["streak"],
                v["firing"],
                v["started_at"],
                v["evidence"],
                v["last_end"],
                v["touched"],
            )
            for fp, v in d.get("series", {}).items()
        }
        self.last_seen = {(t, m): v for t, m, v in d.get("last_seen", [])}
        self.dirty.clear()
        self.removed.clear()
