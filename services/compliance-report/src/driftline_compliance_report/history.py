"""Monitoring history from InfluxDB (InfluxQL, as the dashboards read it): per model, the
drift windows, drift per feature, and performance windows of a period.

Each window says both what drift detection decided for the dataset (`dataset_drift`: the
share of drifted input features reached the model's threshold) and which input features
drifted in it (`drifted_features`, from `drift_feature` at the window's time), and whether
the prediction's distribution drifted (`prediction_drift`): a report counts each apart."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["History", "ModelHistory", "load_history"]


class Reader(Protocol):
    async def query(self, influxql: str, *, epoch: str = "ms") -> list[dict[str, Any]]: ...


@dataclass
class ModelHistory:
    windows: list[dict[str, Any]] = field(default_factory=list)  # time, events, share, ...
    features: dict[str, dict[str, int]] = field(default_factory=dict)  # windows, drifted
    performance: list[dict[str, Any]] = field(default_factory=list)  # time, labelled, metrics


History = dict[str, ModelHistory]
PREDICTION = "prediction"  # drift_feature's name for the prediction's own distribution
_NOT_METRICS = frozenset(
    {"time", "labelled", "model", "version", "tenant", "segment", "_measurement"}
)


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _t(d: datetime) -> str:
    return _q(d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


async def load_history(
    reader: Reader, tenant: str, start: datetime, end: datetime, model_id: str | None = None
) -> History:
    """Whole-population windows only (segmented windows are on the dashboards)."""
    where = f"tenant = {_q(tenant)} AND time >= {_t(start)} AND time < {_t(end)} AND segment = ''"
    if model_id is not None:
        where += f" AND model = {_q(model_id)}"
    out: History = defaultdict(ModelHistory)
    for r in await reader.query(
        "SELECT events, drifted_share, dataset_drift, quality_score FROM drift_window "
        f"WHERE {where} GROUP BY model, version"
    ):
        out[r["model"]].windows.append(
            {
                "time": _when(r["time"]),
                "version": r.get("version", ""),
                "events": int(r["events"] or 0),
                "drifted_share": float(r["drifted_share"] or 0.0),
                "dataset_drift": bool(r["dataset_drift"]),
                "quality_score": float(r["quality_score"] or 0.0),
                "drifted_features": [],
                "prediction_drift": False,
            }
        )
    for r in await reader.query(
        "SELECT count(drifted) AS windows, sum(drifted) AS drifted FROM drift_feature "
        f"WHERE {where} GROUP BY model, feature"
    ):
        out[r["model"]].features[r["feature"]] = {
            "windows": int(r["windows"] or 0),
            "drifted": int(r["drifted"] or 0),
        }
    # which features drifted in which window (a window's verdicts share its point's time);
    # only the drifted verdicts are read, so a month of windows stays a small answer
    drifted_at: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in await reader.query(
        f"SELECT drifted FROM drift_feature WHERE {where} AND drifted = 1 "
        "GROUP BY model, version, feature"
    ):
        key = (r["model"], r.get("version", ""), _when(r["time"]))
        drifted_at[key].append(str(r["feature"]))
    for model, h in out.items():
        for w in h.windows:
            names = sorted(drifted_at.get((model, w["version"], w["time"]), []))
            w["prediction_drift"] = PREDICTION in names
            w["drifted_features"] = [n for n in names if n != PREDICTION]
    for r in await reader.query(f"SELECT * FROM performance WHERE {where} GROUP BY model, version"):
        metrics = {
            k: float(v)
            for k, v in r.items()
            if k
            not in ("time", "labelled", "model", "version", "tenant", "segment", "_measurement")
            and isinstance(v, int | float)
        }
        out[r["model"]].performance.append(
            {
                "time": _when(r["time"]),
                "version": r.get("version", ""),
                "labelled": int(r.get("labelled") or 0),
                "metrics": metrics,
            }
        )
    for h in out.values():
        h.windows.sort(key=lambda w: w["time"])
        h.performance.sort(key=lambda w: w["time"])
    return dict(out)
