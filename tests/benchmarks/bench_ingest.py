"""Ingestion throughput: HTTP (batches of 1, 100, 1000 events, 20 features; p50/p99
latency) into a real ingestion process, once with the default per-event JSON records and
once with DRIFTLINE_INGESTION__BATCH_RECORDS=true (4 clients x 1,000-event batches); the
Kafka-native SDK; and bare aiokafka sending the same bytes as the ceiling, so the overhead
is a ratio measured in one run. Beside each rate: the ingestion process's CPU-seconds (the
goal's events per CPU-second), and the CPU the client, the Kafka broker and Redis spent
per 1,000 events over the same phase (a shared box: where the rest of the time went)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from common import record, table

from driftline.kafka import KafkaLogger
from driftline_core.kafka.config import client_kwargs
from driftline_core.settings import KafkaSettings

FEATURES = [f"f{i}" for i in range(20)]
SCHEMA = {"features": [{"name": f, "kind": "numeric"} for f in FEATURES]}
TOPIC = "driftline.predictions.v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events(n: int, rng: np.random.Generator) -> list[dict[str, object]]:
    values = rng.normal(size=(n, 20)).round(6).tolist()
    return [
        {
            "event_id": str(uuid.uuid4()),
            "model_id": "bench",
            "model_version": "1",
            "features": dict(zip(FEATURES, row, strict=True)),
            "prediction": 0.5,
        }
        for row in values
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_pids() -> dict[str, int]:
    """The local stack's Kafka broker and Redis, whose CPU the figures report beside the
    measured process's (where the rest of the time goes); none if not found."""
    run = Path(__file__).resolve().parents[2] / ".stack" / "run"
    out = {}
    for name in ("kafka", "redis"):
        try:
            pid = int((run / f"{name}.pid").read_text().split()[0])
            cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
        out[name] = pid
    return out


