"""A consumer-group member run as its own process by test_kafka_group.py.

Each processed record is appended to OUT as `partition offset seq wall_time` and fsync'd
before ConsumerLoop commits (the handler's effect is durable first). SIGTERM stops it
cleanly; SIGKILL is the crash under test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from pydantic import BaseModel

from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.settings import KafkaSettings


class Tick(BaseModel):
    seq: int


async def main(bootstrap: str, topic: str, group: str, out_path: str) -> None:
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, session_timeout_ms=4000, heartbeat_interval_ms=500
    )
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    async def handle(batch: list[Message[Tick]]) -> None:
        now = time.time()
        out.write("".join(f"{m.partition} {m.offset} {m.value.seq} {now:.6f}\n" for m in batch))
        out.flush()
        os.fsync(out.fileno())
        await asyncio.sleep(0.02)  # a slow consumer, so a kill lands mid-stream

    dlq = EventProducer(settings)
    await dlq.start()
    loop = ConsumerLoop(
        settings,
        topics=[topic],
        group_id=group,
        handler=handle,
        dlq=dlq,
        models={topic: Tick},
        max_records=5,
        poll_timeout_ms=100,
    )
    await loop.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(loop.run())
    print("started", flush=True)
    await stop.wait()
    task.cancel()
    await loop.stop()
    await dlq.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
