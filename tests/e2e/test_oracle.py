"""The whole-system oracle (issue 14): every service as its own process against real servers
(harness.py), one classification model streamed window by window, half of each window over
HTTP and half over the Kafka SDK, with drift planted in named features from a known window
on, and labels whose error rate rises from a known window on. Everything Driftline then
publishes is checked against the planted truth or an independent computation:

- exactly the planted features are flagged, from the planted window on, and none before;
- each window's event count equals the events accepted for it (Kafka results and InfluxDB);
- accuracy, precision, recall, F1 and log loss per window equal scikit-learn's on the same
  labels to 1e-9; ROC-AUC within the binning tolerance (driftline_stats.performance: the
  share of positive/negative pairs that fall in one of the 1,000 score bins);
- each drift alert reaches a signature-verifying webhook receiver exactly once per
  idempotency key (the receiver fails one first attempt, so a retry is part of the run);
- the audit chain verifies and holds the run's registry changes and alert events;
- the FDA compliance report's counts equal those of the stream.

The run happens once per module (`run` fixture); each test checks one promise, so a failure
names the promise that broke. Event times are synthetic (windows of 60 s, a quarter of an
hour ago), so windows close on the watermark as fast as the system can go; the last one
closes on the idle timer (harness.System.idle_close_s). `DRIFTLINE_E2E_DUMP=file.json`
writes what the run saw (results, alerts, webhook attempts, the report's summary).
"""

from __future__ import annotations

import base64
import math
import os
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from harness import Receiver, System, Tenant, poll, unique_by_id
from sklearn import metrics as skm

from driftline import KafkaLogger
from driftline_core.kafka import EventProducer

pytestmark = pytest.mark.timeout(900)

WINDOW_S, GRACE_S = 60, 10
WINDOWS = 6
PER_WINDOW = 800  # half over HTTP, half over Kafka
DRIFT_FROM = 3  # window index where the planted feature drift starts (and stays)
DRIFTED = {"x2", "c1"}  # x2: mean +1 sd; c1: a new category "z" in 30% of events
CONCEPT_FROM = 4  # window index where labels flip 35% of the time (error rate ~17% -> ~40%)
FLIP = 0.35
AUC_BINS = 1000
TOL = 1e-9

MODEL_ID = "oracle"
NOREF_ID = "oracle-noref"  # registered without a reference: performance only (defect 2)
NOREF_WINDOWS, NOREF_PER_WINDOW = 2, 400
VERSION = "1"
MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "name": "Oracle classifier (planted drift)",
    "task": "classification",
    "feature_schema": {
        "features": [
            {"name": "x0", "kind": "numeric"},
            {"name": "x1", "kind": "numeric"},
            {"name": "x2", "kind": "numeric"},
            {"name": "x3", "kind": "numeric", "min": 0},
            {"name": "c0", "kind": "categorical", "categories": ["a", "b", "c"]},
            {"name": "c1", "kind": "categorical", "categories": ["u", "v", "w"]},
        ]
    },
    # the producer sends prediction 0/1 and probabilities keyed "default"/"repaid" (as the
    # demo does): the contract names the classes, the positive one, and maps the spellings
    "classes": {
        "classes": ["0", "1"],
        "positive_class": "1",
        "mapping": {"default": "1", "repaid": "0"},
    },
    "monitoring": {
        "window": {"kind": "time", "seconds": WINDOW_S, "grace_seconds": GRACE_S},
        "label_ttl_seconds": 3600,
    },
}
FEATURES = {f["name"] for f in MODEL["feature_schema"]["features"]}


def features(rng: np.random.Generator, n: int, drifted: bool) -> list[dict[str, Any]]:
    cols: dict[str, list[Any]] = {
        "x0": rng.normal(0, 1, n).tolist(),
        "x1": rng.normal(5, 2, n).tolist(),
        "x2": rng.normal(60 if drifted else 50, 10, n).tolist(),
        "x3": rng.exponential(1.0, n).tolist(),
        "c0": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).tolist(),
        "c1": rng.choice(["u", "v", "w"], n, p=[0.4, 0.4, 0.2]).tolist(),
    }
    if drifted:
        c1 = np.array(cols["c1"], dtype=object)
        c1[rng.random(n) < 0.3] = "z"
        cols["c1"] = c1.tolist()
    return [{k: cols[k][i] for k in cols} for i in range(n)]


