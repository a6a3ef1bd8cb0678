"""A pandas DataFrame (one row per prediction) to events, and `Client.log(df, ...)`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client, IngestReport

__all__ = ["events_from_dataframe", "log_frame"]


def events_from_dataframe(
    df: Any,
    *,
    prediction: str,
    features: list[str] | None = None,
    probabilities: list[str] | None = None,
    event_id: str | None = None,
    timestamp: str | None = None,
    segments: list[str] | None = None,
    exclude: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Columns: `prediction` holds the output, `features` the inputs (default: every other
    column but `exclude`), `probabilities` class-probability columns, optional id, time and
    segment columns. Missing values (NaN, None) become null."""
    skip = {
        prediction,
        event_id,
        timestamp,
        *(probabilities or []),
        *(segments or []),
        *(exclude or []),
    }
    feats = features or [c for c in df.columns if c not in skip]
    clean = df.astype(object).where(df.notna(), None)
    out = []
    for row in clean.to_dict(orient="records"):
        ev: dict[str, Any] = {"features": {c: row[c] for c in feats}, "prediction": row[prediction]}
        if probabilities:
            ev["probabilities"] = {c: float(row[c]) for c in probabilities}
        if event_id:
            ev["event_id"] = str(row[event_id])
        if timestamp:
            ts = row[timestamp]
            ev["timestamp"] = ts.isoformat() if hasattr(ts, "isoformat") else str(ts)
        if segments:
            ev["segment"] = {c: str(row[c]) for c in segments}
        out.append(ev)
    return out


def log_frame(
    client: Client,
    df: Any,
    *,
    model: str,
    version: str,
    prediction: str,
    labels: str | None = None,
    event_id: str | None = None,
    **columns: Any,
) -> IngestReport:
    """Log every row of `df` as a prediction of `model` `version` and, when `labels` names
    a column, each non-null label as that prediction's actual, in one call. Event ids come
    from the `event_id` column or are chosen here (so a retry is recognised). `columns`:
    features, probabilities, timestamp, segments of `events_from_dataframe`. The report
    counts predictions; labels refused are added to its `rejected` with `"label": True`."""
    events = events_from_dataframe(
        df,
        prediction=prediction,
        event_id=event_id,
        exclude=[labels] if labels else None,
        **columns,
    )
    for ev in events:
        ev.setdefault("event_id", str(uuid.uuid4()))
    report = client.log_predictions(model, version, events)
    if labels:
        values = df[labels].astype(object).where(df[labels].notna(), None).tolist()
        accepted = set(report.event_ids)
        actuals = [
            {"prediction_event_id": ev["event_id"], "actual": v}
            for ev, v in zip(events, values, strict=True)
            if v is not None and ev["event_id"] in accepted
        ]
        if actuals:
            got = client.log_actuals(model, actuals)
            report.rejected += [{**r, "label": True} for r in got.rejected]
    return report