class CpuMeter:
    """CPU-seconds used by this process and by the stack's servers between start and stop."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids

    def __enter__(self) -> CpuMeter:
        self._t0 = time.process_time()
        self._c0 = {k: cpu_seconds(p) for k, p in self._pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.own = time.process_time() - self._t0
        self.servers = {k: cpu_seconds(p) - self._c0[k] for k, p in self._pids.items()}

    def per_event(self, events: int, own: str) -> dict[str, float]:
        """CPU milliseconds per 1,000 events: this process's (named `own`) and each server's."""
        out = {f"{own}_cpu_ms_per_1000_events": round(self.own / events * 1e6, 2)}
        for k, v in self.servers.items():
            out[f"{k}_cpu_ms_per_1000_events"] = round(v / events * 1e6, 2)
        return out


async def http_bench(
    url: str, key: str, batch: int, total: int, concurrency: int, pid: int | None = None
) -> dict[str, float]:
    rng = np.random.default_rng(batch)
    bodies = [orjson.dumps(events(batch, rng)) for _ in range(max(1, total // batch))]
    latencies: list[float] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url,
        limits=limits,
        timeout=60,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as c:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                t0 = time.perf_counter()
                r = await c.post("/v1/events/predictions", content=body)
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 202, r.text

        cpu0 = cpu_seconds(pid) if pid else 0.0
        with CpuMeter(stack_pids() if pid else {}) as meter:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - t0
        cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    lat = sorted(latencies)
    n = len(bodies) * batch
    return {
        "events_per_s": round(n / elapsed),
        # the ingestion process alone: its CPU-seconds over the phase (an idle process
        # uses under 1 % of a core, so this is the requests' cost)
        "events_per_service_cpu_s": round(n / cpu) if cpu else 0,
        "service_cpu_share_of_a_core": round(cpu / elapsed, 3),
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
        "requests": len(bodies),
        "concurrency": concurrency,
        **(meter.per_event(n, "client") if pid else {}),
    }


async def kafka_benches(n: int, models: int = 8) -> dict[str, float]:
    """The SDK for one model (one key, so one partition: aiokafka keeps one batch in flight
    per partition with idempotence) and for `models` models at once (their records share
    batches through group commit), against bare aiokafka on the same bytes."""
    s = KafkaSettings()
    evs = events(n, np.random.default_rng(1))
    share = n // models
    out: dict[str, float] = {}
    pids = {k: v for k, v in stack_pids().items() if k == "kafka"}
    for label, settings in (
        ("", s),
        ("_uncompressed", s.model_copy(update={"compression_type": None})),
    ):
        async with KafkaLogger("bench-sdk", settings, batch_size=5000) as logger:
            await logger.log_predictions("warm", "1", evs[:2000])
            t0 = time.perf_counter()
            await logger.log_predictions("one", "1", evs[: share * 2])
            out[f"ingest_kafka_sdk_one_model{label}_events_per_s"] = round(
                share * 2 / (time.perf_counter() - t0)
            )
            with CpuMeter(pids) as meter:
                t0 = time.perf_counter()
                await asyncio.gather(
                    *(
                        logger.log_predictions(f"m{k}", "1", evs[k * share : (k + 1) * share])
                        for k in range(models)
                    )
                )
                elapsed = time.perf_counter() - t0
            out[f"ingest_kafka_sdk{label}_events_per_s"] = round(share * models / elapsed)
            # the SDK's own CPU (this process does nothing else meanwhile) and the broker's
            out[f"ingest_kafka_sdk{label}_events_per_cpu_s"] = round(share * models / meter.own)
            for k, v in meter.per_event(share * models, "sdk").items():
                out[f"ingest_kafka_sdk{label}_{k}"] = v
    async with KafkaLogger("bench-sdk", s) as logger:
        records = [
            r
            for k in range(models)
            for r in logger.encode(f"m{k}", "1", evs[k * share : (k + 1) * share])
        ]
    bare = AIOKafkaProducer(
        **client_kwargs(s),
        acks="all",
        enable_idempotence=True,
        compression_type=s.compression_type,
        linger_ms=0,
        max_batch_size=1 << 20,
    )
    await bare.start()
    try:
        t0 = time.perf_counter()
        futs = [await bare.send(TOPIC, value, key=key) for key, value in records]
        await asyncio.gather(*futs)
        out["kafka_bare_send_events_per_s"] = round(len(records) / (time.perf_counter() - t0))
        by_part: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:  # the partitions the keys map to, as in the SDK run
            by_part.setdefault(bare._partition(TOPIC, None, None, None, key, value), []).append(
                (key, value)
            )
        t0 = time.perf_counter()
        futs = []
        for part, recs in by_part.items():  # bare batch API: the ceiling
            batch = bare.create_batch()
            for key, value in recs:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futs.append(await bare.send_batch(batch, TOPIC, partition=part))
                    batch = bare.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futs.append(await bare.send_batch(batch, TOPIC, partition=part))
        await asyncio.gather(*futs)
        out["kafka_bare_batch_events_per_s"] = round(len(records) / (time.perf_counter() - t0))
        out["kafka_partitions_used"] = len(by_part)
    finally:
        await bare.stop()
    out["sdk_vs_bare_batch_ratio"] = round(
        out["ingest_kafka_sdk_events_per_s"] / out["kafka_bare_batch_events_per_s"], 3
    )
    return out


async def http_phase(
    extra_env: dict[str, str], sizes: tuple[tuple[int, int, int], ...], prefix: str
) -> dict[str, float]:
    """A real ingestion process (its own port, with `extra_env`), a tenant and a model, then
    (batch, total events, concurrent clients) per size; figures named `prefix` + batch."""
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLINE_HTTP__PORT": str(port),
        "DRIFTLINE_INGESTION__RATE_PER_S": "1e9",
        "DRIFTLINE_INGESTION__BURST": "1000000000",
        "DRIFTLINE_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    exe = str(Path(sys.executable).with_name("driftline-ingestion"))
    proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(base_url=url) as c:
            for _ in range(300):
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            tid = f"bench{uuid.uuid4().hex[:8]}"
            r = await c.post(
                "/v1/auth/tenants",
                json={"id": tid, "name": tid},
                headers={"X-Admin-Token": "driftline-dev-admin"},
            )
            key = r.json()["api_key"]
            r = await c.post(
                "/v1/models",
                headers={"Authorization": f"Bearer {key}"},
                json={"id": "bench", "name": "b", "task": "regression", "feature_schema": SCHEMA},
            )
            assert r.status_code == 201, r.text
        await http_bench(url, key, 100, 5000, 4)  # warm-up
        for batch, total, conc in sizes:
            res = await http_bench(url, key, batch, total, conc, proc.pid)
            for k, v in res.items():
                figures[f"{prefix}{batch}_{k}"] = v
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return figures


async def main() -> None:
    # the default: one JSON record per event
    figures = await http_phase(
        {}, ((1, 3000, 8), (100, 60_000, 4), (1000, 150_000, 4)), "ingest_http_batch"
    )
    figures["ingest_http_events_per_s"] = figures["ingest_http_batch1000_events_per_s"]
    # DRIFTLINE_INGESTION__BATCH_RECORDS=true: a request's events as columnar batch records
    figures.update(
        await http_phase(
            {"DRIFTLINE_INGESTION__BATCH_RECORDS": "true"},
            ((1000, 150_000, 4),),
            "ingest_http_batch_records_batch",
        )
    )
    figures.update(await kafka_benches(240_000))
    figures["http_vs_bare_batch_ratio"] = round(
        figures["ingest_http_events_per_s"] / figures["kafka_bare_batch_events_per_s"], 3
    )
    record("ingestion", figures)
    table("Ingestion (20 numeric features per event)", figures)


if __name__ == "__main__":
    asyncio.run(main())
