"""A broken idempotent sequence (the broker's OutOfOrderSequenceNumber: aiokafka neither
rewinds nor takes a new producer id, aio-libs/aiokafka#1017) has EventProducer start a new
producer; the failed send is answered as failed (nothing of it was stored), and the retry
goes through the new producer. Other failures keep the producer. Fake aiokafka producers
(the broker's refusal cannot be provoked on demand): a unit test."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from driftline_core.errors import RefusedError, UnavailableError
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings


class FakeProducer:
    def __init__(self, fail: BaseException | None) -> None:
        self.fail = fail
        self.sent: list[bytes] = []
        self.stopped = False

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> Any:
        rows: list[bytes] = []
        return SimpleNamespace(rows=rows, append=lambda **kw: rows.append(kw["value"]) or 1)

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            fut.set_exception(self.fail)
        else:
            fut.set_result(SimpleNamespace(offset=len(self.sent)))
            self.sent += batch.rows
        return fut


async def producer_with(monkeypatch, *fakes: FakeProducer) -> EventProducer:
    queue = list(fakes)

    async def started(self: EventProducer) -> Any:
        return queue.pop(0)

    monkeypatch.setattr(EventProducer, "_started", started)
    p = EventProducer(KafkaSettings())
    await p.start()
    return p


async def renewed(p: EventProducer) -> None:
    assert p._renewing is not None  # started as the failure was handed to the callers
    await asyncio.wait_for(p._renewing, 5)


async def test_a_broken_sequence_starts_a_new_producer_and_the_retry_is_stored(monkeypatch):
    broken, fresh = FakeProducer(OutOfOrderSequenceNumber()), FakeProducer(None)
    p = await producer_with(monkeypatch, broken, fresh)
    with pytest.raises(RefusedError, match="OutOfOrderSequenceNumber"):
        await p.send_records("t", [(b"k", b"v1")])
    await renewed(p)
    assert p.renewals == 1
    assert p.raw is fresh
    assert await p.send_records("t", [(b"k", b"v1")]) == [(0, 0)]  # the retry
    assert fresh.sent == [b"v1"]
    assert broken.sent == []  # nothing of the refused send was stored
    await asyncio.wait_for(asyncio.gather(*p._retired), 5)  # the old one is stopped
    assert broken.stopped
    await p.stop()
    assert fresh.stopped


async def test_other_failures_keep_the_producer(monkeypatch):
    slow = FakeProducer(KafkaTimeoutError())
    p = await producer_with(monkeypatch, slow)
    with pytest.raises(UnavailableError):
        await p.send_records("t", [(b"k", b"v1")])
    await asyncio.sleep(0.05)
    assert p._renewing is None
    assert p.renewals == 0
    assert p.raw is slow
    await p.stop()
