"""Per-record decoding of the stream processors' input, so that one bad record goes to the
DLQ with its reason and its neighbours are processed.

Each check is one the processors rely on later (a window key is built from the version,
the event time is parsed, features are read as a mapping, strings end up in PostgreSQL
text and jsonb, which cannot hold NUL). Decoding is by hand over orjson's dicts: the hot
path avoids a pydantic model per event."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["BadRecord", "decode_actual", "decode_prediction"]


class BadRecord(ValueError):
    """This record cannot be used: `reason` says why, `error_type` is its class."""

    def __init__(self, reason: str, error_type: str = "schema_mismatch") -> None:
        super().__init__(reason)
        self.reason, self.error_type = reason, error_type


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _load(value: bytes | None, what: str) -> dict[str, Any]:
    if value is None:
        raise BadRecord(f"empty record value (tombstone) where {what} was expected", "empty_value")
    try:
        ev = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise BadRecord(f"invalid JSON: {e}", "invalid_json") from e
    if not isinstance(ev, dict):
        raise BadRecord(f"not {what}: expected a JSON object, got {_kind(ev)}")
    if b"\\u0000" in value and _has_nul(ev):
        raise BadRecord(
            f"not {what}: a string holds NUL (\\u0000), which PostgreSQL text cannot store",
            "unstorable_text",
        )
    return ev


def _has_nul(v: Any) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any("\x00" in k or _has_nul(x) for k, x in v.items())
    if isinstance(v, list):
        return any(_has_nul(x) for x in v)
    return False


def _text(ev: dict[str, Any], name: str, what: str) -> None:
    v = ev.get(name)
    if not isinstance(v, str) or not v:
        got = "missing" if name not in ev else f"got {_kind(v)}"
        raise BadRecord(f"not {what}: {name}: expected a non-empty string, {got}")


def _time(ev: dict[str, Any], what: str) -> None:
    v = ev.get("occurred_at")
    try:
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"expected an ISO 8601 time or epoch seconds, got {_kind(v)}")
        if isinstance(v, str):
            t = datetime.fromisoformat(v)
            if t.tzinfo is None:
                raise ValueError(f"{v!r} has no time zone")
            t.timestamp()
        elif not math.isfinite(v):
            raise ValueError(f"{v!r} is not a finite number")
        else:
            datetime.fromtimestamp(v, UTC)  # within the years a window can be built for
    except (ValueError, OverflowError, OSError) as e:
        missing = "occurred_at" not in ev
        raise BadRecord(f"not {what}: occurred_at: {'missing' if missing else e}") from e


def _mapping(ev: dict[str, Any], name: str, what: str, *, required: bool) -> None:
    v = ev.get(name)
    if v is None and not required:
        return
    if not isinstance(v, dict):
        got = "missing" if name not in ev else f"got {_kind(v)}"
        raise BadRecord(f"not {what}: {name}: expected an object, {got}")


def _scalar(ev: dict[str, Any], name: str, what: str) -> None:
    if name not in ev:
        raise BadRecord(f"not {what}: {name}: missing")
    v = ev[name]
    if isinstance(v, dict) or (isinstance(v, list) and not all(_number(x) for x in v)):
        raise BadRecord(f"not {what}: {name}: expected a number, string, bool or numbers")


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def decode_prediction(value: bytes | None) -> dict[str, Any]:
    """A prediction event as a dict whose fields have the types the processor reads."""
    what = "a prediction event"
    ev = _load(value, what)
    for name in ("event_id", "tenant_id", "model_id", "model_version"):
        _text(ev, name, what)
    _time(ev, what)
    _mapping(ev, "features", what, required=True)
    _scalar(ev, "prediction", what)
    _mapping(ev, "probabilities", what, required=False)
    probs = ev.get("probabilities")
    if probs and not all(_number(p) for p in probs.values()):
        raise BadRecord(f"not {what}: probabilities: every value must be a number")
    _mapping(ev, "segment", what, required=False)
    if ev.get("segment") and not all(isinstance(s, str) for s in ev["segment"].values()):
        raise BadRecord(f"not {what}: segment: every value must be a string")
    return ev


def decode_actual(value: bytes | None) -> dict[str, Any]:
    """An actual (label) event as a dict whose fields have the types the processor reads."""
    what = "an actual event"
    ev = _load(value, what)
    for name in ("tenant_id", "model_id", "prediction_event_id"):
        _text(ev, name, what)
    _time(ev, what)
    _scalar(ev, "actual", what)
    _mapping(ev, "segment", what, required=False)
    return ev
