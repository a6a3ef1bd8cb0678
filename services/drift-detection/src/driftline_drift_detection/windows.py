"""Tumbling windows by event time, per (tenant, model, version). A batch of raw events is
grouped by window and each feature's values go into its profile as one numpy array.
Windows close when the model's watermark (latest event time seen) passes their end plus
the grace period, or when the model has been quiet for `idle_close_s` (wall clock). Events
for a window that closed already are too late: counted (`too_late`) and named to the caller
(`rejected`), which dead-letters each with its reason. Pure logic: the stream processor
persists `to_json()` and feeds `add()`.

Besides the whole population (segment ""), each segment key of the monitoring config
(`segments: ["region"]`) gives windows per value (`region=EU`), read from the event's
`segment` or else its features; past `MAX_SEGMENT_VALUES` distinct values per key the rest
share `key=__other__`, so memory stays bounded. The model's output is profiled as the
pseudo-feature `PREDICTION`, and rows of numeric features feed the PCA accumulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from driftline_stats.detector import FeatureReference
from driftline_stats.multivariate import PCAReference, PCAWindow
from driftline_stats.profile import PREDICTION
from driftline_stats.window import CategoricalWindow, NumericWindow, update_numeric

from .columnar import Columns

__all__ = [
    "MAX_SEGMENT_VALUES",
    "ModelKey",
    "WindowKey",
    "WindowManager",
    "WindowState",
    "bounded",
    "epoch",
    "segment_of",
    "too_late_reason",
]

MAX_SEGMENT_VALUES = 50

ModelKey = tuple[str, str]  # tenant, model
_BAD = -1.2345e308  # marks a value of the wrong type in the numeric matrix
WindowKey = tuple[str, str, str, str, float]  # tenant, model, version, segment, start (epoch)


@dataclass
class WindowState:
    key: WindowKey
    length: float
    partition: int
    events: int = 0
    late: int = 0
    type_errors: dict[str, int] = field(default_factory=dict)
    profiles: dict[str, NumericWindow | CategoricalWindow] = field(default_factory=dict)
    pca: PCAWindow | None = None
    value_sum: float = 0.0  # business_value of the window's events (those that carry one)
    value_n: int = 0

    @property
    def start(self) -> float:
        return self.key[4]

    @property
    def end(self) -> float:
        return self.key[4] + self.length

    @property
    def segment(self) -> dict[str, str]:
        k, _, v = self.key[3].partition("=")
        return {k: v} if k else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "partition": self.partition,
            "events": self.events,
            "late": self.late,
            "type_errors": self.type_errors,
            "profiles": {
                n: (
                    {"kind": "numeric", **p.to_dict()}
                    if isinstance(p, NumericWindow)
                    else {
                        "kind": "categorical",
                        "categories": p.categories,
                        "counts": p.counts.tolist(),
                        "unseen": p.unseen,
                        "missing": p.missing,
                        "unseen_other": p.unseen_other,
                    }
                )
                for n, p in self.profiles.items()
            },
            "pca": self.pca.to_dict() if self.pca is not None else None,
            "value_sum": self.value_sum,
            "value_n": self.value_n,
        }

    def to_bytes(self) -> bytes:
        """The checkpointed form: MessagePack after a magic prefix, numeric profiles with
        their arrays as raw bytes and the KLL sketch in its compact serialisation (decision
        44); about a third of `to_json`'s size."""
        d = self.to_json()
        d["profiles"] = {
            n: (
                {"kind": "numeric", **p.to_compact()}
                if isinstance(p, NumericWindow)
                else d["profiles"][n]
            )
            for n, p in self.profiles.items()
        }
        return STATE_MAGIC + _ENCODER.encode(d)

    @classmethod
    def from_bytes(cls, key: WindowKey, raw: bytes) -> WindowState:
        if not raw.startswith(STATE_MAGIC):
            raise ValueError("not a checkpointed window state")
        d = msgspec.msgpack.decode(raw[len(STATE_MAGIC) :])
        profiles = d.pop("profiles")
        w = cls.from_json(key, {**d, "profiles": {}})
        for name, p in profiles.items():  # in their order, as they were
            w.profiles[name] = (
                NumericWindow.from_compact(p) if p["kind"] == "numeric" else _categorical(p)
            )
        return w

    @classmethod
    def from_json(cls, key: WindowKey, d: dict[str, Any]) -> WindowState:
        profiles: dict[str, NumericWindow | CategoricalWindow] = {}
        for name, p in d["profiles"].items():
            profiles[name] = (
                NumericWindow.from_dict(p) if p["kind"] == "numeric" else _categorical(p)
            )
        return cls(
            key,
            d["length"],
            d["partition"],
            d["events"],
            d["late"],
            dict(d["type_errors"]),
            profiles,
            PCAWindow.from_dict(d["pca"]) if d.get("pca") else None,
            float(d.get("value_sum", 0.0)),
            int(d.get("value_n", 0)),
        )


