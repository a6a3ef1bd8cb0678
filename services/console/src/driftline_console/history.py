"""/api/history/{model_id}: a model's stored windows for the Model view (the heat map of drift
per feature over time, the latest window's distributions, quality, performance with late
labels, business value), read from InfluxDB as the dashboards and the compliance reports
read it (InfluxQL; docs/drift-detection.md, "InfluxDB measurements"). The caller's tenant
only, the whole population only (`segment = ''`), the last `hours`, at most `limit` windows
(the latest); times ISO-8601, oldest first. A model the tenant does not have answers empty
lists, as a model with no window yet does."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from driftline_core.auth import Authenticator, Principal
from driftline_core.errors import UnavailableError
from driftline_core.influx.reader import InfluxQLReader

__all__ = ["history_router", "load"]

MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"  # as the registry allows
PERFORMANCE_NOT_METRICS = frozenset(
    {"time", "labelled", "business_value_wrong", "model", "version", "tenant", "segment"}
)


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


async def load(
    reader: InfluxQLReader, tenant: str, model: str, hours: float, limit: int
) -> dict[str, Any]:
    where = (
        f"tenant = {_q(tenant)} AND model = {_q(model)} AND segment = '' "
        f"AND time >= now() - {int(hours * 3600)}s"
    )
    latest = f"ORDER BY time DESC LIMIT {limit}"
    windows = [
        {
            "time": _when(r["time"]),
            "version": r.get("version", ""),
            "events": int(r.get("events") or 0),
            "drifted_share": _num(r.get("drifted_share")),
            "dataset_drift": bool(r.get("dataset_drift")),
            "quality_score": _num(r.get("quality_score")),
            "business_value_sum": _num(r.get("business_value_sum")),
            "business_value_mean": _num(r.get("business_value_mean")),
            "business_value_count": _num(r.get("business_value_count")),
        }
        for r in await reader.query(f"SELECT * FROM drift_window WHERE {where} {latest}")
    ]
    windows.sort(key=lambda w: w["time"])
    features = [
        {
            "time": _when(r["time"]),
            "feature": r["feature"],
            "statistic": _num(r.get("statistic")),
            "threshold": _num(r.get("threshold")),
            "p_value": None if _num(r.get("p_value")) == -1 else _num(r.get("p_value")),
            "drifted": bool(r.get("drifted")),
        }
        for r in await reader.query(
            "SELECT statistic, threshold, p_value, drifted FROM drift_feature "
            f"WHERE {where} GROUP BY feature {latest}"
        )
    ]
    if windows:  # only the window kept: older ones beyond `limit` are left out
        first = windows[0]["time"]
        features = [f for f in features if f["time"] >= first]
    features.sort(key=lambda f: (f["time"], f["feature"]))
    bins: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if windows:
        end = datetime.fromisoformat(windows[-1]["time"].replace("Z", "+00:00"))
        at = int(end.timestamp() * 1000)
        for r in await reader.query(
            "SELECT reference_share, current_share, current_count, upper FROM feature_bins "
            f"WHERE {where} AND time = {at}ms GROUP BY feature, bin"
        ):
            bins[r["feature"]].append(
                {
                    "bin": r["bin"],
                    "upper": _num(r.get("upper")),
                    "reference_share": _num(r.get("reference_share")),
                    "current_share": _num(r.get("current_share")),
                    "current_count": int(r.get("current_count") or 0),
                }
            )
    for rows in bins.values():
        rows.sort(key=lambda b: (b["upper"] is None, b["upper"] or 0.0, b["bin"]))
    performance = [
        {
            "time": _when(r["time"]),
            "version": r.get("version", ""),
            "labelled": int(r.get("labelled") or 0),
            "metrics": {
                k: float(v)
                for k, v in r.items()
                if k not in PERFORMANCE_NOT_METRICS
                and not k.startswith("_")
                and _num(v) is not None
            },
            "business_value_wrong": _num(r.get("business_value_wrong")),
        }
        for r in await reader.query(f"SELECT * FROM performance WHERE {where} {latest}")
    ]
    performance.sort(key=lambda p: p["time"])
    return {
        "model_id": model,
        "hours": hours,
        "windows": windows,
        "features": features,
        "bins": dict(bins),
        "performance": performance,
    }


def history_router(auth: Authenticator, reader: InfluxQLReader) -> APIRouter:
    r = APIRouter(tags=["console"])
    reader_dep = Depends(auth.require("read"))

    @r.get("/api/history/{model_id}")
    async def history(
        model_id: str = Path(pattern=MODEL_ID),
        hours: float = Query(default=24.0, gt=0, le=24 * 90),
        limit: int = Query(default=500, ge=1, le=5000),
        who: Principal = reader_dep,
    ) -> dict[str, Any]:
        try:
            return await load(reader, who.tenant_id, model_id, hours, limit)
        except UnavailableError as e:
            raise HTTPException(503, f"the stored history cannot be read: {e}") from e

    return r