def score(rows: list[dict[str, Any]]) -> np.ndarray:
    """The model's probability of class 1: from x0 and x1 only (no planted drift there)."""
    x0 = np.array([r["x0"] for r in rows])
    x1 = np.array([r["x1"] for r in rows])
    return np.clip(1 / (1 + np.exp(-(2.0 * x0 + 0.5 * (x1 - 5)))), 0.02, 0.98)


@dataclass
class Truth:
    window: int
    predicted: int
    p1: float
    actual: int


@dataclass
class Sent:
    """What one model was sent, and what was accepted, window by window."""

    model_id: str
    truth: dict[str, Truth] = field(default_factory=dict)  # by prediction event id
    times: dict[str, float] = field(default_factory=dict)  # event time of each prediction
    accepted: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    labelled: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    label_ids: list[str] = field(default_factory=list)  # the labels' own event ids

    def ids(self) -> set[str]:
        return {i for v in self.accepted.values() for i in v}


@dataclass
class Run:
    tenant: Tenant
    t0: float  # start of window 0 (epoch s, a multiple of WINDOW_S)
    main: Sent = field(default_factory=lambda: Sent(MODEL_ID))
    noref: Sent = field(default_factory=lambda: Sent(NOREF_ID))
    poison_id: str = ""
    drift: list[dict[str, Any]] = field(default_factory=list)
    performance: list[dict[str, Any]] = field(default_factory=list)
    concept: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    registry: list[dict[str, Any]] = field(default_factory=list)
    dlq: list[dict[str, Any]] = field(default_factory=list)
    influx_windows: list[dict[str, Any]] = field(default_factory=list)
    dlq_metric: float = 0.0  # drift detection's driftline_dlq_records_total, predictions
    audit: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> what went wrong

    def window_of(self, start: str | datetime) -> int:
        t = start if isinstance(start, datetime) else datetime.fromisoformat(start)
        return round((t.timestamp() - self.t0) / WINDOW_S)

    def whole(self, results: list[dict[str, Any]], model_id: str) -> list[dict[str, Any]]:
        """Whole-population results of one model (no segment)."""
        return [x for x in results if x["model_id"] == model_id and not x.get("segment")]

    def need(self, *stages: str) -> None:
        """Skip nothing silently: a check whose input never arrived fails, saying why."""
        for s in stages:
            if s in self.failed:
                pytest.fail(f"stage {s!r} of the run failed: {self.failed[s]}", pytrace=False)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _mine(tenant: str) -> Any:
    return lambda r: r.get("tenant_id") == tenant


async def _stage(run: Run, name: str, coro: Any) -> None:
    try:
        await coro
    except Exception as e:  # recorded: the checks that need this stage fail with it
        run.failed[name] = f"{type(e).__name__}: {e}"


def _window(
    sent: Sent, rng: np.random.Generator, t0: float, k: int, n: int
) -> list[dict[str, Any]]:
    """n events of window k as a model server logs them: prediction 0/1, probabilities
    keyed by the producer's names (mapped by the model's class contract)."""
    rows = features(rng, n, drifted=sent.model_id == MODEL_ID and k >= DRIFT_FROM)
    p1 = score(rows)
    times = t0 + k * WINDOW_S + np.sort(rng.uniform(0, WINDOW_S - 1, n))
    actual = (rng.random(n) < p1).astype(int)
    if k >= CONCEPT_FROM:
        actual = np.where(rng.random(n) < FLIP, 1 - actual, actual)
    events = []
    for row, p, t, y in zip(rows, p1.tolist(), times.tolist(), actual.tolist(), strict=True):
        eid = str(uuid.uuid4())
        events.append(
            {
                "event_id": eid,
                "timestamp": _iso(t),
                "features": row,
                "prediction": int(p >= 0.5),
                "probabilities": {"repaid": 1 - p, "default": p},
            }
        )
        sent.truth[eid] = Truth(k, int(p >= 0.5), p, int(y))
        sent.times[eid] = t
    return events


