"""The columnar batch record: one Kafka record on `driftline.predictions.v1` carrying a
batch of one model's prediction events, column by column (docs/schemas/prediction-batch.md).

It sits beside the per-event JSON record on the same topic. A record is a batch when its
header `driftline-format` is `prediction-batch/1`; its value is then `MAGIC` followed by a
MessagePack map (msgspec), so a batch is recognised from its bytes alone too (held records
keep only the value). Numeric features are little-endian float64 arrays (NaN = missing);
other features (strings, or values of mixed types) are arrays of their values as sent;
predictions and event ids are arrays of the same length.

The codec checks the layout (every column as long as `event_id`); per-event checks (ids,
times, types) are the consumer's, so a bad event goes to the DLQ alone and its neighbours
are counted."""

from __future__ import annotations

import math
import sys
import uuid
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = [
    "FORMAT",
    "FORMAT_HEADER",
    "MAGIC",
    "BadBatch",
    "PredictionBatch",
    "decode_batch",
    "encode_batch",
    "is_batch",
]

FORMAT_HEADER = "driftline-format"
FORMAT = b"prediction-batch/1"
MAGIC = b"\x00DLB1"  # no JSON text starts with NUL


class BadBatch(ValueError):
    """The record is not a well-formed batch: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PredictionBatch(msgspec.Struct, forbid_unknown_fields=False):
    """The MessagePack map after MAGIC; see docs/schemas/prediction-batch.md."""

    tenant_id: str
    model_id: str
    model_version: str
    produced_at: str
    event_id: list[str]
    occurred_at: bytes  # float64 little-endian, epoch seconds
    prediction: list[int | float | str | bool | None]
    numeric: dict[str, bytes] = {}  # name -> float64 little-endian, NaN = missing
    integer: list[str] = []  # numeric columns whose values were all integers
    categorical: dict[str, list[str | int | float | bool | None]] = {}
    business_value: bytes | None = None  # float64 little-endian, NaN = none
    probabilities: list[dict[str, float] | None] | None = None
    segment: list[dict[str, str] | None] | None = None
    latency_ms: bytes | None = None  # float64 little-endian, NaN = none

    @property
    def n(self) -> int:
        return len(self.event_id)

    @staticmethod
    def floats(raw: bytes) -> list[float]:
        """A float64 little-endian column as floats (numpy readers: frombuffer '<f8')."""
        a = array("d", raw)
        if sys.byteorder == "big":
            a.byteswap()
        return a.tolist()

    def times(self) -> list[float]:
        return self.floats(self.occurred_at)

    def events(self) -> list[dict[str, Any]]:
        """The batch as per-event dicts, as a per-event record of each would decode (the
        path for models whose windows need whole events: segments, PCA, label joins)."""
        t = self.times()
        nums: dict[str, list[Any]] = {k: self.floats(v) for k, v in self.numeric.items()}
        for k in self.integer:
            if k in nums:
                nums[k] = [v if math.isnan(v) else int(v) for v in nums[k]]
        worth = self.floats(self.business_value) if self.business_value else None
        lat = self.floats(self.latency_ms) if self.latency_ms else None
        out = []
        for i in range(self.n):
            feats: dict[str, Any] = {k: None if math.isnan(v[i]) else v[i] for k, v in nums.items()}
            feats.update({k: v[i] for k, v in self.categorical.items()})
            out.append(
                {
                    "event_id": self.event_id[i],
                    "tenant_id": self.tenant_id,
                    "model_id": self.model_id,
                    "model_version": self.model_version,
                    "occurred_at": t[i],
                    "produced_at": self.produced_at,
                    "features": feats,
                    "prediction": self.prediction[i],
                    "probabilities": self.probabilities[i] if self.probabilities else None,
                    "segment": (self.segment[i] if self.segment else None) or {},
                    "business_value": None if worth is None or math.isnan(worth[i]) else worth[i],
                    "latency_ms": None if lat is None or math.isnan(lat[i]) else lat[i],
                }
            )
        return out


_decoder = msgspec.msgpack.Decoder(PredictionBatch)
_encoder = msgspec.msgpack.Encoder()


def is_batch(value: bytes | None, headers: Sequence[tuple[str, bytes]] | None = None) -> bool:
    """Whether a record is a batch record: by its header, else by its leading bytes."""
    if headers:
        for k, v in headers:
            if k == FORMAT_HEADER:
                return v == FORMAT
    return value is not None and value.startswith(MAGIC)


def _pack(values: list[float]) -> bytes:
    a = array("d", values)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def _f64(values: Iterable[Any], n: int, what: str) -> bytes:
    out = [math.nan] * n
    for i, v in enumerate(values):
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise BadBatch(f"{what}[{i}]: expected a number, got {type(v).__name__}")
            out[i] = float(v)
    return _pack(out)


def _epoch(ts: Any, now: float) -> float:
    if ts is None:
        return now
    if isinstance(ts, datetime):
        return ts.timestamp()
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    t = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise BadBatch(f"occurred_at {ts!r} has no time zone")
    return t.timestamp()


_NONE = type(None)
_NUMERIC_TYPES = frozenset((int, float, _NONE))


def _columns(
    features: list[dict[str, Any]],
) -> Iterable[tuple[str, list[Any], frozenset[type] | None]]:
    """(name, values, their types or None) per feature, in the order names first appear.
    When every event has the same feature names in the same order (the common case), the
    columns are one transpose and the types one set per column."""
    keys = tuple(features[0]) if features else ()
    if all(tuple(f) == keys for f in features):
        for name, col in zip(keys, zip(*(f.values() for f in features), strict=True), strict=True):
            yield name, list(col), frozenset(map(type, col))
        return
    names: dict[str, None] = {}
    for f in features:
        names.update(dict.fromkeys(f))
    for name in names:
        yield name, [f.get(name) for f in features], None


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def encode_batch(
    tenant_id: str,
    model_id: str,
    model_version: str,
    events: Sequence[dict[str, Any]],
    *,
    numeric: Sequence[str] | None = None,
) -> bytes:
    """One model's events (the SDK's shape: features, prediction, optional event_id,
    timestamp, probabilities, segment, business_value, latency_ms) as a batch record value.
    A feature is a numeric column if all its values are numbers or None (or it is named in
    `numeric`), else a categorical column of strings."""
    n = len(events)
    now_dt = datetime.now(UTC)
    now = now_dt.timestamp()
    num_cols: dict[str, bytes] = {}
    integer: list[str] = []
    cat_cols: dict[str, list[str | int | float | bool | None]] = {}
    forced = set(numeric or ())
    for name, col, kinds in _columns([e["features"] for e in events]):
        if kinds is not None and kinds <= _NUMERIC_TYPES:  # exactly int, float or None
            num_cols[name] = _pack(col if _NONE not in kinds else [_nan(v) for v in col])
            if int in kinds and float not in kinds:
                integer.append(name)
        elif name in forced or all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in col
        ):
            num_cols[name] = _f64(col, n, f"features.{name}")
            if all(v is None or type(v) is int for v in col) and any(v is not None for v in col):
                integer.append(name)
        else:
            for i, v in enumerate(col):
                if v is not None and not isinstance(v, str | int | float):
                    raise BadBatch(
                        f"features.{name}[{i}]: expected a scalar, got {type(v).__name__}"
                    )
            cat_cols[name] = col
    has = {k: any(e.get(k) is not None for e in events) for k in ("business_value", "latency_ms")}
    batch = PredictionBatch(
        tenant_id=tenant_id,
        model_id=model_id,
        model_version=model_version,
        produced_at=now_dt.isoformat().replace("+00:00", "Z"),
        event_id=[str(e.get("event_id") or uuid.uuid4()) for e in events],
        occurred_at=_pack([_epoch(e.get("timestamp", e.get("occurred_at")), now) for e in events]),
        prediction=[e["prediction"] for e in events],
        numeric=num_cols,
        integer=integer,
        categorical=cat_cols,
        business_value=(
            _f64((e.get("business_value") for e in events), n, "business_value")
            if has["business_value"]
            else None
        ),
        probabilities=(
            [e.get("probabilities") for e in events]
            if any(e.get("probabilities") for e in events)
            else None
        ),
        segment=[e.get("segment") for e in events]
        if any(e.get("segment") for e in events)
        else None,
        latency_ms=(
            _f64((e.get("latency_ms") for e in events), n, "latency_ms")
            if has["latency_ms"]
            else None
        ),
    )
    return MAGIC + _encoder.encode(batch)


def decode_batch(value: bytes | None) -> PredictionBatch:
    """A batch record's value, its layout checked (every column as long as `event_id`)."""
    if value is None or not value.startswith(MAGIC):
        raise BadBatch("not a prediction batch: the value does not start with the batch magic")
    try:
        b = _decoder.decode(value[len(MAGIC) :])
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise BadBatch(f"not a prediction batch: {e}") from e
    n = b.n
    if not (b.tenant_id and b.model_id and b.model_version):
        raise BadBatch("prediction batch: tenant_id, model_id and model_version must be non-empty")
    lengths = {"occurred_at": len(b.occurred_at) // 8, "prediction": len(b.prediction)}
    if len(b.occurred_at) % 8:
        lengths["occurred_at"] = -1
    for k, raw in b.numeric.items():
        lengths[f"numeric.{k}"] = len(raw) // 8 if len(raw) % 8 == 0 else -1
    for k, col in b.categorical.items():
        lengths[f"categorical.{k}"] = len(col)
    for name in ("business_value", "latency_ms"):
        raw = getattr(b, name)
        if raw is not None:
            lengths[name] = len(raw) // 8 if len(raw) % 8 == 0 else -1
    for name in ("probabilities", "segment"):
        col = getattr(b, name)
        if col is not None:
            lengths[name] = len(col)
    wrong = [k for k, m in lengths.items() if m != n]
    if wrong:
        raise BadBatch(
            f"prediction batch of {n} events: columns of another length: {', '.join(wrong)}"
        )
    if "\x00" in b.tenant_id + b.model_id + b.model_version:
        raise BadBatch("prediction batch: a string holds NUL, which PostgreSQL cannot store")
    return b
