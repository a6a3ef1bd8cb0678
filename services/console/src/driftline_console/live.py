"""/api/live: the result topics as Server-Sent Events, each browser seeing only its tenant.

One Kafka consumer per process reads the drift, quality, performance and alert topics from
their ends (no consumer group: nothing is committed, every process reads every partition;
a browser that connects sees what is published from then on and loads the state before it
through the APIs). Each record goes, as the bytes it is on the topic, to the subscribers of
the tenant it names: `event: drift|quality|performance|alert`, `data: <JSON>`. A comment
line (`: keepalive`) goes out every `keepalive_s`. A browser that falls `live_queue` records
behind is sent `event: overflow` and its stream ends (it reconnects and reloads); nothing is
dropped for it silently. A record that is no JSON object with a tenant is counted and
skipped (the services that own those topics dead-letter it; the console only watches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter, Gauge

from driftline_core.errors import UnavailableError
from driftline_core.events import alerts, drift, performance, quality
from driftline_core.kafka.config import client_kwargs
from driftline_core.observability.health import Check
from driftline_core.settings import KafkaSettings

__all__ = ["KINDS", "Hub", "LiveFeed", "Subscriber", "live_check", "sse"]

log = logging.getLogger(__name__)

KINDS: dict[str, str] = {
    drift.TOPIC: "drift",
    quality.TOPIC: "quality",
    performance.TOPIC: "performance",
    alerts.TOPIC: "alert",
}
OVERFLOW = object()  # the queue's last item for a subscriber that fell behind


@dataclass(eq=False)
class Subscriber:
    tenant_id: str
    queue: asyncio.Queue[Any]
    overflowed: bool = False


@dataclass
class Hub:
    """Subscribers by tenant; `publish` never blocks the consumer."""

    queue_size: int
    registry: Any
    _subs: dict[str, set[Subscriber]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients = Gauge(
            "driftline_console_live_clients",
            "Browsers connected to /api/live",
            registry=self.registry,
        )
        self.sent = Counter(
            "driftline_console_live_events",
            "Records queued for a browser on /api/live, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.overflows = Counter(
            "driftline_console_live_overflows",
            "Browsers whose /api/live stream was ended because they fell behind",
            registry=self.registry,
        )

    def subscribe(self, tenant_id: str) -> Subscriber:
        # one slot more than the limit, for the overflow marker
        s = Subscriber(tenant_id, asyncio.Queue(self.queue_size + 1))
        self._subs.setdefault(tenant_id, set()).add(s)
        self.clients.inc()
        return s

    def unsubscribe(self, s: Subscriber) -> None:
        subs = self._subs.get(s.tenant_id)
        if subs is not None and s in subs:
            subs.discard(s)
            self.clients.dec()
            if not subs:
                del self._subs[s.tenant_id]

    def subscribers(self, tenant_id: str) -> int:
        return len(self._subs.get(tenant_id, ()))

    def publish(self, tenant_id: str, kind: str, data: str) -> None:
        for s in list(self._subs.get(tenant_id, ())):
            if s.overflowed:
                continue
            if s.queue.qsize() >= self.queue_size:
                s.overflowed = True
                s.queue.put_nowait(OVERFLOW)
                self.overflows.inc()
                continue
            s.queue.put_nowait((kind, data))
            self.sent.labels(kind).inc()


def frame(kind: str, data: str) -> bytes:
    """One SSE event; a record spread over lines goes as one data: line each."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {kind}\n{lines}\n".encode()


async def sse(hub: Hub, s: Subscriber, keepalive_s: float) -> AsyncIterator[bytes]:
    """The stream of one subscriber: a first comment once it is subscribed (a client knows
    from it that records published from now on will reach it), then its records."""
    try:
        yield b": live\nretry: 3000\n\n"
        while True:
            try:
                item = await asyncio.wait_for(s.queue.get(), keepalive_s)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if item is OVERFLOW:
                yield frame("overflow", orjson.dumps({"reason": "too far behind"}).decode())
                return
            kind, data = item
            yield frame(kind, data)
    finally:
        hub.unsubscribe(s)


class LiveFeed:
    """The process's consumer of the result topics, feeding the hub."""

    def __init__(self, settings: KafkaSettings, hub: Hub, registry: Any) -> None:
        self._settings = settings
        self.hub = hub
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.last_poll = 0.0
        self.records = Counter(
            "driftline_console_live_records",
            "Result records the console read, by kind",
            ["kind"],
            registry=registry,
        )
        self.skipped = Counter(
            "driftline_console_live_skipped",
            "Result records not shown: not a JSON object naming a tenant",
            ["kind", "reason"],
            registry=registry,
        )

    async def start(self) -> None:
        c = AIOKafkaConsumer(
            *KINDS,
            **client_kwargs(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_poll_records=self._settings.consumer_max_poll_records,
        )
        try:
            await c.start()
        except Exception as e:
            with contextlib.suppress(Exception):
                await c.stop()
            raise UnavailableError(f"Kafka unreachable for the live feed: {e!r}") from e
        self._consumer = c
        self.last_poll = time.monotonic()
        self._task = asyncio.create_task(self._run(c))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def assigned(self) -> bool:
        """True once every result topic has partitions assigned (and positions at the end):
        from then on a published record reaches the subscribers."""
        c = self._consumer
        if c is None:
            return False
        parts = c.assignment()
        if {tp.topic for tp in parts} != set(KINDS):
            return False
        try:
            for tp in parts:
                await c.position(tp)
        except Exception:
            return False
        return True

    async def _run(self, c: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await c.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # aiokafka reconnects; say so and poll again
                self.failure = e
                log.warning("live feed poll failed", extra={"error": repr(e)})
                await asyncio.sleep(1.0)
                continue
            self.failure = None
            self.last_poll = time.monotonic()
            for tp, records in batch.items():
                kind = KINDS.get(tp.topic)
                if kind is None:
                    continue
                for r in records:
                    self.records.labels(kind).inc()
                    self.dispatch(kind, r.value)

    def dispatch(self, kind: str, value: bytes | None) -> None:
        try:
            doc = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            self.skipped.labels(kind, "not_json").inc()
            return
        tenant = doc.get("tenant_id") if isinstance(doc, dict) else None
        if not isinstance(tenant, str) or not tenant:
            self.skipped.labels(kind, "no_tenant").inc()
            return
        if self.hub.subscribers(tenant):
            assert value is not None
            self.hub.publish(tenant, kind, value.decode("utf-8", "replace"))


def live_check(feed: LiveFeed, stale_s: float = 30.0) -> Check:
    """Readiness `live`: the consumer is running and polled within `stale_s`."""

    async def probe() -> None:
        if feed._task is None or feed._task.done():
            raise UnavailableError("the live feed is not running")
        if feed.failure is not None:
            raise UnavailableError(f"the live feed cannot poll Kafka: {feed.failure!r}")
        if time.monotonic() - feed.last_poll > stale_s:
            raise UnavailableError(f"the live feed has not polled for {stale_s:.0f} s")

    return Check("live", probe)
