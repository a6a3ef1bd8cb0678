"""Every panel of every Grafana dashboard, run against a real run (issue 16), standing in
for a Grafana server (whose license rules it out here): every service as its own process
(harness.py), a classifier streamed over HTTP window by window with drift planted in two
named features from a known window on, refused events, late labels, alerts to a webhook
receiver that fails once, an audit verification; a private Prometheus scrapes the run's
services every second. Then each panel's queries are sent with the template variables,
`$timeFilter`, `$__interval` and `$__rate_interval` substituted as Grafana does
(deploy/grafana/queries.py) to the real InfluxDB and Prometheus, and what they return is
checked against the planted truth:

- every query returns series, and the values are plausible (ranges, signs, p50 <= p99);
- the drift heat map is non-zero exactly for the drifted features;
- the event-rate panels sum to the events accepted, the class mix too, labelled events to
  the labels sent, business value to the values sent, quality counts to events x features;
- reference and current shares each sum to 1, and the current window of the drifted
  feature differs from the reference where the other features' do not;
- the Prometheus counters behind the platform panels equal what was sent (refused events,
  DLQ records, notifications sent and failed by the receiver's own log).

A second model of the tenant logs only through `driftline.KafkaLogger`, batch and per-event
records straight to Kafka (drift detection writes their live series, `source=kafka`): the
fleet's event rate is the HTTP events plus the Kafka events, and that model's live panels
(event rate, latency, class mix, prediction mean) show its own events.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from harness import ROOT, Receiver, System, Tenant, free_port, poll

from driftline import KafkaLogger

sys.path.insert(0, str(ROOT / "deploy" / "grafana"))

import generate
from queries import (
    Series,
    TimeRange,
    panel_results,
    run_prometheus,
    variable_values,
)

pytestmark = pytest.mark.timeout(900)

WINDOW_S, GRACE_S = 60, 5
WINDOWS = 4
PER_WINDOW = 500
DRIFT_FROM = 2
DRIFTED = {"x2", "c0"}  # x2: mean +1.5 sd; c0: 40% a category the reference lacks
FEATURES = ["x0", "x1", "x2", "c0", "c1"]
MODEL_ID, VERSION = "dash", "1"
SCRAPE_S = 1.0
MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "name": "Dashboard check (planted drift)",
    "task": "classification",
    "feature_schema": {
        "features": [
            {"name": "x0", "kind": "numeric"},
            {"name": "x1", "kind": "numeric"},
            {"name": "x2", "kind": "numeric"},
            {"name": "c0", "kind": "categorical"},
            {"name": "c1", "kind": "categorical", "categories": ["u", "v", "w"]},
        ]
    },
    "classes": {"classes": ["0", "1"], "positive_class": "1"},
    "monitoring": {
        "window": {"kind": "time", "seconds": WINDOW_S, "grace_seconds": GRACE_S},
        "label_ttl_seconds": 3600,
        "segments": ["c1"],  # windows per value of c1 too: c1=u, c1=v, c1=w
    },
}
SEGMENT = "c1=u"
KAFKA_MODEL = "dash-kafka"  # logs only straight to Kafka (KafkaLogger)
KAFKA_SPEC: dict[str, Any] = {
    **{k: v for k, v in MODEL.items() if k != "monitoring"},
    "id": KAFKA_MODEL,
    "name": "Dashboard check (Kafka-native producer)",
    "monitoring": {"window": {"kind": "time", "seconds": WINDOW_S, "grace_seconds": GRACE_S}},
}


def rows(rng: np.random.Generator, n: int, drifted: bool) -> list[dict[str, Any]]:
    c0 = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object)
    if drifted:
        c0[rng.random(n) < 0.4] = "z"
    cols = {
        "x0": rng.normal(0, 1, n),
        "x1": rng.normal(5, 2, n),
        "x2": rng.normal(65 if drifted else 50, 10, n),
        "c0": c0,
        "c1": rng.choice(["u", "v", "w"], n, p=[0.4, 0.4, 0.2]),
    }
    return [
        {k: (str(v) if k in ("c0", "c1") else v.item()) for k in cols for v in [cols[k][i]]}
        for i in range(n)
    ]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Run:
    tenant: Tenant
    t0: float
    started_ms: int
    accepted: list[str] = field(default_factory=list)
    value_sent: float = 0.0
    latencies: list[float] = field(default_factory=list)
    labels_sent: int = 0
    predictions_sum: float = 0.0  # of the accepted predictions (0/1)
    value_wrong: float = 0.0  # business_value of the labelled events predicted wrong
    refused: int = 0  # events refused by ingestion (each a DLQ record)
    refused_requests: int = 0  # requests answered 422
    prometheus: str = ""
    board_values: dict[str, str] = field(default_factory=dict)
    services: int = 0  # processes Prometheus scrapes (one build_info each)
    accuracy: list[float] = field(default_factory=list)  # per window, from the labels sent
    segment: dict[str, Any] = field(default_factory=dict)  # SEGMENT's own counts
    kafka_sent: list[str] = field(default_factory=list)  # KAFKA_MODEL's events (ids)
    kafka_latencies: list[float] = field(default_factory=list)
    kafka_predictions_sum: float = 0.0

    def expected(self, segment: bool = False, kafka: bool = False) -> dict[str, Any]:
        """What the panels' checks compare with; `segment`: the window panels of SEGMENT
        (the live series have no segment: their panels show the whole model); `kafka`:
        the live panels of KAFKA_MODEL."""
        if kafka:
            return {"events_sent": len(self.kafka_sent), "latencies": self.kafka_latencies}
        seg = self.segment if segment else {}
        events = seg.get("events", len(self.accepted))
        return {
            "latencies": self.latencies,
            "events_sent": len(self.accepted),
            "events_sent_total": len(self.accepted) + len(self.kafka_sent),
            "labels_sent": seg.get("labels", self.labels_sent),
            "value_sent": seg.get("value", self.value_sent),
            "events_sent_times_features": events * len(FEATURES),
            "accuracy": seg.get("accuracy", self.accuracy),
            "services": self.services,
            "drifted_features": DRIFTED,
            # a segment's key is constant within it: not tested there
            "features": [f for f in FEATURES if not (segment and SEGMENT.startswith(f + "="))],
        }


class PrivateProm:
    """Prometheus of the test's own, scraping the run's services every second."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = workdir / "prometheus"
        self.dir.mkdir(parents=True, exist_ok=True)
        quoted = ", ".join(f"'{t}'" for t in targets)
        (self.dir / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {SCRAPE_S:g}s\n  evaluation_interval: 15s\n"
            f"scrape_configs:\n  - job_name: driftline\n    static_configs:\n"
            f"      - targets: [{quoted}]\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateProm:
        exe = shutil.which("prometheus")
        assert exe, "prometheus is missing (deploy/local/bootstrap.sh installs it)"
        self.log = open(self.dir / "prometheus.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    async def instant(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as c:
            r = await c.get("/api/v1/query", params={"query": expr})
            r.raise_for_status()
            out: list[dict[str, Any]] = r.json()["data"]["result"]
            return out

    async def total(self, expr: str) -> float:
        res = await self.instant(f"sum({expr})")
        return float(res[0]["value"][1]) if res else 0.0


@pytest.fixture(scope="module")
def prom(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateProm]:
    targets = [system.url(n).removeprefix("http://") for n in system.services]
    p = PrivateProm(tmp_path_factory.mktemp("prom"), targets).start()
    try:
        yield p
    finally:
        p.stop()


async def refuse(run: Run, prom: PrivateProm, system: System) -> None:
    """Events ingestion refuses (unknown feature, wrong type): one request at a time, so
    each is a 422 and a DLQ record."""
    async with run.tenant.http("ingestion") as c:
        for bad in (
            {"model_id": MODEL_ID, "model_version": VERSION, "features": {"nope": 1}},
            {"model_id": MODEL_ID, "model_version": VERSION, "features": {"x0": "text"}},
        ):
            r = await c.post("/v1/events/predictions", json=[bad])
            assert r.status_code == 422, r.text
            run.refused += 1
            run.refused_requests += 1


async def stream(run: Run) -> None:
    rng = np.random.default_rng(16)
    for k in range(WINDOWS):
        feats = rows(rng, PER_WINDOW, drifted=k >= DRIFT_FROM)
        times = run.t0 + k * WINDOW_S + np.sort(rng.uniform(0, WINDOW_S - 1, PER_WINDOW))
        x0 = np.array([r["x0"] for r in feats])
        p1 = 1 / (1 + np.exp(-2 * x0))
        lat = rng.gamma(2.0, 10.0, PER_WINDOW).round(3)
        value = rng.uniform(1, 100, PER_WINDOW).round(2)
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "timestamp": iso(t),
                "features": f,
                "prediction": int(p >= 0.5),
                "probabilities": {"0": 1 - p, "1": p},
                "latency_ms": float(lt),
                "business_value": float(v),
            }
            for f, t, p, lt, v in zip(feats, times, p1.tolist(), lat, value, strict=True)
        ]
        run.accepted += await run.tenant.log_http(MODEL_ID, VERSION, events)
        run.value_sent += float(value.sum())
        run.latencies += lat.tolist()
        labels = [
            {
                "prediction_event_id": e["event_id"],
                "actual": int(rng.random() < p),
                "timestamp": iso(t + 0.5),
            }
            for e, p, t in zip(events, p1.tolist(), times, strict=True)
            if rng.random() < 0.6
        ]
        run.labels_sent += len(await run.tenant.log_actuals(MODEL_ID, labels))
        run.predictions_sum += sum(e["prediction"] for e in events)
        by_id = {e["event_id"]: e for e in events}
        seg = run.segment
        mine = [e for e in events if f"c1={e['features']['c1']}" == SEGMENT]
        seg["events"] = seg.get("events", 0) + len(mine)
        seg["value"] = seg.get("value", 0.0) + sum(e["business_value"] for e in mine)
        right = [by_id[lab["prediction_event_id"]]["prediction"] == lab["actual"] for lab in labels]
        run.accuracy.append(sum(right) / len(right))
        in_seg = [
            ok
            for lab, ok in zip(labels, right, strict=True)
            if f"c1={by_id[lab['prediction_event_id']]['features']['c1']}" == SEGMENT
        ]
        seg["labels"] = seg.get("labels", 0) + len(in_seg)
        seg.setdefault("accuracy", []).append(sum(in_seg) / len(in_seg))
        run.value_wrong += sum(
            by_id[lab["prediction_event_id"]]["business_value"]
            for lab in labels
            if by_id[lab["prediction_event_id"]]["prediction"] != lab["actual"]
        )


