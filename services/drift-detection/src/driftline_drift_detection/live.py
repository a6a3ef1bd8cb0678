"""The live series of predictions produced straight to Kafka (the SDK's `KafkaLogger`, per-event
or batch records), which never pass through ingestion.

Ingestion writes the live series (`live_model`, `live_prediction_class`, docs/metrics.md) of
what it accepts, and marks the records it produces with the header
`driftline-origin: ingestion`. Drift detection reads every record of
`driftline.predictions.v1`; `KafkaLive.observe` takes the others, once per partition and poll,
before the windows see them, and adds them to a `LiveSeries` of its own (its own spool
directory) under `source=kafka`, so the two writers' points are different series and never
replace each other's.

Off the per-event hot path: a poll's per-event records are decoded in one msgspec call into a
struct of the five fields the series needs (tenant, model, version, prediction, latency), a
batch record's columns from its MessagePack map; each run of one model, version and second
is added to its bucket as columns (numpy sums, a Counter of classes, latencies appended or
reservoir-sampled in bulk).

Time is the record's Kafka timestamp (when the producer wrote it), to the second. So a poll
replayed after a failure or a restart puts its events in the same seconds again: within a
process the offsets already counted are skipped; a second process that takes a partition
over rewrites the seconds since the partition's last checkpoint from its own count (the
second in which that checkpoint falls may then be written short by the events before it).
A model's buckets are kept for `keep_s` seconds of its newest record time; a record older
than that (a producer's clock behind the others') is counted in the oldest second still
kept instead of rewriting an older second without the rest of its events, and a record
stamped in the future in the current second. Sums over a range are then exact.

Tags stay bounded: only tenants drift detection knows (a record of a tenant never created
goes to the DLQ and is not counted here), models per tenant, versions and classes as in
ingestion's series. The same records set `driftline_model_last_event_timestamp_seconds`
with `source="kafka"` (the "no data" alert takes both sources)."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

import msgspec
import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from driftline_core.events.batch import MAGIC, is_batch
from driftline_core.influx import InfluxWriter
from driftline_core.influx.live import Key, LiveSeries, _Bucket
from driftline_core.kafka.batching import from_ingestion

__all__ = ["KafkaLive", "KnownTenants", "LastEventGauge"]

log = logging.getLogger(__name__)

SOURCE = "kafka"


class _Event(msgspec.Struct, forbid_unknown_fields=False):
    tenant_id: str
    model_id: str
    model_version: str
    prediction: Any = None
    latency_ms: Any = None


class _Batch(msgspec.Struct, forbid_unknown_fields=False):
    tenant_id: str
    model_id: str
    model_version: str
    prediction: list[Any]
    latency_ms: bytes | None = None


_events = msgspec.json.Decoder(list[_Event])
_event = msgspec.json.Decoder(_Event)
_batch = msgspec.msgpack.Decoder(_Batch)


class LastEventGauge:
    """`driftline_model_last_event_timestamp_seconds{source="kafka"}`: the newest record
    time of each model's Kafka-native predictions (ingestion's series carry
    source="ingestion")."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.gauge = Gauge(
            "driftline_model_last_event_timestamp_seconds",
            "When a prediction of a model was last written to Kafka by a Kafka-native "
            "producer (its record time, Unix time); ingestion exports source=ingestion",
            ["tenant", "model", "source"],
            registry=registry,
        )
        self._last: dict[tuple[str, str], float] = {}

    def seen(self, tenant: str, model: str, t: float) -> None:
        if t > self._last.get((tenant, model), -math.inf):
            self._last[(tenant, model)] = t
            self.gauge.labels(tenant, model, SOURCE).set(t)


class KnownTenants:
    """The tenants of the models a catalog knows (`catalog.models` keyed (tenant, model)),
    recomputed when the catalog grows or shrinks, or every `refresh_s`."""

    def __init__(self, models: Callable[[], dict[tuple[str, str], Any]], refresh_s: float = 5.0):
        self._models, self._refresh_s = models, refresh_s
        self._tenants: set[str] = set()
        self._size, self._at = -1, -math.inf

    def __call__(self, tenant: str) -> bool:
        models = self._models()
        now = time.monotonic()
        if len(models) != self._size or now - self._at > self._refresh_s:
            self._tenants = {t for t, _ in models}
            self._size, self._at = len(models), now
        return tenant in self._tenants


