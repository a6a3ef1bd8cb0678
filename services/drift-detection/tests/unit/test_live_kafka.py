"""Drift detection's live series of Kafka-native records (live.py), without network: the
points against numpy on the same events, per-event and batch records alike; ingestion's own
records (driftline-origin header), replayed offsets and unknown tenants left out; late and
future record times; the last-event gauge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry

from driftline_core.events.batch import FORMAT, FORMAT_HEADER, encode_batch
from driftline_core.kafka.batching import INGESTION_ORIGIN, ORIGIN_HEADER
from driftline_drift_detection.live import KafkaLive


class NoWriter:
    def start(self) -> None: ...


@dataclass
class Rec:
    offset: int
    value: bytes | None
    timestamp: int  # ms
    headers: tuple[tuple[str, bytes], ...] = ()
    key: bytes | None = None


def per_event(tenant: str, model: str, version: str, ev: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "event_id": "e",
            "schema_version": 1,
            "tenant_id": tenant,
            "model_id": model,
            "model_version": version,
            "occurred_at": "2026-01-01T00:00:00Z",
            "features": {"x": 1.0},
            **ev,
        }
    )


def points(live: KafkaLive, now: float) -> dict[tuple[str, ...], dict[str, float]]:
    out = {}
    for p in live.series.points(now):
        head, body, ts = p.to_line_protocol().rsplit(" ", 2)
        measurement, *tags = head.split(",")
        t = dict(kv.split("=", 1) for kv in tags)
        assert t["source"] == "kafka"
        vals = {k: float(v.rstrip("i")) for k, v in (kv.split("=", 1) for kv in body.split(","))}
        key = (measurement, t["tenant"], t["model"], t["version"], t.get("class", ""), ts)
        out[key] = vals
    return out


def live_for(tenants: set[str], registry: CollectorRegistry | None = None) -> KafkaLive:
    return KafkaLive(NoWriter(), tenants.__contains__, registry)  # type: ignore[arg-type]


def test_per_event_and_batch_records_give_numpy_s_counts_means_and_percentiles():
    rng = np.random.default_rng(5)
    lat = rng.gamma(2.0, 10.0, 700)
    preds = rng.integers(0, 2, 700)
    evs = [{"prediction": int(p), "latency_ms": float(x)} for p, x in zip(preds, lat, strict=True)]
    t0 = 1_000_000  # seconds
    # 300 per-event records in second t0, a batch of 400 in second t0 + 1
    records = [Rec(i, per_event("t", "m", "1", e), t0 * 1000 + i) for i, e in enumerate(evs[:300])]
    batch = encode_batch("t", "m", "1", [{"features": {"x": 1.0}, **e} for e in evs[300:]])
    records.append(Rec(300, batch, (t0 + 1) * 1000 + 5, ((FORMAT_HEADER, FORMAT),)))
    reg = CollectorRegistry()
    live = live_for({"t"}, reg)
    live._observe(0, records, t0 + 2.0)
    pts = points(live, t0 + 2.0)
    ns = str(t0 * 10**9)
    ns1 = str((t0 + 1) * 10**9)
    for ts, part in ((ns, slice(0, 300)), (ns1, slice(300, 700))):
        f = pts[("live_model", "t", "m", "1", "", ts)]
        assert f["events"] == len(preds[part])
        assert f["prediction_count"] == len(preds[part])
        assert f["prediction_sum"] == preds[part].sum()
        assert f["prediction_mean"] == np.mean(preds[part])
        assert f["latency_count"] == len(lat[part])
        assert f["latency_p50_ms"] == np.percentile(lat[part], 50)
        assert f["latency_p99_ms"] == np.percentile(lat[part], 99)
        assert f["rejected"] == 0
        for c in ("0", "1"):
            got = pts[("live_prediction_class", "t", "m", "1", c, ts)]["count"]
            assert got == int((preds[part] == int(c)).sum())
    assert live.events == 700
    gauge = reg.get_sample_value(
        "driftline_model_last_event_timestamp_seconds",
        {"tenant": "t", "model": "m", "source": "kafka"},
    )
    assert gauge == (t0 + 1) + 0.005


def test_ingestion_s_records_replays_and_unknown_tenants_are_not_counted():
    live = live_for({"t"})
    mine = ((ORIGIN_HEADER, INGESTION_ORIGIN),)
    recs = [
        Rec(0, per_event("t", "m", "1", {"prediction": 1.5}), 5_000),
        Rec(1, per_event("t", "m", "1", {"prediction": 9.0}), 5_000, mine),  # ingestion's
        Rec(2, per_event("ghost", "m", "1", {"prediction": 1.0}), 5_000),  # unknown tenant
        Rec(3, b"not json", 5_000),
        Rec(4, None, 5_000),  # tombstone
        Rec(5, per_event("t", "m", "1", {"prediction": 2.5, "latency_ms": "x"}), 5_000),
    ]
    live._observe(0, recs, 6.0)
    live._observe(0, recs[:3], 6.0)  # replayed after a failure: counted once
    pts = points(live, 6.0)
    assert set(pts) == {("live_model", "t", "m", "1", "", str(5 * 10**9))}
    f = pts[("live_model", "t", "m", "1", "", str(5 * 10**9))]
    assert f["events"] == 2
    assert f["prediction_sum"] == 4.0
    assert "latency_count" not in f  # "x" is no latency
    assert live.skipped == 2  # the ghost tenant's event and the text that is no JSON


def test_late_and_future_record_times_never_rewrite_a_forgotten_second():
    live = live_for({"t"})
    rec = [Rec(0, per_event("t", "m", "1", {"prediction": "a"}), 100_000)]
    live._observe(0, rec, 101.0)
    live.series.points(101.0)
    # the producer's clock is 30 s behind: counted in the oldest second kept (100 - 10)
    live._observe(0, [Rec(1, per_event("t", "m", "1", {"prediction": "b"}), 70_000)], 101.0)
    # one 50 s ahead of the wall clock: counted now
    live._observe(0, [Rec(2, per_event("t", "m", "1", {"prediction": "c"}), 151_000)], 102.0)
    pts = points(live, 102.0)
    classes = {(k[4], k[5]): v["count"] for k, v in pts.items() if k[0] == "live_prediction_class"}
    assert classes == {("b", str(90 * 10**9)): 1, ("c", str(102 * 10**9)): 1}
    events = sum(v["events"] for k, v in pts.items() if k[0] == "live_model")
    assert events == 2  # and the first second's point is untouched


def test_reservoir_keeps_percentiles_close_above_the_sample_size():
    rng = np.random.default_rng(9)
    lat = rng.exponential(30, 20_000)
    live = live_for({"t"})
    evs = [{"features": {"x": 1.0}, "prediction": 0.5, "latency_ms": float(x)} for x in lat]
    recs = [
        Rec(i, encode_batch("t", "m", "1", evs[i * 2000 : (i + 1) * 2000]), 7_000)
        for i in range(10)
    ]
    live._observe(0, recs, 8.0)
    (f,) = [v for k, v in points(live, 8.0).items() if k[0] == "live_model"]
    assert f["events"] == 20_000
    assert f["latency_count"] == 20_000
    assert abs(f["latency_p50_ms"] - np.percentile(lat, 50)) < 0.05 * np.percentile(lat, 50)
    assert abs(f["latency_p99_ms"] - np.percentile(lat, 99)) < 0.1 * np.percentile(lat, 99)
