"""Drift detection: events/s from a topic already filled (20 numeric + 5 categorical
features, 20 models, 5-minute windows of ~5,000 events per model), profile bytes per
feature per window, and resident memory with 1,000 models x 25 features live."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import numpy as np
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from common import record, table

from driftline_core.db import Database
from driftline_core.events.batch import encode_batch
from driftline_core.events.features import MonitoringConfig
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import EventProducer
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import DriftlineSettings
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog, Monitored
from driftline_drift_detection.processor import DriftProcessor
from driftline_drift_detection.settings import DriftOptions
from driftline_stats.detector import Detector, FeatureReference
from driftline_stats.window import NumericWindow

NUM, CAT, MODELS = 20, 5, 20
CATS = np.array(["a", "b", "c", "d", "e"])


def rows(rng: np.random.Generator, n: int) -> list[dict[str, object]]:
    num = rng.normal(size=(n, NUM)).round(5)
    cat = rng.choice(CATS, size=(n, CAT))
    return [
        {
            **{f"n{j}": float(num[i, j]) for j in range(NUM)},
            **{f"c{j}": str(cat[i, j]) for j in range(CAT)},
        }
        for i in range(n)
    ]


def references() -> list[FeatureReference]:
    ref = rows(np.random.default_rng(1), 20_000)
    out = [FeatureReference.from_values(f"n{j}", [r[f"n{j}"] for r in ref]) for j in range(NUM)]
    out += [
        FeatureReference.from_values(f"c{j}", [r[f"c{j}"] for r in ref], categorical=True)
        for j in range(CAT)
    ]
    return out


async def _fill(s: DriftlineSettings, topic: str, n: int, fmt: str = "events") -> float:
    producer = EventProducer(s.kafka, max_batch_size=1 << 20)
    await producer.start()
    rng = np.random.default_rng(2)
    base = (time.time() // 300 - 48) * 300
    data = rows(rng, 20_000)
    t_fill = time.perf_counter()
    for chunk in range(0, n, 20_000):
        if fmt == "batch":  # columnar batch records of 1,000 events of one model
            by_model: dict[str, list[dict[str, object]]] = {}
            for i in range(20_000):
                k = chunk + i
                by_model.setdefault(f"m{k % MODELS}", []).append(
                    {
                        "event_id": str(uuid.uuid4()),
                        "timestamp": base + k * 0.003,
                        "features": data[i],
                        "prediction": 0.5,
                    }
                )
            await producer.send_records(
                topic,
                [
                    (f"bench:{m}".encode(), encode_batch("bench", m, "1", evs[j : j + 1000]))
                    for m, evs in by_model.items()
                    for j in range(0, len(evs), 1000)
                ],
            )
            continue
        recs = []
        for i in range(20_000):
            k = chunk + i
            m = f"m{k % MODELS}"
            ts = datetime.fromtimestamp(base + k * 0.003, UTC).isoformat()
            recs.append(
                (
                    f"bench:{m}".encode(),
                    orjson.dumps(
                        {
                            "event_id": str(uuid.uuid4()),
                            "schema_version": 1,
                            "tenant_id": "bench",
                            "occurred_at": ts,
                            "produced_at": ts,
                            "model_id": m,
                            "model_version": "1",
                            "features": data[i],
                            "prediction": 0.5,
                        }
                    ),
                )
            )
        await producer.send_records(topic, recs)
    await producer.stop()
    return n / (time.perf_counter() - t_fill)


async def _drop(s: DriftlineSettings, schema: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(**client_kwargs(s.kafka))
    await admin.start()
    await admin.delete_topics(topics)
    await admin.close()
    conn = await asyncpg.connect(s.postgres.dsn())
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


async def throughput(n: int, fmt: str = "events") -> dict[str, float]:
    """One processor in this process, from the start of a filled topic (per-event JSON
    records, or columnar batch records with `fmt="batch"`)."""
    s = DriftlineSettings(environment="test")
    topic, schema = f"bench.drift.{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(s.kafka))
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    fill_rate = await _fill(s, topic, n, fmt)
    db = Database(s.postgres, schema, migrations_dir=MIGRATIONS)
    await db.start()
    producer = EventProducer(s.kafka)
    await producer.start()
    influx = InfluxWriter(s.influx)
    influx.start()
    catalog = ModelCatalog(db, 0.01)
    refs = references()
    mon = MonitoringConfig.model_validate({"window": {"seconds": 300, "grace_seconds": 10}})
    for k in range(MODELS):
        catalog.models[("bench", f"m{k}")] = Monitored(mon, refs, Detector(refs))
    # thresholds are computed ahead, as the catalog does when a model arrives (the bench's
    # models share one reference, so its tables are computed once), and timed apart
    from driftline_stats import thresholds

    thresholds._CACHE.clear()
    w0, p0 = time.perf_counter(), time.process_time()
    for key in catalog.models:
        await catalog.ensure(key)
    await catalog.stop()
    warm_wall, warm_cpu = time.perf_counter() - w0, time.process_time() - p0
    proc = DriftProcessor(
        s.kafka,
        DriftOptions(group_id=schema, checkpoint_interval_s=2.0, idle_close_s=3600),
        db,
        producer,
        influx,
        catalog,
        topic=topic,
    )
    await proc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(12_000):  # bounded: at most 10 minutes
        if proc.events_counted >= n:
            break
        await asyncio.sleep(0.05)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    counted, closed = proc.events_counted, proc.windows_closed
    await proc.stop()
    influx.close()
    await producer.stop()
    await db.stop()
    await _drop(s, schema, [topic])
    tag = "" if fmt == "events" else f"_{fmt}"
    return {
        f"drift{tag}_events_per_s_per_process": round(counted / elapsed),
        f"drift{tag}_events_per_cpu_s_per_process": round(counted / cpu),
        f"drift{tag}_events": counted,
        f"drift{tag}_windows_closed": closed,
        f"drift{tag}_fill_events_per_s": round(fill_rate),
        f"drift{tag}_threshold_precompute_s_per_reference": round(warm_wall, 2),
        f"drift{tag}_threshold_precompute_cpu_s_per_reference": round(warm_cpu, 2),
    }


async def throughput_processes(n: int, workers: int) -> dict[str, float]:
    """`workers` worker processes in one group (the crash test's worker script), from the
    start of a filled topic; the catalog is seeded in their schema."""
    from pathlib import Path

    s = DriftlineSettings(environment="test")
    topic, reg = f"bench.drift.{uuid.uuid4().hex[:8]}", f"bench.reg.{uuid.uuid4().hex[:8]}"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**client_kwargs(s.kafka))
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1), NewTopic(reg, 1, 1)])
    await admin.close()
    await _fill(s, topic, n)
    db = Database(s.postgres, schema, migrations_dir=MIGRATIONS)
    await db.start()
    refs = orjson.dumps([r.to_dict() for r in references()]).decode()
    mon = orjson.dumps({"window": {"seconds": 300, "grace_seconds": 10}}).decode()
    await db.pool.executemany(
        "INSERT INTO models (tenant_id, model_id, monitoring, references_) VALUES ($1, $2, $3, $4)",
        [("bench", f"m{k}", mon, refs) for k in range(MODELS)],
    )
    # their threshold tables stored ahead, as a running service has them: the workers read
    # them back, so their CPU is the stream's alone
    det = Detector([FeatureReference.from_dict(d) for d in orjson.loads(refs)])
    det.precompute()
    await db.pool.executemany(
        "INSERT INTO thresholds (fingerprint, test, thresholds) VALUES ($1, $2, $3)",
        [
            (spec.fingerprint, spec.test, det._tables[name].to_bytes())
            for name, spec in det.specs.items()
        ],
    )
    worker = (
        Path(__file__).resolve().parents[2]
        / "services"
        / "drift-detection"
        / "tests"
        / "integration"
        / "drift_worker.py"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), topic, reg, schema, "driftline", schema, "2.0", "5000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    for p in procs:  # each prints "ready" once its processor runs
        assert p.stdout is not None
        await asyncio.to_thread(p.stdout.readline)
    cpu0 = sum(_cpu_s(p.pid) for p in procs)
    t0 = time.perf_counter()
    done = 0
    for _ in range(12_000):
        done = int(
            await db.pool.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM offsets WHERE group_id = $1", schema
            )
        )
        if done >= n:
            break
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - t0
    cpu = sum(_cpu_s(p.pid) for p in procs) - cpu0
    for p in procs:
        p.terminate()
        p.wait(30)
    await db.stop()
    await _drop(s, schema, [topic, reg])
    return {
        f"drift_events_per_s_{workers}_processes": round(done / elapsed),
        f"drift_cpu_us_per_event_{workers}_processes": round(cpu / max(1, done) * 1e6, 2),
    }


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far (Linux /proc)."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_bytes() -> dict[str, float]:
    """Checkpointed window state (binary, decision 44) of a 25-feature window of 100,000
    events, beside its former JSON form."""
    refs = references()
    num = refs[0].new_window()
    assert isinstance(num, NumericWindow)
    num.update(np.random.default_rng(3).normal(size=100_000))
    from driftline_drift_detection.windows import WindowState

    state = WindowState(
        ("t", "m", "1", "", 0.0), 300, 0, profiles={r.name: r.new_window() for r in refs}
    )
    for r in refs:
        w = state.profiles[r.name]
        if isinstance(w, NumericWindow):
            w.update(np.random.default_rng(4).normal(size=100_000))
        else:
            w.update(np.random.default_rng(5).choice(CATS, 100_000))
    whole = len(state.to_bytes())
    return {
        "drift_profile_bytes": len(msgspec_size(num.to_compact())),
        "drift_window_bytes_25_features": whole,
        "drift_window_bytes_per_feature": round(whole / len(refs)),
        "drift_window_json_bytes_25_features": len(orjson.dumps(state.to_json())),
    }


def msgspec_size(d: dict[str, object]) -> bytes:
    import msgspec

    return msgspec.msgpack.encode(d)


def checkpoint_rate(models: int = 1000, rate: int = 50_000, seconds: int = 40) -> dict[str, float]:
    """Checkpoint bytes per second with `models` models x 25 features streaming `rate`
    events/s in total (5-minute windows), simulated in memory over `seconds` seconds of
    event time: each second every model gets its share of events (columns), and the
    processor's checkpoint policy (only windows changed since the last checkpoint; the
    interval 1 s, or longer after a large checkpoint so writes stay within
    checkpoint_max_bytes_per_s) decides when the dirty windows are written, in the binary
    form the processor writes. Also: what writing every open window every second would
    cost (sampled every 10th second)."""
    from driftline_drift_detection.columnar import Columns
    from driftline_drift_detection.settings import DriftOptions
    from driftline_drift_detection.windows import WindowManager

    refs = references()
    per = max(1, rate // models)
    rng = np.random.default_rng(7)
    num_names = [r.name for r in refs if r.kind == "numeric"]
    cat_names = [r.name for r in refs if r.kind == "categorical"]
    numeric = rng.normal(size=(per, len(num_names)))
    cats = {c: [str(v) for v in rng.choice(CATS, per)] for c in cat_names}
    budget = DriftOptions().checkpoint_max_bytes_per_s
    interval = DriftOptions().checkpoint_interval_s
    wm = WindowManager(3600)
    for m in range(models):
        wm.configure(("t", f"m{m}"), 300, 10, refs)
    written, last_bytes, last_at, every_second, sampled = 0, 0, 0.0, 0, 0
    c0 = time.process_time()
    for sec in range(1, seconds + 1):
        t = 1_700_000_100.0 + sec + np.linspace(0, 0.99, per)
        for m in range(models):
            cols = Columns(
                per, t, ["1"] * per, num_names, numeric, cats, [0.5] * per, np.full(per, np.nan)
            )
            wm.add_columns(("t", f"m{m}"), 0, cols, float(sec))
        if sec % 10 == 0:
            every_second += sum(len(w.to_bytes()) for w in wm.windows.values())
            sampled += 1
        if sec - last_at >= max(interval, last_bytes / budget):
            last_bytes = sum(len(wm.windows[k].to_bytes()) for k in wm.dirty)
            written += last_bytes
            wm.dirty.clear()
            last_at = sec
    cpu = time.process_time() - c0
    return {
        "drift_checkpoint_mb_per_s_1000_models_x_25_features": round(written / seconds / 1e6, 2),
        "drift_checkpoint_mb_per_s_every_window_every_second": round(
            every_second / max(1, sampled) / 1e6, 1
        ),
        "drift_checkpoint_sim_events_per_cpu_s": round(models * per * seconds / cpu),
    }


def decode_ingest() -> dict[str, float]:
    """Records to windows in memory (no Kafka): per-record dict path vs the columnar path,
    events per CPU-second of this process (so other load on the machine does not count)."""
    from driftline_drift_detection.columnar import decoder_for
    from driftline_drift_detection.decoding import decode_prediction
    from driftline_drift_detection.windows import WindowManager

    refs = references()
    data = rows(np.random.default_rng(6), 5000)
    values = [
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "tenant_id": "t",
                "model_id": "m",
                "model_version": "1",
                "occurred_at": 1_700_000_000.0 + i * 0.01,
                "features": d,
                "prediction": 0.5,
            }
        )
        for i, d in enumerate(data)
    ]
    from driftline_core.events.batch import decode_batch
    from driftline_drift_detection.columnar import batch_columns, batch_problems

    sdk = [
        {"event_id": str(uuid.uuid4()), "timestamp": 1_700_000_000.0 + i * 0.01, **e}
        for i, e in enumerate({"features": d, "prediction": 0.5} for d in data)
    ]
    batches = [encode_batch("t", "m", "1", sdk[j : j + 1000]) for j in range(0, 5000, 1000)]
    out: dict[str, float] = {}
    for name in ("records", "columnar", "batch"):
        wm = WindowManager(3600)
        wm.configure(("t", "m"), 300, 10, refs)
        c0 = time.process_time()
        for _ in range(10):
            if name == "records":
                wm.add(("t", "m"), 0, [decode_prediction(v) for v in values], 0.0)
            elif name == "batch":
                for value in batches:
                    b = decode_batch(value)
                    assert not batch_problems(b)
                    bcols = batch_columns(decoder_for(refs), b, None)
                    assert bcols is not None
                    wm.add_columns(("t", "m"), 0, bcols, 0.0)
            else:
                cols = decoder_for(refs).decode_group("t", "m", list(values))
                assert cols is not None
                wm.add_columns(("t", "m"), 0, cols, 0.0)
        out[f"drift_ingest_events_per_cpu_s_{name}"] = round(50_000 / (time.process_time() - c0))
    return out


def window_update(per: int = 50, calls: int = 2000) -> dict[str, float]:
    """CPU per `add_columns` call of `per` events x 25 features (one model's share of a
    poll): the per-call cost that many small models pay, in memory."""
    from driftline_drift_detection.columnar import Columns
    from driftline_drift_detection.windows import WindowManager

    refs = references()
    rng = np.random.default_rng(8)
    num_names = [r.name for r in refs if r.kind == "numeric"]
    numeric = rng.normal(size=(per, len(num_names)))
    cats = {r.name: [str(v) for v in rng.choice(CATS, per)] for r in refs if r.kind != "numeric"}
    wm = WindowManager(3600)
    wm.configure(("t", "m"), 300, 10, refs)
    t = 1_700_000_100.0 + np.linspace(0, 0.99, per)
    cols = Columns(per, t, ["1"] * per, num_names, numeric, cats, [0.5] * per, np.full(per, np.nan))
    wm.add_columns(("t", "m"), 0, cols, 0.0)
    c0 = time.process_time()
    for _ in range(calls):
        wm.add_columns(("t", "m"), 0, cols, 0.0)
    cpu = time.process_time() - c0
    return {
        f"drift_window_update_us_per_call_{per}_events_x_25_features": round(cpu / calls * 1e6),
        f"drift_window_update_events_per_cpu_s_{per}_per_call": round(per * calls / cpu),
    }


MEMORY_CHILD = """
import gc, sys, numpy as np
sys.path.insert(0, sys.argv[1])

