"""Consumer lag per group and partition, measured from outside the consumers: every
`interval_s` the reporter reads each group's committed offsets (admin API) and the topics'
end offsets, and sets `driftline_consumer_lag_records{group,topic,partition}`.

Every Driftline consumer commits to Kafka (the checkpointed drift processors commit the
offsets of each checkpoint "for lag monitoring"), so this is the same figure
`kafka-consumer-groups.sh --describe` shows. A component of the service's app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ..kafka.config import client_kwargs
from ..settings import KafkaSettings
from .metrics import CoreMetrics

__all__ = ["LagReporter"]

log = logging.getLogger(__name__)


class LagReporter:
    def __init__(
        self,
        settings: KafkaSettings,
        metrics: CoreMetrics,
        groups: Sequence[str],
        *,
        interval_s: float = 5.0,
    ) -> None:
        self.settings, self.metrics, self.groups = settings, metrics, list(groups)
        self.interval_s = interval_s
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(**client_kwargs(self.settings))
        await self._admin.start()
        self._ends = AIOKafkaConsumer(**client_kwargs(self.settings), group_id=None)
        await self._ends.start()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ends:
            await self._ends.stop()
            self._ends = None
        if self._admin:
            await self._admin.close()
            self._admin = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the broker may be away for a while; keep reporting
                log.warning("consumer lag not measured", extra={"error": repr(e)})
            await asyncio.sleep(self.interval_s)

    async def measure(self) -> dict[tuple[str, str, int], int]:
        """Measure now; returns {(group, topic, partition): lag} and sets the gauges."""
        assert self._admin is not None
        assert self._ends is not None
        out: dict[tuple[str, str, int], int] = {}
        for group in self.groups:
            committed = await self._admin.list_consumer_group_offsets(group)
            tps = [tp for tp, om in committed.items() if om is not None and om.offset >= 0]
            if not tps:
                continue
            ends: dict[TopicPartition, int] = await self._ends.end_offsets(tps)
            for tp in tps:
                lag = max(0, ends[tp] - committed[tp].offset)
                out[(group, tp.topic, tp.partition)] = lag
                self.metrics.consumer_lag.labels(group, tp.topic, str(tp.partition)).set(lag)
        return out