STATE_MAGIC = b"DLW1"  # a window state in binary (`WindowState.to_bytes`)


def _plain(o: Any) -> Any:
    """numpy scalars (a reference's categories are numpy strings) as Python values."""
    if isinstance(o, str):
        return str(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot checkpoint a {type(o).__name__}")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_plain)


def _categorical(p: dict[str, Any]) -> CategoricalWindow:
    c = CategoricalWindow(
        categories=list(p["categories"]),
        counts=np.asarray(p["counts"], np.int64),
        unseen=dict(p["unseen"]),
        missing=p["missing"],
    )
    c.unseen_other = p["unseen_other"]
    return c


def _iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(t)


def too_late_reason(what: str, t: float, start: float, length: float, closed: float) -> str:
    """Why an event (or label) of time t was not counted: its window closed already."""
    return (
        f"too late: {what} of {_iso(t)} belongs to the window {_iso(start)} - "
        f"{_iso(start + length)}, which closed (windows closed up to {_iso(closed)}) "
        "before it came; it is in no window"
    )


def epoch(ts: Any) -> float:
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(str(ts)).timestamp()


def segment_of(ev: dict[str, Any], keys: list[str]) -> dict[str, str]:
    """The event's value for each segment key: its `segment`, else its features."""
    out = {}
    given = ev.get("segment") or {}
    for k in keys:
        v = given.get(k)
        if v is None:
            v = ev["features"].get(k)
        if v is not None:
            out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def bounded(seen: dict[str, set[str]], key: str, value: str) -> str:
    """`key=value`, or `key=__other__` once the key has MAX_SEGMENT_VALUES distinct values."""
    values = seen.setdefault(key, set())
    if value not in values:
        if len(values) >= MAX_SEGMENT_VALUES:
            value = "__other__"
        values.add(value)
    return f"{key}={value}"


_NUMBER_OR_NONE = {int, float, type(None)}


def _count(prof: CategoricalWindow, values: list[Any]) -> None:
    """One categorical profile's values of a batch (None = missing; a boolean is spelled
    "true"/"false", any other non-string as `str` spells it)."""
    tally = Counter(values)
    missing = tally.pop(None, 0)
    if all(type(c) is str for c in tally):  # the usual case: no conversion per value
        prof.missing += missing
        if tally:
            prof.add_counts(tally)
        return
    present = [str(v).lower() if isinstance(v, bool) else str(v) for v in values if v is not None]
    prof.missing += missing
    if present:
        prof.update(present)


def _by_window(
    model: ModelKey,
    versions: list[str],
    start: npt.NDArray[np.float64],
    ok: npt.NDArray[np.bool_],
) -> list[tuple[WindowKey, npt.NDArray[np.intp]]]:
    """The rows of each window (those `ok`), windows in order of their first row, each
    window's rows in order: with one model version (the usual case) by array operations."""
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return []
    if len(set(versions)) == 1:
        starts = start[rows]
        if starts.min() == starts.max():
            key = (model[0], model[1], versions[0], "", float(starts[0]))
            return [(key, rows)]
        _, first, which = np.unique(starts, return_index=True, return_inverse=True)
        out = []
        for g in np.argsort(first, kind="stable").tolist():
            idx = rows[which == g]
            out.append(((model[0], model[1], versions[0], "", float(start[idx[0]])), idx))
        return out
    groups: dict[WindowKey, list[int]] = {}
    for i in rows.tolist():
        key = (model[0], model[1], versions[i], "", float(start[i]))
        groups.setdefault(key, []).append(i)
    return [(key, np.asarray(g, dtype=np.intp)) for key, g in groups.items()]


@dataclass
class _Model:
    length: float
    grace: float
    refs: list[FeatureReference]
    segments: list[str] = field(default_factory=list)
    pca: PCAReference | None = None
    segment_values: dict[str, set[str]] = field(default_factory=dict)
    watermark: float = float("-inf")
    closed_until: float = float("-inf")
    last_seen_wall: float = 0.0


class WindowManager:
    def __init__(self, idle_close_s: float = 30.0) -> None:
        self.idle_close_s = idle_close_s
        self.models: dict[ModelKey, _Model] = {}
        self.windows: dict[WindowKey, WindowState] = {}
        self.dirty: set[WindowKey] = set()
        self.too_late = 0

    def configure(
        self,
        model: ModelKey,
        length: float,
        grace: float,
        refs: list[FeatureReference],
        segments: list[str] | None = None,
        pca: PCAReference | None = None,
    ) -> None:
        m = self.models.get(model)
        if m is None:
            self.models[model] = _Model(length, grace, refs, list(segments or []), pca)
        else:
            m.length, m.grace, m.refs, m.pca = length, grace, refs, pca
            m.segments = list(segments or [])

    def _segments(self, m: _Model, ev: dict[str, Any]) -> list[str]:
        return [bounded(m.segment_values, k, v) for k, v in segment_of(ev, m.segments).items()]

    def add(
        self,
        model: ModelKey,
        partition: int,
        events: Iterable[dict[str, Any]],
        now_wall: float,
        rejected: list[tuple[int, str]] | None = None,
    ) -> int:
        """Route one model's events (in offset order); returns how many were counted. Each
        event too late for its window is appended to `rejected` (its place, the reason)."""
        m = self.models[model]
        m.last_seen_wall = now_wall
        groups: dict[WindowKey, list[dict[str, Any]]] = {}
        late_in: dict[WindowKey, int] = {}
        for i, ev in enumerate(events):
            t = epoch(ev["occurred_at"])
            start = (t // m.length) * m.length
            if start + m.length <= m.closed_until:
                self.too_late += 1
                if rejected is not None:
                    reason = too_late_reason("an event", t, start, m.length, m.closed_until)
                    rejected.append((i, reason))
                continue
            version = str(ev["model_version"])
            is_late = t + m.grace < m.watermark
            for segment in ("", *self._segments(m, ev)) if m.segments else ("",):
                key = (model[0], model[1], version, segment, start)
                groups.setdefault(key, []).append(ev)
                if is_late:
                    late_in[key] = late_in.get(key, 0) + 1
            m.watermark = max(m.watermark, t)
        counted = 0
        for key, group in groups.items():
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = WindowState(
                    key,
                    m.length,
                    partition,
                    profiles={r.name: r.new_window() for r in m.refs},
                    pca=PCAWindow() if m.pca is not None else None,
                )
            self._update(w, group, m.pca)
            w.late += late_in.get(key, 0)
            self.dirty.add(key)
            if not key[3]:
                counted += len(group)
        return counted

    def columnar(self, model: ModelKey) -> bool:
        """Whether `add_columns` takes this model's events (no segments, no PCA)."""
        m = self.models[model]
        return not m.segments and m.pca is None

    def add_columns(
        self,
        model: ModelKey,
        partition: int,
        cols: Columns,
        now_wall: float,
        rejected: list[tuple[int, str]] | None = None,
    ) -> int | None:
        """`add` for one model's events decoded as columns (`columnar`): the same windows,
        counts, lateness, watermark and `rejected`. None (nothing changed) if a prediction
        does not fit the PREDICTION profile, so the caller takes the per-record path."""
        m = self.models[model]
        if cols.n == 0:
            return 0
        t = cols.occurred_at
        start = (t // m.length) * m.length
        ok = start + m.length > m.closed_until
        prior = np.concatenate(([-np.inf], np.maximum.accumulate(np.where(ok, t, -np.inf))))
        late = ok & (t + m.grace < np.maximum(prior[:-1], m.watermark))
        updates = []
        for key, idx in _by_window(model, cols.versions, start, ok):
            part = cols if idx.size == cols.n else cols.take(idx)
            w = self.windows.get(key)
            prof = (w.profiles if w is not None else {r.name: r for r in m.refs}).get(PREDICTION)
            numeric_out = isinstance(prof, NumericWindow) or (
                isinstance(prof, FeatureReference) and prof.kind == "numeric"
            )
            preds = None
            if numeric_out:
                if not set(map(type, part.predictions)) <= _NUMBER_OR_NONE:
                    return None
                preds = np.array(part.predictions, dtype=np.float64)
            updates.append((key, part, preds, int(np.count_nonzero(late[idx]))))
        m.last_seen_wall = now_wall
        self.too_late += int(np.count_nonzero(~ok))
        if rejected is not None:
            for i in np.flatnonzero(~ok).tolist():
                t_i, s_i = float(t[i]), float(start[i])
                rejected.append(
                    (i, too_late_reason("an event", t_i, s_i, m.length, m.closed_until))
                )
        if ok.any():
            m.watermark = max(m.watermark, float(t[ok].max()))
        counted = 0
        for key, part, preds, n_late in updates:
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = WindowState(
                    key, m.length, partition, profiles={r.name: r.new_window() for r in m.refs}
                )
            self._update_columns(w, part, preds)
            w.late += n_late
            self.dirty.add(key)
            counted += part.n
        return counted

    @staticmethod
    def _update_columns(
        w: WindowState, cols: Columns, preds: npt.NDArray[np.float64] | None
    ) -> None:
        w.events += cols.n
        worth = cols.business_value[~np.isnan(cols.business_value)]
        for v in worth.tolist():  # in event order, as `_update` sums (same rounding)
            w.value_sum += v
        w.value_n += int(worth.size)
        index = {n: j for j, n in enumerate(cols.numeric_names)}
        numeric: list[NumericWindow] = []
        picks: list[int] = []  # columns of cols.numeric, then -1 for the prediction
        for name, prof in w.profiles.items():
            if isinstance(prof, NumericWindow):
                numeric.append(prof)
                picks.append(-1 if name == PREDICTION else index[name])
                continue
            _count(prof, cols.predictions if name == PREDICTION else cols.categorical[name])
        if numeric:  # one row per numeric profile, all updated at once; NaN = missing
            rows = np.empty((len(picks), cols.n), np.float64)
            for r, j in enumerate(picks):
                if j < 0:
                    assert preds is not None
                    rows[r] = preds
                else:
                    rows[r] = cols.numeric[:, j]
            update_numeric(numeric, rows)

    @staticmethod
    def _update(w: WindowState, group: list[dict[str, Any]], pca: PCAReference | None) -> None:
        w.events += len(group)
        for ev in group:
            worth = ev.get("business_value")
            if isinstance(worth, int | float) and not isinstance(worth, bool):
                w.value_sum += worth
                w.value_n += 1
        feats = [ev["features"] for ev in group]
        numeric = [
            n for n, p in w.profiles.items() if isinstance(p, NumericWindow) and n != PREDICTION
        ]
        if numeric:
            rows = [[f.get(n) for n in numeric] for f in feats]
            try:  # None becomes NaN (missing); anything not a number fails the fast path
                matrix = np.array(rows, dtype=np.float64)
            except (TypeError, ValueError):
                matrix = np.array(
                    [
                        [v if type(v) in (int, float) or v is None else _BAD for v in row]
                        for row in rows
                    ],
                    dtype=np.float64,
                )
            bad = np.count_nonzero(matrix == _BAD, axis=0).tolist()
            clean: list[NumericWindow] = []
            for j, name in enumerate(numeric):
                prof = w.profiles[name]
                assert isinstance(prof, NumericWindow)
                if bad[j]:
                    w.type_errors[name] = w.type_errors.get(name, 0) + bad[j]
                    col = matrix[:, j]
                    prof.update(col[col != _BAD])  # NaN counts as missing
                else:
                    clean.append(prof)
            if clean:  # the columns without type errors at once, as `_update_columns` does
                update_numeric(clean, matrix.T[[j for j, b in enumerate(bad) if not b]])
            if pca is not None and w.pca is not None:
                index = {n: j for j, n in enumerate(numeric)}
                cols = [index.get(f, -1) for f in pca.features]
                x = np.where(matrix == _BAD, np.nan, matrix)
                x = np.column_stack(
                    [x[:, j] if j >= 0 else np.full(len(group), np.nan) for j in cols]
                )
                pca.update(w.pca, x)
        out = w.profiles.get(PREDICTION)
        if isinstance(out, NumericWindow):
            preds = [ev.get("prediction") for ev in group]
            try:
                out.update(np.array(preds, dtype=np.float64))
            except (TypeError, ValueError):
                good = [p for p in preds if type(p) in (int, float) or p is None]
                w.type_errors[PREDICTION] = (
                    w.type_errors.get(PREDICTION, 0) + len(preds) - len(good)
                )
                out.update(np.array(good, dtype=np.float64))
        for name, prof in w.profiles.items():
            if isinstance(prof, NumericWindow):
                continue
            if name == PREDICTION:
                values = [ev.get("prediction") for ev in group]
            else:
                values = [f.get(name) for f in feats]
            _count(prof, values)

    def ready(self, now_wall: float) -> list[WindowState]:
        """Windows to close now: past the watermark plus grace, or of a quiet model."""
        out = []
        for key, w in self.windows.items():
            m = self.models[(key[0], key[1])]
            quiet = now_wall - m.last_seen_wall >= self.idle_close_s
            if w.end + m.grace <= m.watermark or quiet:
                out.append(w)
        return sorted(out, key=lambda w: (w.start, w.key[3]))

    def close(self, w: WindowState) -> None:
        m = self.models[(w.key[0], w.key[1])]
        m.closed_until = max(m.closed_until, w.end)
        self.windows.pop(w.key, None)
        self.dirty.discard(w.key)

    def drop_partitions(self, partitions: set[int]) -> None:
        for key in [k for k, w in self.windows.items() if w.partition in partitions]:
            self.windows.pop(key)
            self.dirty.discard(key)
