"""A drift processor as its own process, for the crash test: args are the predictions and
registry topics, the PostgreSQL schema, the InfluxDB database, the consumer group, and
optionally the checkpoint interval (s) and records per poll (the benchmark's settings).
SIGTERM stops it cleanly; SIGKILL is the crash under test."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from driftline_core.db import Database
from driftline_core.events import RegistryChange
from driftline_core.influx import InfluxWriter
from driftline_core.kafka import ConsumerLoop, EventProducer
from driftline_core.settings import DriftlineSettings
from driftline_drift_detection.app import MIGRATIONS
from driftline_drift_detection.catalog import ModelCatalog
from driftline_drift_detection.processor import DriftProcessor
from driftline_drift_detection.settings import DriftOptions


async def main(
    predictions: str,
    registry: str,
    schema: str,
    influx_db: str,
    group: str,
    checkpoint_s: str = "0.2",
    max_poll: str = "250",
) -> None:
    s = DriftlineSettings(environment="test")
    db = Database(s.postgres, schema, migrations_dir=MIGRATIONS)
    await db.start()
    producer = EventProducer(s.kafka)
    await producer.start()
    influx = InfluxWriter(s.influx.model_copy(update={"database": influx_db}))
    influx.start()
    catalog = ModelCatalog(db, 0.01)
    await catalog.load()
    reg = ConsumerLoop[RegistryChange](
        s.kafka,
        topics=[registry],
        group_id=f"{group}-reg",
        handler=catalog.handle,
        dlq=producer,
        models={registry: RegistryChange},
    )
    await reg.start()
    reg_task = asyncio.create_task(reg.run())
    for _ in range(200):
        if catalog.models:
            break
        await asyncio.sleep(0.05)
    processor = DriftProcessor(
        s.kafka,
        DriftOptions(
            group_id=group,
            checkpoint_interval_s=float(checkpoint_s),
            max_poll_records=int(max_poll),
            idle_close_s=3600,
        ),
        db,
        producer,
        influx,
        catalog,
        topic=predictions,
    )
    await processor.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await processor.stop()
    await reg.stop()
    reg_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reg_task
    influx.close()
    await producer.stop()
    await db.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:8]))