class _Series(LiveSeries):
    """A `LiveSeries` whose seconds are record times: each model's buckets are forgotten
    `keep_s` after its newest record time (not the wall clock), or once idle for `idle_s`."""

    def __init__(self, writer: InfluxWriter, *, keep_s: float, idle_s: float) -> None:
        super().__init__(writer, keep_s=keep_s, source=SOURCE)
        self.idle_s = idle_s
        self.newest: dict[tuple[str, str], int] = {}  # (tenant, model tag) -> newest second

    def forget(self, now: float) -> None:
        for key in [
            k
            for k, b in self._buckets.items()
            if k[3] < self.newest.get(k[:2], k[3]) - self.keep_s or now - b.written_at > self.idle_s
        ]:
            del self._buckets[key]
        if len(self.newest) > 2 * len(self._buckets) + 1000:
            live = {k[:2] for k in self._buckets}
            self.newest = {k: v for k, v in self.newest.items() if k in live}


class KafkaLive:
    """What `CheckpointedProcessor.observe` is set to for the predictions topic."""

    def __init__(
        self,
        writer: InfluxWriter,
        known_tenant: Callable[[str], bool],
        registry: CollectorRegistry | None = None,
        *,
        keep_s: float = 10.0,
        idle_s: float = 60.0,
    ) -> None:
        self.series = _Series(writer, keep_s=keep_s, idle_s=idle_s)
        self.known_tenant = known_tenant
        self.last_event = LastEventGauge(registry)
        self.counted: dict[int, int] = {}  # partition -> last offset counted
        self.events = 0  # events added to the series (tests, debugging)
        self.skipped = 0  # records not counted: undecodable, or of an unknown tenant
        self._rng = np.random.default_rng(0)

    # --- the processor's hook ---------------------------------------------------------------

    def observe(self, partition: int, records: list[Any]) -> None:
        """Count a poll's records of one partition (never raises: the live series must not
        stop the stream)."""
        try:
            self._observe(partition, records, time.time())
        except Exception:
            log.exception("live series of Kafka-native records not updated")

    def _observe(self, partition: int, records: list[Any], now: float) -> None:
        if not records:
            return
        last = self.counted.get(partition, -1)
        if records[0].offset <= last:
            records = [r for r in records if r.offset > last]
            if not records:
                return
        self.counted[partition] = records[-1].offset
        events: list[Any] = []  # per-event records (value, record time)
        for r in records:
            headers = getattr(r, "headers", None)
            if (headers and from_ingestion(headers)) or r.value is None:
                continue
            t = _record_time(r, now)
            if is_batch(r.value, headers):
                self._add_batch(r.value, t, now)
            else:
                events.append((r.value, t))
        if events:
            self._add_events(events, now)

    # --- decoding --------------------------------------------------------------------------

    def _add_batch(self, value: bytes, t: float, now: float) -> None:
        try:
            b = _batch.decode(value[len(MAGIC) :])
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.skipped += 1  # drift detection dead-letters it with the reason
            return
        n = len(b.prediction)
        lat = None
        if b.latency_ms is not None and len(b.latency_ms) == 8 * n:
            lat = np.frombuffer(b.latency_ms, dtype="<f8")
        self._add(b.tenant_id, b.model_id, b.model_version, t, now, b.prediction, lat)

    def _add_events(self, events: list[tuple[bytes, float]], now: float) -> None:
        try:
            decoded: list[_Event | None] = list(
                _events.decode(b"[" + b",".join(v for v, _ in events) + b"]")
            )
        except (msgspec.DecodeError, msgspec.ValidationError):
            decoded = [self._one(v) for v, _ in events]  # the bad ones are left out
        rows = [e for e in decoded if e is not None]
        times = (
            [t for _, t in events]
            if len(rows) == len(events)
            else [t for e, (_, t) in zip(decoded, events, strict=True) if e is not None]
        )
        self.skipped += len(events) - len(rows)
        # runs of one model, version and second (a poll's records of a key are in order),
        # found over lists built in C-level comprehensions
        keys = list(
            zip(
                [(e.tenant_id, e.model_id, e.model_version) for e in rows],
                [int(t) for t in times],
                strict=True,
            )
        )
        n = len(keys)
        bounds = [0, *(i for i in range(1, n) if keys[i] != keys[i - 1]), n]
        predictions = [e.prediction for e in rows]
        latencies = [e.latency_ms for e in rows]
        for lo, hi in pairwise(bounds):
            (tenant, model, version), sec = keys[lo]
            lat = _latencies(latencies[lo:hi])
            self._add(tenant, model, version, float(sec), now, predictions[lo:hi], lat)

    @staticmethod
    def _one(value: bytes) -> _Event | None:
        try:
            return _event.decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    # --- aggregation -----------------------------------------------------------------------

    def _add(
        self,
        tenant: str,
        model: str,
        version: str,
        t: float,
        now: float,
        predictions: list[Any],
        latencies: np.ndarray[Any, np.dtype[np.float64]] | None,
    ) -> None:
        n = len(predictions)
        if not n:
            return
        if not tenant or not model or not version or not self.known_tenant(tenant):
            self.skipped += 1
            return
        s = self.series
        mtag = s._models(tenant, model)
        newest = s.newest.get((tenant, mtag), -1)
        sec = max(int(t), newest - int(s.keep_s)) if newest >= 0 else int(t)
        if sec > newest:
            s.newest[(tenant, mtag)] = sec
        key, b = s._bucket(tenant, model, version, sec)
        b.events += n
        self.events += n
        self._predictions(key, b, predictions)
        if latencies is not None:
            self._latencies(b, latencies)
        self.last_event.seen(tenant, mtag, t)

    def _predictions(self, key: Key, b: _Bucket, predictions: list[Any]) -> None:
        """As ingestion counts them: strings and booleans are classes, integers classes and
        numbers, finite floats numbers."""
        kinds = set(map(type, predictions))
        classes: Iterable[tuple[str, int]] = ()
        if kinds <= {float}:
            a = np.asarray(predictions, dtype=np.float64)
            a = a[np.isfinite(a)]
            b.pred_sum += float(a.sum())
            b.pred_n += len(a)
        elif kinds <= {int}:
            b.pred_sum += float(sum(predictions))
            b.pred_n += len(predictions)
            classes = Counter(map(str, predictions)).items()
        elif kinds <= {str}:
            classes = Counter(predictions).items()
        else:
            counts: Counter[str] = Counter()
            for p in predictions:
                if isinstance(p, bool):
                    counts[str(p).lower()] += 1
                elif isinstance(p, str):
                    counts[p] += 1
                elif isinstance(p, int | float) and math.isfinite(p):
                    b.pred_sum += p
                    b.pred_n += 1
                    if isinstance(p, int):
                        counts[str(p)] += 1
            classes = counts.items()
        for c, k in classes:
            c = self.series._classes(key[:2], c)
            b.classes[c] = b.classes.get(c, 0) + k

    def _latencies(self, b: _Bucket, lat: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        """Append up to the bucket's sample size, then reservoir-sample the rest (each value
        at position j replaces a random one of the first j with probability cap / j)."""
        lat = lat[np.isfinite(lat) & (lat >= 0)]
        if not len(lat):
            return
        cap = self.series.max_latency_samples
        room = max(cap - len(b.latencies), 0)
        b.latencies.extend(lat[:room].tolist())
        seen = b.latency_n + min(room, len(lat))
        rest = lat[room:]
        b.latency_n += len(lat)
        if len(rest):  # the value at 0-based position p is kept with probability cap / (p+1)
            slots = self._rng.integers(0, seen + np.arange(1, len(rest) + 1))
            for i in np.flatnonzero(slots < cap).tolist():  # about cap x ln(n / cap) of them
                b.latencies[int(slots[i])] = float(rest[i])

    # --- lifecycle (a component of the service) ---------------------------------------------

    async def start(self) -> None:
        await self.series.start()

    async def stop(self) -> None:
        await self.series.stop()


def _record_time(r: Any, now: float) -> float:
    """The record's Kafka timestamp in seconds, the wall clock if it has none or it is in
    the future."""
    ts = getattr(r, "timestamp", None)
    if not isinstance(ts, int) or ts <= 0:
        return now
    return min(ts / 1000, now)


def _latencies(values: list[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Latencies as floats, NaN where an event has none (or not a number)."""
    if set(map(type, values)) <= {float, int}:
        return np.asarray(values, dtype=np.float64)
    return np.array([_latency(v) for v in values], dtype=np.float64)


def _latency(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return math.nan
