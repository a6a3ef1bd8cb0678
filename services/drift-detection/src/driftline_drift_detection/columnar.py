"""Typed columnar decoding of a poll's per-event prediction records, one model at a time.

The records of one Kafka key (`tenant:model`) in a poll are decoded in one msgspec call
into typed structs (a struct per model whose fields are the model's profiled features,
numeric ones `float | None`, categorical ones `str | None`), then turned into numpy
columns: no dict per event. Validation is msgspec's, in C, with the same rules as
`decoding` (non-empty ids, an ISO 8601 time with a zone or epoch seconds, typed
probabilities and segment).

This is a fast path, not a second set of rules: whenever the group does not decode
cleanly (a bad record, a value of another type than the profile's, a NUL, a tombstone, an
event of another model under the key), `decode_group` returns None and the caller decodes
those records one by one with `decoding`, which names each bad record's reason for the DLQ
and counts type errors exactly as before."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from driftline_core.events.batch import PredictionBatch
from driftline_stats.detector import FeatureReference
from driftline_stats.profile import PREDICTION

__all__ = ["ColumnDecoder", "Columns", "batch_columns", "batch_problems", "decoder_for"]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


@dataclass
class Columns:
    """One model's events of a poll, as columns (row i is the i-th record in offset order)."""

    n: int
    occurred_at: npt.NDArray[np.float64]
    versions: list[str]
    numeric_names: list[str]
    numeric: npt.NDArray[np.float64]  # n x len(numeric_names), NaN = missing
    categorical: dict[str, list[Any]]
    predictions: list[Any]
    business_value: npt.NDArray[np.float64]  # NaN where the event carries none

    def take(self, idx: npt.NDArray[np.intp]) -> Columns:
        rows = idx.tolist()
        return Columns(
            len(rows),
            self.occurred_at[idx],
            list(map(self.versions.__getitem__, rows)),
            self.numeric_names,
            self.numeric[idx],
            {k: list(map(v.__getitem__, rows)) for k, v in self.categorical.items()},
            list(map(self.predictions.__getitem__, rows)),
            self.business_value[idx],
        )