def _poison(run: Run, t: float) -> tuple[bytes, bytes]:
    """A record with a valid envelope and wrong types (`features` a list) for the
    monitored model, as a broken Kafka-native producer could write it."""
    run.poison_id = str(uuid.uuid4())
    body = {
        "event_id": run.poison_id,
        "schema_version": 1,
        "tenant_id": run.tenant.tenant_id,
        "occurred_at": _iso(t),
        "produced_at": _iso(t),
        "model_id": MODEL_ID,
        "model_version": VERSION,
        "features": [1, 2, 3],
        "prediction": 1,
    }
    return f"{run.tenant.tenant_id}:{MODEL_ID}".encode(), orjson.dumps(body)


async def _stream(run: Run, system: System) -> None:
    """The monitored model's predictions, window by window, half over HTTP and half over
    Kafka (both acknowledged before the next window, so no event is behind a closed
    window; window 0 starts with the Kafka half, the others with HTTP). One poison record
    goes with window 2's Kafka half. The model without a reference gets HTTP only."""
    rng = np.random.default_rng(20261203)
    raw = EventProducer(system.kafka_settings)
    await raw.start()
    try:
        await _windows(run, system, rng, raw)
    finally:
        await raw.stop()


async def _windows(run: Run, system: System, rng: np.random.Generator, raw: EventProducer) -> None:
    main, noref = run.main, run.noref
    async with KafkaLogger(run.tenant.tenant_id, system.kafka_settings) as kafka:
        for k in range(WINDOWS):
            events = _window(main, rng, run.t0, k, PER_WINDOW)
            http, native = events[0::2], events[1::2]

            async def over_kafka(native: list[dict[str, Any]] = native, k: int = k) -> None:
                await kafka.log_predictions(MODEL_ID, VERSION, native)
                main.accepted[k] += [e["event_id"] for e in native]
                if k == 2:
                    await raw.send_records(
                        "driftline.predictions.v1",
                        [_poison(run, main.times[native[-1]["event_id"]])],
                    )

            if k == 0:
                await over_kafka()
            main.accepted[k] += await run.tenant.log_http(MODEL_ID, VERSION, http)
            if k != 0:
                await over_kafka()
            if k < NOREF_WINDOWS:
                more = _window(noref, rng, run.t0, k, NOREF_PER_WINDOW)
                noref.accepted[k] += await run.tenant.log_http(NOREF_ID, VERSION, more)


async def _labels(run: Run, sent: Sent) -> None:
    """Every accepted prediction's label, in event-time order, 0.2 s after it."""
    accepted = sent.ids()
    labels = [
        {
            "prediction_event_id": eid,
            "actual": t.actual,
            "timestamp": _iso(sent.times[eid] + 0.2),
        }
        for eid, t in sent.truth.items()
        if eid in accepted
    ]
    labels.sort(key=lambda lab: lab["timestamp"])
    sent.label_ids = await run.tenant.log_actuals(sent.model_id, labels)
    for lab in labels:
        sent.labelled[sent.truth[lab["prediction_event_id"]].window].append(
            lab["prediction_event_id"]
        )


def _windows_of(model_id: str, n: int, kind: str | None = None) -> Any:
    def seen(records: list[dict[str, Any]]) -> bool:
        whole = {
            x["window"]["start"]
            for x in records
            if x["model_id"] == model_id
            and not x.get("segment")
            and (kind is None or x.get("kind") == kind)
        }
        return len(whole) >= n

    return seen


