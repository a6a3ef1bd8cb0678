"""Live series aggregation (no network): per-second buckets, rewritten whole while they grow,
bounded tags, percentiles against numpy on the same latencies."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from driftline_core.influx.live import OTHER, UNKNOWN, IntakeObserver, LiveSeries
from driftline_core.observability.metrics import IngestionMetrics


class NoWriter:
    def start(self) -> None: ...


def fields(points, measurement="live_model"):
    out = {}
    for p in points:
        lp = p.to_line_protocol()
        if not lp.startswith(measurement + ","):
            continue
        head, body, ts = lp.rsplit(" ", 2)
        tags = dict(kv.split("=", 1) for kv in head.split(",")[1:])
        vals = {k: float(v.rstrip("i")) for k, v in (kv.split("=", 1) for kv in body.split(","))}
        out[(tags.get("model"), tags.get("version"), tags.get("class"), int(ts))] = vals
    return out


def test_a_second_is_rewritten_whole_as_it_grows_and_sums_to_the_events_accepted():
    live = LiveSeries(NoWriter())  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    lat = rng.exponential(20, 300)
    evs = [
        {"model_id": "m", "model_version": "1", "prediction": float(i % 7), "latency_ms": lat[i]}
        for i in range(300)
    ]
    live.accepted("t", evs[:100], 1000.2)
    first = fields(live.points(1000.3))[("m", "1", None, 1000 * 10**9)]
    assert first["events"] == 100
    live.accepted("t", evs[100:250], 1000.9)
    live.accepted("t", evs[250:], 1001.1)
    pts = fields(live.points(1001.2))
    s0, s1 = pts[("m", "1", None, 1000 * 10**9)], pts[("m", "1", None, 1001 * 10**9)]
    assert s0["events"] == 250  # the same point again, now with the whole second
    assert s1["events"] == 50
    assert s0["prediction_mean"] == np.mean([e["prediction"] for e in evs[:250]])
    assert s0["latency_p99_ms"] == np.percentile(lat[:250], 99)
    assert s0["latency_p50_ms"] == np.percentile(lat[:250], 50)
    assert live.points(1001.3) == []  # nothing changed since


def test_class_mix_and_bounded_tags():
    live = LiveSeries(NoWriter(), max_classes=3, max_versions=2)  # type: ignore[arg-type]
    evs = [{"model_id": "c", "model_version": "1", "prediction": str(k)} for k in "aabcdd"]
    evs += [{"model_id": "c", "model_version": v, "prediction": True} for v in ("2", "3", "4")]
    live.accepted("t", evs, 50.0)
    classes = fields(live.points(50.0), "live_prediction_class")
    got = {(m, v, c): f["count"] for (m, v, c, _), f in classes.items()}
    assert got == {
        ("c", "1", "a"): 2,
        ("c", "1", "b"): 1,
        ("c", "1", "c"): 1,
        ("c", "1", OTHER): 2,
        ("c", "2", OTHER): 1,  # "true" would be a 4th class
        ("c", OTHER, OTHER): 2,  # versions 3 and 4 past the limit of 2
    }


def test_the_observer_counts_rejections_under_their_model_or_unknown():
    reg = CollectorRegistry()
    live = LiveSeries(NoWriter())  # type: ignore[arg-type]
    obs = IntakeObserver(IngestionMetrics(reg), live)
    raw = [
        {"model_id": "m", "model_version": "1"},
        {"model_id": "nope", "model_version": "1"},
        "not an object",
    ]
    rejected = [
        {"index": 0, "reason": "missing feature(s): a"},
        {"index": 1, "reason": "unknown model 'nope'"},
        {"index": 2, "reason": "an event must be a JSON object"},
    ]
    obs.delivered("t", "prediction", [], rejected, raw)
    pts = {(m, v): f["rejected"] for (m, v, _, _), f in fields(live.points()).items()}
    assert pts == {("m", "1"): 1, (UNKNOWN, "1"): 1, (UNKNOWN, UNKNOWN): 1}
    assert (
        reg.get_sample_value(
            "driftline_events_rejected_total", {"kind": "prediction", "reason": "unknown_model"}
        )
        == 1
    )
