"""A pandas DataFrame (one row per prediction) to events for `log_predictions`."""

from __future__ import annotations

from typing import Any

__all__ = ["events_from_dataframe"]


def events_from_dataframe(
    df: Any,
    *,
    prediction: str,
    features: list[str] | None = None,
    probabilities: list[str] | None = None,
    event_id: str | None = None,
    timestamp: str | None = None,
    segments: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Columns: `prediction` holds the output, `features` the inputs (default: every other
    column), `probabilities` class-probability columns, optional id, time and segment
    columns. Missing values (NaN, None) become null."""
    skip = {prediction, event_id, timestamp, *(probabilities or []), *(segments or [])}
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