@pytest.fixture(scope="module")
async def run(system: System, tenant: Tenant, receiver: Receiver) -> Run:
    now = datetime.now(UTC).timestamp()
    r = Run(tenant, (now - 15 * 60) // WINDOW_S * WINDOW_S)
    # routing before anything can fire: every alert its own group, sent at once
    await tenant.put_alerting(
        {
            "route": {
                "receiver": "oracle",
                "group_by": ["..."],
                "group_wait_s": 0,
                "group_interval_s": 1,
                "repeat_interval_s": 3600,
            },
            "receivers": [
                {
                    "name": "oracle",
                    "type": "webhook",
                    "url": receiver.url,
                    "secrets": [receiver.secret],
                    "format": "alertmanager",
                }
            ],
        },
        rules=[],
    )
    await tenant.register({**MODEL, "id": NOREF_ID, "name": "Oracle without reference"})
    await tenant.register(MODEL)
    await tenant.add_version(MODEL_ID, VERSION)
    await tenant.upload_reference(MODEL_ID, features(np.random.default_rng(7), 10_000, False))
    # no pause after the reference upload: the first events follow at once (defect 3)
    await _stage(r, "stream", _stream(r, system))
    mine = _mine(tenant.tenant_id)
    r.drift = unique_by_id(
        await system.topic("driftline.drift.v1").read(
            where=mine, until=_windows_of(MODEL_ID, WINDOWS), timeout=120
        )
    )
    # labels once every window's verdict is out (so every prediction is in the label join)
    await _stage(r, "labels", _labels(r, r.main))
    await _stage(r, "labels (no reference)", _labels(r, r.noref))

    def perf_seen(records: list[dict[str, Any]]) -> bool:
        return _windows_of(MODEL_ID, WINDOWS, "window_metrics")(records) and _windows_of(
            NOREF_ID, NOREF_WINDOWS, "window_metrics"
        )(records)

    results = unique_by_id(
        await system.topic("driftline.performance.v1").read(
            where=mine, until=perf_seen, timeout=120
        )
    )
    r.performance = [x for x in results if x.get("kind") == "window_metrics"]
    r.concept = [x for x in results if x.get("kind") == "concept_drift"]

    expected = {("FeatureDrift", f) for f in DRIFTED} | {("ConceptDrift", "")}

    async def alerts_delivered() -> bool:
        r.alerts = await system.topic("driftline.alerts.v1").read(where=mine, timeout=10)
        firing = [
            a for a in r.alerts if a["kind"] == "firing" and a["labels"].get("model") == MODEL_ID
        ]
        names = {(a["labels"].get("alertname"), a["labels"].get("feature", "")) for a in firing}
        got = {
            al["fingerprint"]
            for hit in receiver.received
            for al in hit["payload"]["alerts"]
            if al["status"] == "firing"
        }
        return expected <= names and {a["fingerprint"] for a in firing} <= got

    await _stage(r, "alerts", poll(alerts_delivered, timeout=90, interval=1, what="alerts"))
    r.alerts = await system.topic("driftline.alerts.v1").read(where=mine, timeout=10)
    r.registry = await system.topic("driftline.registry.v1").read(where=mine, timeout=10)
    r.dlq = await system.topic("driftline.dlq.v1").read(timeout=10)
    r.dlq_metric = await _dlq_metric(system)
    r.influx_windows = await system.influx(
        "SELECT events, dataset_drift, drifted_share FROM drift_window "
        f"WHERE tenant = '{tenant.tenant_id}' AND model = '{MODEL_ID}' AND segment = '' "
        "GROUP BY model, version"
    )

    wanted = {str(x["event_id"]) for x in r.registry + r.alerts}

    async def audited() -> bool:
        r.audit = await tenant.audit_records()
        return wanted <= {str(x["source_id"]) for x in r.audit}

    await _stage(r, "audit", poll(audited, timeout=90, interval=1, what="audit records"))
    await _stage(r, "verify", _verify(r))
    await _stage(r, "report", _report(r))
    if os.environ.get("DRIFTLINE_E2E_DUMP"):  # what the run saw, for reading after it
        Path(os.environ["DRIFTLINE_E2E_DUMP"]).write_bytes(
            orjson.dumps(
                {
                    "t0": r.t0,
                    "failed": r.failed,
                    "drift": r.drift,
                    "performance": r.performance,
                    "concept": r.concept,
                    "alerts": r.alerts,
                    "dlq": r.dlq,
                    "attempts": [a.__dict__ for a in receiver.attempts],
                    "verify": r.verify,
                    "report_summary": r.report.get("summary"),
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    return r


async def _dlq_metric(system: System) -> float:
    async with httpx.AsyncClient(timeout=10) as c:
        text = (await c.get(f"{system.url('drift-detection')}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("driftline_dlq_records_total{")
        and 'source_topic="driftline.predictions.v1"' in line
    )


async def _verify(r: Run) -> None:
    r.verify = await r.tenant.audit_verify()


async def _report(r: Run) -> None:
    start = datetime.fromtimestamp(r.t0, UTC) - timedelta(minutes=2)
    r.report = await r.tenant.report(
        "fda", start, datetime.now(UTC) + timedelta(minutes=1), model_id=MODEL_ID
    )


# --- the promises ---------------------------------------------------------------------------


def _dead_ids(run: Run) -> Counter[str]:
    """How often each of the run's event ids occurs in the DLQ."""
    ours = run.main.ids() | run.noref.ids() | set(run.main.label_ids) | set(run.noref.label_ids)
    ours.add(run.poison_id)
    found: Counter[str] = Counter()
    for d in run.dlq:
        text = str(d)
        if d.get("payload_encoding") == "base64":
            text += base64.b64decode(d.get("payload") or "").decode(errors="replace")
        found.update(i for i in ours if i in text)
    return found


def test_nothing_accepted_is_dead_lettered_and_the_poison_record_is_once(run: Run) -> None:
    run.need("stream", "labels", "labels (no reference)")
    assert sum(len(v) for v in run.main.accepted.values()) == WINDOWS * PER_WINDOW
    assert sum(len(v) for v in run.noref.accepted.values()) == NOREF_WINDOWS * NOREF_PER_WINDOW
    dead = _dead_ids(run)
    assert dead.pop(run.poison_id, 0) == 1, "the poison record: one DLQ copy"
    assert not dead, f"{len(dead)} accepted events or labels dead-lettered"
    [poison] = [d for d in run.dlq if run.poison_id in str(d)]
    assert poison["reason"], "a DLQ record says why"
    assert poison["source_topic"] == "driftline.predictions.v1"
    assert run.dlq_metric == 1, "and it is counted in a metric"


def test_exactly_the_planted_features_are_flagged_from_the_planted_window_on(run: Run) -> None:
    run.need("stream")
    by_window: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in run.whole(run.drift, MODEL_ID):
        by_window[run.window_of(d["window"]["start"])].append(d)
    assert sorted(by_window) == list(range(WINDOWS)), "a verdict per window, and only those"
    flagged = {
        k: {f["feature"] for d in ds for f in d["features"] if f["drifted"]}
        for k, ds in by_window.items()
    }
    planted = {k: (DRIFTED if k >= DRIFT_FROM else set()) for k in range(WINDOWS)}
    assert flagged == planted
    # every window tested every feature against the reference, the first ones included
    tested = {k: {f["feature"] for d in ds for f in d["features"]} for k, ds in by_window.items()}
    assert tested == dict.fromkeys(range(WINDOWS), FEATURES), "windows without verdicts"


def test_each_window_counts_every_accepted_event_once(run: Run) -> None:
    run.need("stream")
    counts: dict[int, list[int]] = defaultdict(list)
    for d in run.whole(run.drift, MODEL_ID):
        counts[run.window_of(d["window"]["start"])].append(d["window"]["events"])
    accepted = {k: len(set(v)) for k, v in run.main.accepted.items()}
    assert dict(counts) == {k: [n] for k, n in accepted.items()}
    # and what the dashboards and reports read (InfluxDB, timestamp = the window's end)
    influx = {
        round((w["time"] / 1000 - run.t0) / WINDOW_S) - 1: int(w["events"])
        for w in run.influx_windows
    }
    assert influx == accepted


def _independent(sent: Sent, window: int) -> dict[str, float]:
    ids = sent.labelled[window]
    y = np.array([sent.truth[i].actual for i in ids])
    pred = np.array([sent.truth[i].predicted for i in ids])
    p1 = np.array([sent.truth[i].p1 for i in ids])
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label=1, zero_division=0),
        "recall": skm.recall_score(y, pred, pos_label=1, zero_division=0),
        "f1": skm.f1_score(y, pred, pos_label=1, zero_division=0),
        "log_loss": skm.log_loss(y, p1, labels=[0, 1]),
        "roc_auc": skm.roc_auc_score(y, p1),
    }


def _auc_tolerance(sent: Sent, window: int) -> float:
    """The documented bound: pairs (positive, negative) whose scores share one of the
    1,000 bins are counted as ties (half a pair each, where the true order gives 0 or 1), so
    |error| <= half the share of such pairs."""
    ids = sent.labelled[window]
    bins = [min(AUC_BINS - 1, int(sent.truth[i].p1 * AUC_BINS)) for i in ids]
    pos = Counter(b for b, i in zip(bins, ids, strict=True) if sent.truth[i].actual == 1)
    neg = Counter(b for b, i in zip(bins, ids, strict=True) if sent.truth[i].actual == 0)
    shared = sum(pos[b] * neg[b] for b in pos)
    return 0.5 * shared / (sum(pos.values()) * sum(neg.values()))


def _check_performance(run: Run, sent: Sent, windows: int) -> dict[int, dict[str, Any]]:
    by_window: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in run.whole(run.performance, sent.model_id):
        by_window[run.window_of(p["window"]["start"])].append(p)
    assert sorted(by_window) == list(range(windows)), f"{sent.model_id}: a result per window"
    for k in range(windows):
        [got] = by_window[k]
        want = _independent(sent, k)
        assert got["labelled"] == len(sent.labelled[k]), f"{sent.model_id} window {k}"
        for name in ("accuracy", "precision", "recall", "f1", "log_loss"):
            assert name in got["metrics"], f"{sent.model_id} window {k}: no {name}"
            assert math.isclose(got["metrics"][name], want[name], rel_tol=0, abs_tol=TOL), (
                f"{sent.model_id} window {k} {name}: Driftline {got['metrics'][name]!r}, "
                f"scikit-learn {want[name]!r}"
            )
        assert "roc_auc" in got["metrics"], f"{sent.model_id} window {k}: no roc_auc"
        tol = _auc_tolerance(sent, k) + TOL
        assert abs(got["metrics"]["roc_auc"] - want["roc_auc"]) <= tol, (
            f"{sent.model_id} window {k} roc_auc: Driftline {got['metrics']['roc_auc']!r}, "
            f"scikit-learn {want['roc_auc']!r}, tolerance {tol:.2e}"
        )
    return {k: v[0] for k, v in by_window.items()}


def test_performance_per_window_equals_scikit_learn(run: Run) -> None:
    run.need("stream", "labels")
    by_window = _check_performance(run, run.main, WINDOWS)
    # the planted rise in the error rate is what the numbers show
    acc = [by_window[k]["metrics"]["accuracy"] for k in range(WINDOWS)]
    assert max(acc[CONCEPT_FROM:]) < min(acc[:CONCEPT_FROM]) - 0.1


def test_a_model_without_a_reference_gets_its_performance_windows(run: Run) -> None:
    run.need("stream", "labels (no reference)")
    _check_performance(run, run.noref, NOREF_WINDOWS)


def test_concept_drift_is_signalled_after_the_error_rate_rises_and_not_before(run: Run) -> None:
    run.need("labels")
    mine = [c for c in run.concept if c["model_id"] == MODEL_ID]
    assert mine, "no concept_drift signal"
    first = min(datetime.fromisoformat(c["occurred_at"]).timestamp() for c in mine)
    assert first >= run.t0 + CONCEPT_FROM * WINDOW_S


def test_each_drift_alert_reaches_the_verified_webhook_once_per_idempotency_key(
    run: Run, receiver: Receiver
) -> None:
    run.need("alerts")
    firing = [a for a in run.alerts if a["kind"] == "firing"]
    main = [a for a in firing if a["labels"].get("model") == MODEL_ID]
    names = {(a["labels"]["alertname"], a["labels"].get("feature", "")) for a in main}
    assert {f for n, f in names if n == "FeatureDrift"} == DRIFTED
    assert ("ConceptDrift", "") in names
    assert all(a.status != 401 for a in receiver.attempts), "a signature did not verify"
    accepted = Counter(a.idempotency_key for a in receiver.attempts if a.status == 204)
    assert accepted, "nothing was accepted"
    assert all(n == 1 for n in accepted.values()), f"accepted twice: {accepted}"
    assert all(a.idempotency_key == a.webhook_id for a in receiver.attempts)
    # the receiver failed one first attempt: it was retried with the same key, accepted once
    tries = Counter(a.idempotency_key for a in receiver.attempts)
    retried = [k for k, n in tries.items() if n > 1]
    assert retried, "the failed first attempt was never retried"
    assert all(accepted[k] == 1 for k in retried)
    delivered = Counter(
        al["fingerprint"]
        for hit in receiver.received
        for al in hit["payload"]["alerts"]
        if al["status"] == "firing"
    )
    for a in firing:
        n = delivered[a["fingerprint"]]
        assert n == 1, f"{a['labels']} delivered {n} times"


def test_the_audit_chain_verifies_and_holds_the_runs_registry_changes_and_alerts(run: Run) -> None:
    run.need("audit", "verify")
    assert run.verify["ok"] is True, run.verify
    stored = Counter(str(x["source_id"]) for x in run.audit)
    registry = {str(x["event_id"]) for x in run.registry}
    alerts = {str(x["event_id"]) for x in run.alerts}
    changes = {(x["model_id"], x["change"]) for x in run.registry}
    assert {
        (MODEL_ID, "model_registered"),
        (MODEL_ID, "reference_profile_updated"),
        (MODEL_ID, "version_registered"),
        (NOREF_ID, "model_registered"),
    } <= changes
    assert alerts, "no alert events"
    assert registry <= set(stored)
    assert alerts <= set(stored)
    assert all(stored[i] == 1 for i in registry | alerts), "an event was appended twice"
    seqs = sorted(int(x["seq"]) for x in run.audit)
    assert seqs == list(range(1, len(seqs) + 1)), "the chain has gaps"


def test_the_compliance_report_counts_what_the_stream_did(run: Run) -> None:
    run.need("report")
    doc = run.report
    summary = doc["summary"]
    assert summary["integrity"] == "verified"
    whole = run.whole(run.drift, MODEL_ID)
    [mon] = [m for m in doc["monitoring"] if m["model_id"] == MODEL_ID]
    assert summary["windows"] == mon["windows"] == len(whole) == WINDOWS
    assert mon["events"] == len(run.main.ids())
    assert mon["performance_windows"] == WINDOWS
    per_feature = Counter(f["feature"] for d in whole for f in d["features"] if f["drifted"])
    assert {f["feature"]: f["drifted"] for f in mon["features"]} == {
        f: per_feature.get(f, 0) for f in FEATURES
    }
    dataset = sum(1 for d in whole if d["dataset_drift"])
    any_feature = sum(1 for d in whole if any(f["drifted"] for f in d["features"]))
    assert any_feature == WINDOWS - DRIFT_FROM
    # both figures, each named for what it counts (defect 8)
    assert summary["windows_with_dataset_drift"] == dataset
    assert summary["windows_with_feature_drift"] == any_feature
    assert summary["versions_registered"] == 1
    assert summary["versions_monitored"] == 1
    main = {
        a["fingerprint"]
        for a in run.alerts
        if a["kind"] == "firing" and a["labels"].get("model") == MODEL_ID
    }
    assert summary["alerts"] == len(main)