def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 1024

base = rss_kb()
from bench_drift import references, CATS
from driftline_drift_detection.columnar import Columns
from driftline_drift_detection.windows import WindowManager
refs = [references() for _ in range(10)]  # 10 distinct reference objects, as the catalog holds
per = 50
rng = np.random.default_rng(0)
num_names = [r.name for r in refs[0] if r.kind == "numeric"]
numeric = rng.normal(size=(per, len(num_names)))
cats = {r.name: [str(v) for v in rng.choice(CATS, per)] for r in refs[0] if r.kind != "numeric"}
gc.collect()
built = rss_kb()  # phase 1 done: the process with its references, before any window
wm = WindowManager()
for m in range(1000):
    wm.configure(("t", f"m{m}"), 300, 10, refs[m % 10])
for sec in range(30):  # 30 s of 50 events/s per model: every window open and filled
    t = 1_700_000_100.0 + sec + np.linspace(0, 0.99, per)
    for m in range(1000):
        cols = Columns(per, t, ["1"] * per, num_names, numeric, cats, [0.5] * per,
                       np.full(per, np.nan))
        wm.add_columns(("t", f"m{m}"), 0, cols, float(sec))
gc.collect()
after = rss_kb()
print(after, after - built, built - base, len(wm.windows))
"""


def memory() -> dict[str, float]:
    """Current RSS (not the high-water mark) of a child process holding 1,000 models x 25
    features with an open window each (1,500 events per window), measured in a phase of
    its own after the references are built."""
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    )
    total_kb, added_kb, refs_kb, open_windows = map(int, out.stdout.split())
    assert open_windows == 1000
    return {
        "drift_rss_mib_1000_models_x_25_features": round(total_kb / 1024, 1),
        "drift_state_mib_1000_models_x_25_features": round(added_kb / 1024, 1),
        "drift_state_kib_per_window_25_features": round(added_kb / 1000, 1),
        "drift_rss_mib_process_and_references": round(refs_kb / 1024, 1),
    }


async def main() -> None:
    figures: dict[str, float] = {}
    figures.update(profile_bytes())
    figures.update(decode_ingest())
    figures.update(window_update())
    figures.update(memory())
    figures.update(checkpoint_rate())
    figures.update(await throughput(200_000))
    figures.update(await throughput(400_000, "batch"))
    figures.update(await throughput_processes(200_000, 1))
    figures.update(await throughput_processes(200_000, 2))
    figures["drift_events_per_s"] = max(
        figures["drift_events_per_s_per_process"], figures["drift_events_per_s_2_processes"]
    )
    figures["drift_cpu_per_event_ratio_2_vs_1_processes"] = round(
        figures["drift_cpu_us_per_event_2_processes"]
        / figures["drift_cpu_us_per_event_1_processes"],
        3,
    )
    record("drift", figures)
    table("Drift detection (20 numeric + 5 categorical features)", figures)


if __name__ == "__main__":
    asyncio.run(main())
