"""A consumer-group member run as its own process by test_kafka_group.py.

Each processed record is appended to OUT as `partition offset seq wall_time` and fsync'd
before ConsumerLoop commits (the handler's effect is durable first). SIGTERM stops it
cleanly (the batch in hand is committed before it leaves the group); SIGKILL is the crash
under test. The member's log (the runtime's and aiokafka's rebalances, commits that
failed, each batch with the group generation it was handled in) goes to OUT.log, which
the test prints when it fails. DRIFTLINE_TEST_HANDLER_S sets how long a batch takes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from pydantic import BaseModel

from driftline_core.kafka import ConsumerLoop, EventProducer, Message
from driftline_core.settings import KafkaSettings

HANDLER_S = float(os.environ.get("DRIFTLINE_TEST_HANDLER_S", "0.02"))


class Tick(BaseModel):
    seq: int


async def main(bootstrap: str, topic: str, group: str, out_path: str) -> None:
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, session_timeout_ms=4000, heartbeat_interval_ms=500
    )
    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(
        filename=out_path + ".log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    log = logging.getLogger("member")

    async def handle(batch: list[Message[Tick]]) -> None:
        now = time.time()
        spans = sorted(
            {
                (m.partition, min(x.offset for x in batch if x.partition == m.partition))
                for m in batch
            }
        )
        log.info(
            "handling %s (%d records) in generation %s",
            spans,
            len(batch),
            loop.consumer._coordinator.generation,
        )
        out.write("".join(f"{m.partition} {m.offset} {m.value.seq} {now:.6f}\n" for m in batch))
        out.flush()
        os.fsync(out.fileno())
        await asyncio.sleep(HANDLER_S)  # a slow consumer, so a kill lands mid-stream

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
    log.info("SIGTERM: stopping")
    # as the services do: stop() first (the batch in hand is handled and committed, then
    # the member leaves the group), never cancel the loop's task first: that aborts the
    # batch in hand, whose records the partition's next owner would then handle again
    await loop.stop()
    await asyncio.gather(task, return_exceptions=True)
    log.info("stopped")
    await dlq.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
