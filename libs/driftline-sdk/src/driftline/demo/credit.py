"""A synthetic credit-risk classifier: 20 numeric, categorical and boolean features, class
probabilities, and labels that arrive late. Drift is scheduled over the stream's progress
(0 to 1): a sudden income shift, a gradual fall in credit scores, a new region, rising
missing employment data, and a higher true default rate (label shift). Vectorised numpy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DRIFTS", "MODEL", "Drift", "generate", "labels_for", "reference_rows"]

REGIONS = ["north", "south", "east", "west", "central"]
EMPLOYMENT = ["salaried", "self_employed", "contract", "unemployed"]
HOUSING = ["own", "rent", "mortgage"]
PURPOSE = ["car", "home", "education", "business", "medical", "other"]
EDUCATION = ["high_school", "bachelor", "master", "doctorate"]
NUMERIC = {  # name: (min, max)
    "age": (18, 100),
    "income": (0, None),
    "debt_ratio": (0, 5),
    "credit_score": (300, 850),
    "loan_amount": (0, None),
    "loan_term_months": (6, 480),
    "employment_years": (0, 60),
    "num_credit_lines": (0, 100),
    "num_late_payments": (0, 100),
    "utilization": (0, 1.5),
    "savings": (0, None),
    "monthly_expenses": (0, None),
    "dependents": (0, 20),
    "months_at_address": (0, 900),
}


def _spec(name: str, kind: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, **kw}


MODEL: dict[str, Any] = {
    "id": "credit-risk",
    "name": "Credit risk (synthetic demo)",
    "task": "classification",
    "description": "Probability that a loan defaults; a synthetic model for the demo.",
    "feature_schema": {
        "features": [
            *[
                _spec(n, "numeric", min=lo, **({"max": hi} if hi is not None else {}))
                for n, (lo, hi) in NUMERIC.items()
            ],
            _spec("region", "categorical", categories=REGIONS),
            _spec("employment_type", "categorical", categories=EMPLOYMENT),
            _spec("housing", "categorical", categories=HOUSING),
            _spec("purpose", "categorical", categories=PURPOSE),
            _spec("education", "categorical", categories=EDUCATION),
            _spec("has_cosigner", "boolean"),
        ]
    },
    "monitoring": {
        "window": {"kind": "time", "seconds": 10, "grace_seconds": 2},
        "segments": ["region"],
    },
    # the class contract: predictions, probability keys and labels are 0 (repaid) or 1
    # (defaulted), and precision, recall and ROC-AUC are about defaults
    "classes": {"classes": [0, 1], "positive_class": 1},
}


@dataclass(frozen=True)
class Drift:
    name: str
    feature: str
    start: float  # progress at which it begins (0..1)
    end: float  # progress at which it is complete


DRIFTS = [
    Drift("sudden income drop", "income", 0.25, 0.25),
    Drift("gradual credit-score decline", "credit_score", 0.35, 0.65),
    Drift("new region appears", "region", 0.5, 0.5),
    Drift("employment data goes missing", "employment_years", 0.6, 0.9),
    Drift("label shift (more defaults)", "label", 0.75, 0.75),
]


def _weight(progress: float, d: Drift) -> float:
    if progress < d.start:
        return 0.0
    if d.end <= d.start:
        return 1.0
    return min(1.0, (progress - d.start) / (d.end - d.start))


def _true_default_logit(f: dict[str, np.ndarray]) -> np.ndarray:
    return (
        -1.0
        + 2.2 * (f["debt_ratio"] - 0.35)
        - 0.012 * (f["credit_score"] - 680)
        + 0.35 * f["num_late_payments"]
        + 1.4 * (f["utilization"] - 0.4)
        - 0.000012 * (f["income"] - 55_000)
        - 0.3 * f["has_cosigner"]
    )


def _features(n: int, rng: np.random.Generator, progress: float) -> dict[str, np.ndarray]:
    w = {d.feature: _weight(progress, d) for d in DRIFTS}
    f: dict[str, Any] = {
        "age": np.clip(rng.normal(42, 12, n), 18, 95).round(),
        "income": rng.lognormal(10.9, 0.45, n) * (1 - 0.4 * w["income"]),
        "debt_ratio": np.clip(rng.gamma(2.0, 0.18, n), 0, 4.5),
        "credit_score": np.clip(rng.normal(690 - 70 * w["credit_score"], 60, n), 300, 850).round(),
        "loan_amount": rng.lognormal(9.6, 0.7, n).round(2),
        "loan_term_months": rng.choice([12, 24, 36, 48, 60, 120, 240, 360], n).astype(float),
        "employment_years": np.clip(rng.gamma(2.0, 3.5, n), 0, 55).round(1),
        "num_credit_lines": rng.poisson(5, n).astype(float),
        "num_late_payments": rng.poisson(0.6, n).astype(float),
        "utilization": np.clip(rng.beta(2, 3, n), 0, 1),
        "savings": rng.lognormal(8.5, 1.1, n).round(2),
        "monthly_expenses": rng.lognormal(7.6, 0.4, n).round(2),
        "dependents": rng.poisson(1.1, n).astype(float),
        "months_at_address": rng.gamma(2, 30, n).round(),
        "region": rng.choice(REGIONS, n, p=[0.25, 0.2, 0.2, 0.2, 0.15]).astype(object),
        "employment_type": rng.choice(EMPLOYMENT, n, p=[0.6, 0.2, 0.15, 0.05]).astype(object),
        "housing": rng.choice(HOUSING, n, p=[0.3, 0.4, 0.3]).astype(object),
        "purpose": rng.choice(PURPOSE, n).astype(object),
        "education": rng.choice(EDUCATION, n, p=[0.35, 0.4, 0.2, 0.05]).astype(object),
        "has_cosigner": rng.random(n) < 0.12,
    }
    if w["region"] > 0:
        f["region"][rng.random(n) < 0.15] = "offshore"
    missing = rng.random(n) < 0.4 * w["employment_years"]
    emp = f["employment_years"].astype(object)
    emp[missing] = None
    f["employment_years"] = emp
    return f


def _rows(f: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
    cols = {k: (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in f.items()}
    return [{k: cols[k][i] for k in cols} for i in range(n)]


def generate(
    n: int, progress: float, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """n prediction events at this point of the stream, and the true default probability
    of each (to draw its label later)."""
    f = _features(n, rng, progress)
    emp = np.array([7.0 if v is None else v for v in f["employment_years"]], dtype=float)
    model_f = {**f, "employment_years": emp, "has_cosigner": f["has_cosigner"].astype(float)}
    p_model = 1 / (1 + np.exp(-_true_default_logit(model_f)))  # the model learned this
    shift = 1.2 * _weight(progress, DRIFTS[-1])
    p_true = 1 / (1 + np.exp(-(_true_default_logit(model_f) + shift)))
    rows = _rows(f, n)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "features": row,
            "prediction": int(p > 0.5),
            # keyed by class, as the contract says: "1" defaulted, "0" repaid
            "probabilities": {"1": round(float(p), 6), "0": round(1 - round(float(p), 6), 6)},
        }
        for row, p in zip(rows, p_model, strict=True)
    ]
    return events, p_true


def labels_for(
    events: list[dict[str, Any]], p_true: np.ndarray, rng: np.random.Generator
) -> list[dict[str, Any]]:
    y = rng.random(len(events)) < p_true
    return [
        {"prediction_event_id": e["event_id"], "actual": int(v)}
        for e, v in zip(events, y, strict=True)
    ]


def reference_rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Training-time data: the stream before any drift."""
    f = _features(n, np.random.default_rng(seed), 0.0)
    return _rows(f, n)
