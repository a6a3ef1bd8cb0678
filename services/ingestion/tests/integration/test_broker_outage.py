"""The broker stops mid-stream: ingestion answers 503 with Retry-After and never 202 for an
event Kafka did not store; after the restart every acknowledged event is in the topic,
exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson

STACK = [sys.executable, str(Path(__file__).resolve().parents[4] / "deploy" / "local" / "stack.py")]


async def stack_cmd(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *STACK, *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def test_broker_down_gives_503_and_every_202_is_in_kafka_after_restart(
    serve, ingestion_settings, new_tenant, topic_reader
):
    predictions = await topic_reader("driftline.predictions.v1")
    acked: list[str] = []
    refused = 0
    restarted = asyncio.Event()
    acked_after_restart = 0

    async with serve(ingestion_settings(kafka_timeout_s=3.0)) as client:
        tenant = await new_tenant(client)

        async def stream() -> None:
            nonlocal refused, acked_after_restart
            for _ in range(2000):  # bounded; ends long before this in practice
                batch = [tenant.event() for _ in range(20)]
                r = await tenant.ingest.post("/v1/events/predictions", json=batch)
                if r.status_code == 202:
                    acked.extend(r.json()["event_ids"])
                    if restarted.is_set():
                        acked_after_restart += 1
                        if acked_after_restart >= 5:
                            return
                else:
                    assert r.status_code == 503, r.text
                    assert int(r.headers["Retry-After"]) > 0
                    refused += 1
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.01)

        producer = asyncio.create_task(stream())
        try:
            for _ in range(600):  # bounded wait for the stream to get going
                if len(acked) >= 100:
                    break
                await asyncio.sleep(0.05)

            await stack_cmd("stop", "kafka")
            for _ in range(300):
                if refused >= 2:
                    break
                await asyncio.sleep(0.1)
            await stack_cmd("start", "kafka")
            restarted.set()
            await asyncio.wait_for(producer, 120)
        finally:
            if not producer.done():
                producer.cancel()
            await stack_cmd("start", "kafka")

    assert refused >= 2, "the outage produced 503s"
    ids = set(acked)
    stored = await predictions.read(
        until=lambda rs: ids <= {orjson.loads(r.value)["event_id"] for r in rs}, timeout=60
    )
    counts = Counter(orjson.loads(r.value)["event_id"] for r in stored)
    missing = [i for i in acked if counts[i] == 0]
    assert not missing, f"{len(missing)} acknowledged events are not in Kafka"
    assert all(counts[i] == 1 for i in acked), "an acknowledged event is stored twice"
    print(f"acknowledged {len(acked)} events, refused {refused} batches with 503")