async def stream_kafka(run: Run, system: System) -> None:
    """KAFKA_MODEL's events straight to Kafka, as batch records (three of them) and as
    per-event records; no timestamps (the windows' time is now)."""
    rng = np.random.default_rng(61)
    for fmt, n in (("batch", 600), ("events", 150)):
        feats = rows(rng, n, drifted=False)
        x0 = np.array([r["x0"] for r in feats])
        lat = rng.gamma(3.0, 5.0, n).round(3)
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "features": f,
                "prediction": int(x >= 0),
                "latency_ms": float(lt),
            }
            for f, x, lt in zip(feats, x0.tolist(), lat, strict=True)
        ]
        async with KafkaLogger(
            run.tenant.tenant_id, system.kafka_settings, record_format=fmt, batch_events=250
        ) as k:
            assert await k.log_predictions(KAFKA_MODEL, VERSION, events) == n
        run.kafka_sent += [e["event_id"] for e in events]
        run.kafka_latencies += lat.tolist()
        run.kafka_predictions_sum += sum(e["prediction"] for e in events)


@pytest.fixture(scope="module")
async def run(system: System, tenant: Tenant, receiver: Receiver, prom: PrivateProm) -> Run:
    now = time.time()
    r = Run(tenant, (now - 10 * 60) // WINDOW_S * WINDOW_S, int(now * 1000))
    r.prometheus = prom.url
    r.services = len(system.services)
    await tenant.put_alerting(
        {
            "route": {
                "receiver": "dash",
                "group_by": ["..."],
                "group_wait_s": 0,
                "group_interval_s": 1,
                "repeat_interval_s": 3600,
            },
            "receivers": [
                {
                    "name": "dash",
                    "type": "webhook",
                    "url": receiver.url,
                    "secrets": [receiver.secret],
                    "format": "alertmanager",
                }
            ],
        },
        rules=[],
    )
    await tenant.register(MODEL)
    await tenant.add_version(MODEL_ID, VERSION)
    await tenant.upload_reference(MODEL_ID, rows(np.random.default_rng(7), 5000, False))
    await tenant.register(KAFKA_SPEC)
    await tenant.add_version(KAFKA_MODEL, VERSION)
    await tenant.upload_reference(KAFKA_MODEL, rows(np.random.default_rng(8), 2000, False))

    async def scraping() -> bool:
        up = await prom.instant('up{job="driftline"} == 1')
        return len(up) == len(system.services)

    await poll(scraping, timeout=60, interval=0.5, what="Prometheus scraping every service")
    await refuse(r, prom, system)
    # a second round once Prometheus holds the counters, so their rate is visible too
    await poll(
        lambda: prom.total("driftline_events_rejected_total"),
        timeout=30,
        interval=0.5,
        what="the refused events in Prometheus",
    )
    await refuse(r, prom, system)
    await stream(r)
    await stream_kafka(r, system)
    ident = f"\"tenant\" = '{tenant.tenant_id}' AND \"model\" = '{MODEL_ID}'"
    kident = f"\"tenant\" = '{tenant.tenant_id}' AND \"model\" = '{KAFKA_MODEL}'"

    async def influx_complete() -> bool:
        windows = await system.influx(
            f"SELECT events FROM drift_window WHERE {ident} AND \"segment\" = ''"
        )
        perf = await system.influx(
            f"SELECT labelled FROM performance WHERE {ident} AND \"segment\" = ''"
        )
        live = await system.influx(f'SELECT sum("events") FROM live_model WHERE {ident}')
        klive = await system.influx(f'SELECT sum("events") FROM live_model WHERE {kident}')
        alerts = await system.influx(f"SELECT firing FROM alert WHERE {ident}")
        seen.update(
            windows=(len(windows), WINDOWS),
            labelled=(sum(w["labelled"] for w in perf), r.labels_sent),
            live=(live[0]["sum"] if live else None, len(r.accepted)),
            kafka_live=(klive[0]["sum"] if klive else None, len(r.kafka_sent)),
            alerts=len(alerts),
        )
        return all(got == want for got, want in list(seen.values())[:4]) and len(alerts) >= 1

    seen: dict[str, object] = {}  # what InfluxDB held at the last look, against what is due
    try:
        await poll(influx_complete, timeout=240, interval=1, what="windows, labels, alerts")
    except AssertionError as e:
        raise AssertionError(f"{e}; (in InfluxDB, due): {seen}") from None
    verdict = await tenant.audit_verify()
    assert verdict["ok"], verdict

    async def prom_complete() -> bool:
        sent = await prom.total("driftline_notifications_sent_total")
        failed = await prom.total("driftline_notifications_failed_total")
        ok = await prom.instant("driftline_audit_verification_ok")
        heads = await prom.instant("driftline_audit_chain_head_sequence")
        return bool(sent >= 1 and failed >= 1 and ok and heads)

    await poll(prom_complete, timeout=120, interval=1, what="notifications and audit in Prometheus")
    r.board_values = {
        "tenant": tenant.tenant_id,
        "model": MODEL_ID,
        "version": VERSION,
        "segment": "$__all",  # the whole population
        "feature": "x2",
    }
    return r


def time_range(run: Run) -> TimeRange:
    return TimeRange(int((run.t0 - WINDOW_S) * 1000), int(time.time() * 1000) + 5000)


def check_panel(
    name: str,
    title: str,
    series: list[Series],
    checks: dict[str, Any],
    run: Run,
    *,
    segment: bool = False,
    kafka: bool = False,
):
    """The panel's expectations (deploy/grafana/generate.py) against its data (`segment`:
    the board shows SEGMENT; `kafka`: KAFKA_MODEL)."""
    where = f"{name} / {title}"
    assert len(series) >= checks.get("min_series", 1), f"{where}: no series"
    numbers = [x for s in series for x in s.numbers()]
    assert numbers, f"{where}: series without values"
    if checks.get("positive"):
        assert min(numbers) >= 0, where
        assert max(numbers) > 0, where
    if checks.get("non_negative"):
        assert min(numbers) >= 0, where
    if checks.get("positive_somewhere"):
        assert max(numbers) > 0, f"{where}: never above zero"
    if rng := checks.get("range"):
        assert rng[0] <= min(numbers), where
        assert max(numbers) <= rng[1], where
    expected = run.expected(segment, kafka)
    if key := checks.get("sum_equals"):
        col = checks.get("column")
        total = sum(
            v or 0
            for s in series
            for v in (s.column(col) if col else [x for row in s.values for x in row[1:]])
        )
        assert total == pytest.approx(expected[key], rel=1e-9), f"{where}: sum {total}"
    if col_sum := checks.get("column_sum"):
        col, key = col_sum
        total = sum(v or 0 for s in series for v in s.column(col))
        assert total == expected[key], f"{where}: {col} sums to {total}"
    if checks.get("latency"):
        (s,) = series
        lat = expected["latencies"]
        for p50, p99 in zip(s.column("p50"), s.column("p99"), strict=True):
            if p50 is not None:
                assert p50 <= p99, where
                assert min(lat) <= p50 <= max(lat), where
                assert p99 <= max(lat), where
    if checks.get("heatmap_drifted"):
        flagged = {s.tags["feature"]: max(s.numbers()) for s in series}
        assert set(flagged) == set(expected["features"]), f"{where}: {flagged}"
        nonzero = {f for f, v in flagged.items() if v > 0}
        assert nonzero == DRIFTED, f"{where}: non-zero for {nonzero}"
    if checks.get("accuracy"):
        got = sorted(v for s in series for v in s.column("accuracy") if v is not None)
        assert got == pytest.approx(sorted(expected["accuracy"]), abs=1e-9), where
    if key := checks.get("rows_equal"):
        assert len(series) == expected[key], f"{where}: {len(series)} rows"
    if key := checks.get("alert_rows"):
        rows = [s.tags.get("feature", "") for s in series if s.tags.get("feature")]
        assert sorted(rows) == sorted(expected[key]), f"{where}: rows {rows}"
        assert set(numbers) <= {0.0, 1.0}, f"{where}: {set(numbers)}"
        for s in series:
            if s.tags.get("feature"):
                assert 1.0 in s.numbers(), f"{where}: {s.tags} never fired"
    if checks.get("shares"):
        ref = sum(s.column("reference")[0] for s in series)
        cur = sum(s.column("current")[0] for s in series)
        assert ref == pytest.approx(1.0)
        assert cur == pytest.approx(1.0)


async def test_the_template_variables_offer_the_run(run: Run, system: System):
    board = json.loads((ROOT / "deploy/grafana/dashboards/feature-detail.json").read_text())
    offered = variable_values(
        board,
        run.board_values,
        influx_url=system.settings.influx.url,
        influx_database=system.influx_database,
    )
    assert run.tenant.tenant_id in offered["tenant"]
    assert sorted(offered["model"]) == sorted([MODEL_ID, KAFKA_MODEL])
    assert offered["version"] == [VERSION]
    assert set(FEATURES) <= set(offered["feature"]) <= {*FEATURES, "prediction"}
    # "All" is the whole population; the segment key's values are offered besides
    assert sorted(offered["segment"]) == ["c1=u", "c1=v", "c1=w"]


@pytest.mark.parametrize("name", sorted(generate.BOARDS))
async def test_every_panel_query_returns_plausible_series(run: Run, system: System, name: str):
    board = json.loads((ROOT / "deploy/grafana/dashboards" / name).read_text())
    checks = generate.checks()[name]
    results = await asyncio.to_thread(
        panel_results,
        board,
        run.board_values,
        time_range(run),
        influx_url=system.settings.influx.url,
        influx_database=system.influx_database,
        prometheus_url=run.prometheus,
        scrape_interval_s=SCRAPE_S,
    )
    panels = [p for p in board["panels"] if p.get("targets")]
    assert {id(r.panel) for r in results} == {id(p) for p in panels}  # every panel ran
    for p in panels:
        mine = [r for r in results if r.panel is p]
        want = checks[p["id"]]
        target = want.get("target")
        series = [s for r in mine if target in (None, r.target["refId"]) for s in r.series]
        check_panel(name, p["title"], series, want, run)


async def test_the_model_detail_panels_of_one_segment(run: Run, system: System):
    """The model-detail board with segment c1=u: the window panels count the segment's
    own events, labels, values and accuracy (the live ones still the whole model's)."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/model-detail.json").read_text())
    checks = generate.checks()["model-detail.json"]
    results = await asyncio.to_thread(
        panel_results,
        board,
        {**run.board_values, "segment": SEGMENT},
        time_range(run),
        influx_url=system.settings.influx.url,
        influx_database=system.influx_database,
        prometheus_url=run.prometheus,
        scrape_interval_s=SCRAPE_S,
    )
    assert 0 < run.segment["events"] < len(run.accepted) / 2
    for p in [p for p in board["panels"] if p.get("targets")]:
        want = checks[p["id"]]
        target = want.get("target")
        series = [
            s
            for r in results
            if r.panel is p
            for s in r.series
            if target in (None, r.target["refId"])
        ]
        check_panel("model-detail.json", p["title"], series, want, run, segment=True)
        if "segment" in p["targets"][0]["query"]:  # it filtered: only c1=u's series
            assert all(s.tags.get("segment", SEGMENT) == SEGMENT for s in series), p["title"]


async def test_reference_versus_current_shows_the_planted_shift(run: Run, system: System):
    """The latest window of a drifted feature differs from the reference (total variation
    well above sampling noise); an undrifted feature's matches it."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/feature-detail.json").read_text())
    tv = {}
    for feature in ("x2", "c0", "x1", "c1"):
        results = await asyncio.to_thread(
            panel_results,
            board,
            {**run.board_values, "feature": feature},
            time_range(run),
            influx_url=system.settings.influx.url,
            influx_database=system.influx_database,
        )
        (bins,) = [r for r in results if r.panel["title"] == "Reference versus latest window"]
        tv[feature] = 0.5 * sum(
            abs(s.column("current")[0] - s.column("reference")[0]) for s in bins.series
        )
    assert tv["x2"] > 0.3, tv
    assert tv["c0"] > 0.3, tv
    assert tv["x1"] < 0.1, tv
    assert tv["c1"] < 0.1, tv


async def test_the_platform_counters_equal_what_happened(
    run: Run, system: System, receiver: Receiver
):
    prom = run.prometheus
    tr = time_range(run)

    async def total(expr: str) -> float:
        res = await asyncio.to_thread(run_prometheus, prom, f"sum({expr})", tr, SCRAPE_S)
        return res[0].values[-1][1] if res else 0.0

    assert await total("driftline_events_rejected_total") == run.refused
    assert await total('driftline_dlq_records_total{error_type="rejected_at_ingestion"}') == (
        run.refused
    )
    assert (
        await total('driftline_http_requests_total{route="/v1/events/predictions",status="422"}')
        == run.refused_requests
    )
    assert await total('driftline_events_accepted_total{kind="prediction"}') == len(run.accepted)
    assert await total("driftline_predictions_processed_total") == len(run.accepted) + len(
        run.kafka_sent
    )
    # the "no data" rule's gauge, from each source: ingestion's and drift detection's
    tenant = run.tenant.tenant_id
    for model, source in ((MODEL_ID, "ingestion"), (KAFKA_MODEL, "kafka")):
        gauge = "driftline_model_last_event_timestamp_seconds"
        sel = f'{gauge}{{tenant="{tenant}",model="{model}",source="{source}"}}'
        seen = await total(sel)
        assert run.started_ms / 1000 - 60 < seen <= time.time(), (model, source, seen)
    other = f'source="kafka",model="{MODEL_ID}"'  # HTTP events are never counted twice
    assert await total(f"driftline_model_last_event_timestamp_seconds{{{other}}}") == 0
    assert await total('driftline_windows_closed_total{kind="drift"}') >= WINDOWS
    failed = sum(1 for a in receiver.attempts if a.status != 204)
    delivered = sum(1 for a in receiver.attempts if a.status == 204)

    async def notified() -> bool:
        return await total('driftline_notifications_failed_total{receiver="webhook"}') == sum(
            1 for a in receiver.attempts if a.status != 204
        ) and await total('driftline_notifications_sent_total{receiver="webhook"}') == sum(
            1 for a in receiver.attempts if a.status == 204
        )

    await poll(notified, timeout=30, interval=1, what="notification counters = receiver log")
    assert failed >= 1
    assert delivered >= 1


async def test_the_demo_renders_the_model_detail_panels(run: Run, system: System, tmp_path):
    """deploy/local/demo_dashboards.py on the run's data: a PNG per model-detail panel and
    the sheet of all (`DRIFTLINE_E2E_DASHBOARDS_DIR` keeps them, e.g. for docs/img)."""
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    import os

    import demo_dashboards

    out = Path(os.environ.get("DRIFTLINE_E2E_DASHBOARDS_DIR") or tmp_path)
    tr = time_range(run)
    paths = await asyncio.to_thread(
        demo_dashboards.render,
        run.tenant.tenant_id,
        datetime.fromtimestamp(tr.start_ms / 1000, UTC),
        until=datetime.fromtimestamp(tr.end_ms / 1000, UTC),
        model=MODEL_ID,
        version=VERSION,
        influx_url=system.settings.influx.url,
        database=system.influx_database,
        out=out,
    )
    board = json.loads((ROOT / "deploy/grafana/dashboards/model-detail.json").read_text())
    assert len(paths) == 1 + sum(1 for p in board["panels"] if p.get("targets"))
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 5000, p  # drawn, not blank


async def test_live_prediction_mean_and_business_value_of_wrong_predictions(
    run: Run, system: System
):
    """Two numbers recomputed from what was sent: the live prediction means weighted by
    their counts give the sum of the predictions; the performance windows' value of wrong
    predictions is the business_value of the labelled events whose label differs."""
    ident = f"\"tenant\" = '{run.tenant.tenant_id}' AND \"model\" = '{MODEL_ID}'"
    live = await system.influx(
        f"SELECT prediction_mean, prediction_count FROM live_model WHERE {ident}"
    )
    weighted = sum(
        r["prediction_mean"] * r["prediction_count"] for r in live if r["prediction_count"]
    )
    assert weighted == pytest.approx(run.predictions_sum, rel=1e-9)
    perf = await system.influx(
        f"SELECT business_value_wrong FROM performance WHERE {ident} AND \"segment\" = ''"
    )
    assert sum(r["business_value_wrong"] for r in perf) == pytest.approx(run.value_wrong, rel=1e-9)
    assert run.value_wrong > 0


async def test_the_live_panels_of_a_kafka_only_model(run: Run, system: System):
    """KAFKA_MODEL never passed ingestion: its live panels on the model-detail board show
    its own events (event rate and class mix sum to what the KafkaLogger sent, latency
    within the latencies sent, p50 <= p99, the prediction mean of 0/1 predictions), from
    drift detection's live series alone; the weighted mean is the predictions' sum."""
    board = json.loads((ROOT / "deploy/grafana/dashboards/model-detail.json").read_text())
    checks = generate.checks()["model-detail.json"]
    results = await asyncio.to_thread(
        panel_results,
        board,
        {**run.board_values, "model": KAFKA_MODEL},
        time_range(run),
        influx_url=system.settings.influx.url,
        influx_database=system.influx_database,
        prometheus_url=run.prometheus,
        scrape_interval_s=SCRAPE_S,
    )
    live = [p for p in board["panels"] if p.get("targets") and "live_" in p["targets"][0]["query"]]
    assert {p["title"] for p in live} == {
        "Event rate",
        "Model latency",
        "Prediction distribution",
        "Prediction mean",
    }
    for p in live:
        series = [s for r in results if r.panel is p for s in r.series]
        check_panel("model-detail.json", p["title"], series, checks[p["id"]], run, kafka=True)
    ident = f"\"tenant\" = '{run.tenant.tenant_id}' AND \"model\" = '{KAFKA_MODEL}'"
    points = await system.influx(
        f"SELECT prediction_sum, prediction_count, source FROM live_model WHERE {ident}"
    )
    assert {p["source"] for p in points} == {"kafka"}
    assert sum(p["prediction_count"] for p in points) == len(run.kafka_sent)
    assert sum(p["prediction_sum"] for p in points) == run.kafka_predictions_sum