class ColumnDecoder:
    """The decoder of one model's feature set."""

    def __init__(self, refs: list[FeatureReference]) -> None:
        numeric = [r.name for r in refs if r.kind == "numeric" and r.name != PREDICTION]
        categorical = [r.name for r in refs if r.kind == "categorical" and r.name != PREDICTION]
        self.numeric, self.categorical = numeric, categorical
        fields: list[tuple[str, Any, Any]] = [
            (f"n{i}", float | None, None) for i in range(len(numeric))
        ]
        fields += [(f"c{i}", str | None, None) for i in range(len(categorical))]
        rename = {f"n{i}": n for i, n in enumerate(numeric)}
        rename |= {f"c{i}": n for i, n in enumerate(categorical)}
        feats = msgspec.defstruct(
            "Features", fields, rename=rename, forbid_unknown_fields=False, gc=False
        )
        event = msgspec.defstruct(
            "Prediction",
            [
                ("event_id", NonEmpty),
                ("tenant_id", NonEmpty),
                ("model_id", NonEmpty),
                ("model_version", NonEmpty),
                ("occurred_at", AwareTime | float),
                ("features", feats),
                ("prediction", int | float | str | bool | None),
                ("probabilities", dict[str, float] | None, None),
                ("segment", dict[str, str] | None, None),
                ("business_value", float | None, None),
            ],
            forbid_unknown_fields=False,
            gc=False,  # no reference cycles: not tracked by the collector
        )
        self._n = len(numeric)
        self._decoder: msgspec.json.Decoder[list[Any]] = msgspec.json.Decoder(list[event])  # type: ignore[valid-type]

    def decode_group(self, tenant: str, model: str, values: list[bytes | None]) -> Columns | None:
        """The records' columns, or None if any record needs the per-record path."""
        if None in values:
            return None
        if not values:
            empty: dict[str, list[Any]] = {name: [] for name in self.categorical}
            no_rows = np.empty((0, self._n))
            return Columns(0, np.empty(0), [], self.numeric, no_rows, empty, [], np.empty(0))
        joined = b",".join(values)  # type: ignore[arg-type]
        if b"\\u0000" in joined:  # a NUL in some record (the escape has no comma in it)
            return None
        try:
            events = self._decoder.decode(b"[" + joined + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        # one pass in C over the events' fields, then columns (no Python per event)
        tenants, models, times_, feats, versions, preds, worth_ = zip(
            *map(_FIELDS, events), strict=True
        )
        if set(tenants) != {tenant} or set(models) != {model}:
            return None
        kinds = set(map(type, times_))
        if kinds == {datetime}:
            times = np.array(list(map(datetime.timestamp, times_)), dtype=np.float64)
        elif kinds == {float}:
            times = np.array(times_, dtype=np.float64)
        elif kinds <= {float, datetime}:
            times = np.array(
                [t.timestamp() if isinstance(t, datetime) else t for t in times_], np.float64
            )
        else:
            return None
        if not np.isfinite(times).all():
            return None
        n, k = len(events), self._n
        by_feature = list(zip(*map(msgspec.structs.astuple, feats), strict=True))
        numeric = (  # a row per feature, None as NaN; rows of events as its transpose
            np.array(by_feature[:k], dtype=np.float64).T
            if k and by_feature
            else np.empty((n, k), np.float64)
        )
        categorical = {
            name: list(by_feature[k + j]) if by_feature else [None] * n
            for j, name in enumerate(self.categorical)
        }
        return Columns(
            n,
            times,
            list(versions),
            self.numeric,
            numeric,
            categorical,
            list(preds),
            np.array(worth_, dtype=np.float64),  # None (no business value) as NaN
        )


_FIELDS = operator.attrgetter(
    "tenant_id", "model_id", "occurred_at", "features", "model_version", "prediction",
    "business_value",
)  # fmt: skip


_CACHE: dict[int, tuple[list[FeatureReference], ColumnDecoder]] = {}


def decoder_for(refs: list[FeatureReference]) -> ColumnDecoder:
    """The decoder of this reference list (built once per list object)."""
    hit = _CACHE.get(id(refs))
    if hit is not None and hit[0] is refs:
        return hit[1]
    if len(_CACHE) > 4096:  # reference lists replaced by registry updates
        _CACHE.clear()
    dec = ColumnDecoder(refs)
    _CACHE[id(refs)] = (refs, dec)
    return dec


_MIN_EPOCH, _MAX_EPOCH = -62135596800.0, 253402300799.0  # what a datetime can hold


def batch_problems(batch: PredictionBatch) -> dict[int, str]:
    """Per-event checks of a batch record, as `decoding` makes for a per-event record:
    the events that cannot be used, with the reason."""
    what = "not a prediction event"
    bad: dict[int, str] = {}
    times = np.frombuffer(batch.occurred_at, dtype="<f8")
    wrong_time = ~(np.isfinite(times) & (times >= _MIN_EPOCH) & (times <= _MAX_EPOCH))
    for i in np.flatnonzero(wrong_time).tolist():
        bad[i] = f"{what}: occurred_at: {times[i]!r} is not a time a datetime can hold"
    if "" in batch.event_id:
        for i, eid in enumerate(batch.event_id):
            if not eid:
                bad[i] = f"{what}: event_id: expected a non-empty string, got an empty one"
    texts: list[tuple[str, list[Any]]] = [("event_id", batch.event_id)]
    texts += [(f"features.{k}", v) for k, v in batch.categorical.items()]
    texts.append(("prediction", batch.prediction))
    if batch.segment:
        texts.append(("segment", [s and "".join([*s, *s.values()]) for s in batch.segment]))
    for name, col in texts:
        if not _may_hold_nul(col):
            continue
        for i, v in enumerate(col):
            if isinstance(v, str) and "\x00" in v:
                bad[i] = (
                    f"{what}: {name}: a string holds NUL (\\u0000), which PostgreSQL text "
                    "cannot store"
                )
    return bad


def _may_hold_nul(col: list[Any]) -> bool:
    """False if no string of the column holds NUL (checked in C, all strings at once)."""
    try:
        return "\x00" in "".join(filter(None, col))
    except TypeError:  # values that are not strings (numbers, booleans) beside them
        return str in set(map(type, col))


def batch_columns(
    dec: ColumnDecoder, batch: PredictionBatch, keep: npt.NDArray[np.intp] | None
) -> Columns | None:
    """A batch record's events (those at `keep`, else all) as the model's columns, or None
    if a profiled numeric feature came as values of another type (the per-event path then
    counts its type errors)."""
    n = batch.n
    numeric = np.full((len(dec.numeric), n), np.nan)  # a row per feature, as the columns came
    for j, name in enumerate(dec.numeric):
        raw = batch.numeric.get(name)
        if raw is not None:
            numeric[j] = np.frombuffer(raw, dtype="<f8")
        elif name in batch.categorical:
            return None
    categorical: dict[str, list[Any]] = {}
    integer = set(batch.integer)
    for name in dec.categorical:
        col = batch.categorical.get(name)
        if col is None and name in batch.numeric:
            values = PredictionBatch.floats(batch.numeric[name])
            col = [None if math.isnan(v) else int(v) if name in integer else v for v in values]
        categorical[name] = list(col) if col is not None else [None] * n
    worth = (
        np.frombuffer(batch.business_value, dtype="<f8").astype(np.float64)
        if batch.business_value
        else np.full(n, np.nan)
    )
    cols = Columns(
        n,
        np.frombuffer(batch.occurred_at, dtype="<f8").astype(np.float64),
        [batch.model_version] * n,
        dec.numeric,
        numeric.T,
        categorical,
        list(batch.prediction),
        worth,
    )
    return cols if keep is None else cols.take(keep)
