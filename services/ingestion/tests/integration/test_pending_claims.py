"""Retrying with the same event ids is safe when Kafka is slow (issue 14 defect 13): an id
whose send may still complete is never released. Real Redis and real Kafka; each send is
held in front of the real producer until the test says how it ends (let through to the
broker, or refused as the broker would), so every interleaving is exact, and what is
stored is counted in the topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from driftline_core.auth import Principal
from driftline_core.errors import RefusedError, UnavailableError
from driftline_core.events import DeadLetter
from driftline_core.events.features import FeatureSchema
from driftline_core.kafka import EventProducer
from driftline_ingestion.intake import Intake, PendingError
from driftline_ingestion.validation import CompiledSchema

SCHEMA = CompiledSchema(
    FeatureSchema.model_validate({"features": [{"name": "x", "kind": "numeric"}]}), "regression"
)


class Registry:
    async def compiled_schema(self, tenant_id: str, model_id: str) -> CompiledSchema | None:
        return SCHEMA if model_id == "m" else None


PREDICTIONS = "driftline.predictions.v1"


class HeldProducer:
    """In front of the real producer: an event topic's send waits until the test resolves
    its future; a result lets it through to Kafka, an exception is the broker's refusal
    (nothing sent). Dead letters go straight through."""

    def __init__(self, kafka: EventProducer, predictions: Any) -> None:
        self._kafka, self._predictions = kafka, predictions  # a TopicReader, marked
        self.max_record_bytes = kafka.max_record_bytes  # intake checks each record against it
        self.sends: list[tuple[str, list[tuple[bytes | None, bytes]], asyncio.Future[Any]]] = []

    async def send_records(
        self, topic: str, records: Any, headers: Any = None
    ) -> list[tuple[int, int]]:
        if topic != DeadLetter.TOPIC:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.sends.append((topic, list(records), fut))
            await fut
        return await self._kafka.send_records(topic, records, headers)

    async def stored(self, tenant_id: str) -> int:
        """The tenant's records in the predictions topic since this producer was made."""
        needle = f'"tenant_id":"{tenant_id}"'.encode()
        return sum(needle in r.value for r in await self._predictions.read())


@pytest.fixture(scope="module")
async def kafka(stack) -> AsyncIterator[EventProducer]:
    producer = EventProducer(stack.kafka)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def held(kafka, topic_reader) -> Callable[[], Awaitable[HeldProducer]]:
    async def make() -> HeldProducer:
        return HeldProducer(kafka, await topic_reader(PREDICTIONS))

    return make


@pytest.fixture
async def redis(stack):
    r = aioredis.from_url(stack.redis.url)
    yield r
    await r.aclose()


def intake(
    redis: Any, producer: HeldProducer | None, timeout_s: float = 0.2, pending_ttl_s: float = 30.0
) -> Intake:
    return Intake(
        registry=Registry(),  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
        redis=redis,
        cipher=None,  # type: ignore[arg-type]
        dedup_ttl_s=600,
        kafka_timeout_s=timeout_s,
        pending_ttl_s=pending_ttl_s,
    )


def batch(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(uuid.uuid4()),
            "model_id": "m",
            "model_version": "1",
            "features": {"x": i},
            "prediction": 0.5,
        }
        for i in range(n)
    ]


def who() -> Principal:
    return Principal(f"t{uuid.uuid4().hex[:8]}", "k", "producer", frozenset({"ingest"}))


async def until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not settled in time"
        await asyncio.sleep(0.01)


async def test_a_send_that_outlives_its_request_keeps_its_ids_until_kafka_stores_them(redis, held):
    producer, p, events = await held(), who(), batch()
    ingest = intake(redis, producer)
    with pytest.raises(UnavailableError, match="stay claimed"):
        await ingest.predictions(p, events)  # no ack within 0.2 s: 503
    # the client retries at once, as docs/ingestion.md invites: told to wait, nothing sent
    with pytest.raises(PendingError):
        await ingest.predictions(p, events)
    assert len(producer.sends) == 1
    # Kafka comes back and stores the first send
    producer.sends[0][2].set_result(None)
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _is(redis, key, b"a"))
    retry = await ingest.predictions(p, events)
    assert (retry.status_code, retry.accepted) == (409, 0)
    assert {r["reason"] for r in retry.rejected} == {"duplicate event_id: already accepted"}
    assert len(producer.sends) == 1  # nothing sent twice
    assert await producer.stored(p.tenant_id) == len(events)
    assert 590 < await redis.ttl(key) <= 600  # accepted: remembered for the dedup TTL
    assert await ingest.drain(1) == 0


async def test_a_send_that_fails_for_good_releases_its_ids_and_the_retry_is_accepted(redis, held):
    producer, p, events = await held(), who(), batch()
    ingest = intake(redis, producer)
    with pytest.raises(UnavailableError):
        await ingest.predictions(p, events)
    producer.sends[0][2].set_exception(RefusedError("TopicAuthorizationFailed"))
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _gone(redis, key))
    task = asyncio.create_task(ingest.predictions(p, events))
    await until(lambda: _sent(producer, 2))
    producer.sends[1][2].set_result(None)
    retry = await task
    assert (retry.status_code, retry.accepted) == (202, len(events))
    assert await producer.stored(p.tenant_id) == len(events)  # exactly once


async def test_an_ack_in_time_marks_the_ids_accepted_and_a_failure_in_time_releases_them(
    redis, held
):
    producer, p = await held(), who()
    ingest = intake(redis, producer, timeout_s=5)
    ok, bad = batch(2), batch(2)
    task = asyncio.create_task(ingest.predictions(p, ok))
    await until(lambda: _sent(producer, 1))
    producer.sends[0][2].set_result(None)
    assert (await task).accepted == 2
    assert await _is(redis, f"dl:seen:{p.tenant_id}:{ok[0]['event_id']}", b"a")
    task = asyncio.create_task(ingest.predictions(p, bad))
    await until(lambda: _sent(producer, 2))
    producer.sends[1][2].set_exception(RefusedError("record too large"))
    with pytest.raises(UnavailableError, match="refused"):
        await task
    assert await _gone(redis, f"dl:seen:{p.tenant_id}:{bad[0]['event_id']}")


async def test_a_batch_holding_one_pending_id_claims_none_of_its_new_ones(redis, held):
    producer, p, first = await held(), who(), batch(1)
    ingest = intake(redis, producer)
    with pytest.raises(UnavailableError):
        await ingest.predictions(p, first)
    mixed = [*batch(2), *first]
    with pytest.raises(PendingError):
        await ingest.predictions(p, mixed)
    for e in mixed[:2]:
        assert await _gone(redis, f"dl:seen:{p.tenant_id}:{e['event_id']}")
    producer.sends[0][2].set_result(None)
    await until(lambda: _is(redis, f"dl:seen:{p.tenant_id}:{first[0]['event_id']}", b"a"))
    task = asyncio.create_task(ingest.predictions(p, mixed))
    await until(lambda: _sent(producer, 2))
    producer.sends[1][2].set_result(None)
    result = await task
    assert (result.accepted, [r["index"] for r in result.rejected]) == (2, [2])
    assert await producer.stored(p.tenant_id) == 3


async def _is(redis: Any, key: str, value: bytes) -> bool:
    return bool(await redis.get(key) == value)


async def _gone(redis: Any, key: str) -> bool:
    return not await redis.exists(key)


async def _sent(producer: HeldProducer, n: int) -> bool:
    return len(producer.sends) >= n


async def test_a_late_settlement_is_retried_while_redis_is_away(redis, monkeypatch, held):
    producer, p, events = await held(), who(), batch(2)
    ingest = intake(redis, producer)
    with pytest.raises(UnavailableError):
        await ingest.predictions(p, events)
    failures = _away_for(ingest, monkeypatch, 2)
    producer.sends[0][2].set_result(None)
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _is(redis, key, b"a"), timeout_s=10)
    assert len(failures) == 2
    assert await ingest.drain(1) == 0


def _away_for(ingest: Intake, monkeypatch: Any, times: int) -> list[int]:
    """Redis goes away after the claims were taken: the next `times` settlements fail."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    real, failures = ingest._settle, []

    async def flaky(*args: Any, **kw: Any) -> None:
        if len(failures) < times:
            failures.append(1)
            raise RedisConnectionError("Redis is restarting")
        await real(*args, **kw)

    monkeypatch.setattr(ingest, "_settle", flaky)
    return failures


async def test_an_ack_while_redis_is_away_answers_202_and_settles_the_claims_later(
    redis, monkeypatch, held
):
    # a request whose events Kafka stored while Redis went away answered 503 and left its
    # ids pending until the dedup TTL: every retry met 503 (PendingError) for 10 minutes
    producer, p, events = await held(), who(), batch(2)
    ingest = intake(redis, producer, timeout_s=5)
    failures = _away_for(ingest, monkeypatch, 2)
    task = asyncio.create_task(ingest.predictions(p, events))
    await until(lambda: _sent(producer, 1))
    producer.sends[0][2].set_result(None)
    result = await task
    assert (result.status_code, result.accepted) == (202, 2)  # stored: the broker said so
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _is(redis, key, b"a"), timeout_s=10)
    assert len(failures) == 2
    retry = await ingest.predictions(p, events)
    assert (retry.status_code, retry.accepted) == (409, 0)  # once: already accepted
    assert await producer.stored(p.tenant_id) == len(events)
    assert await ingest.drain(1) == 0


async def test_a_refusal_while_redis_is_away_releases_the_claims_later(redis, monkeypatch, held):
    producer, p, events = await held(), who(), batch(2)
    ingest = intake(redis, producer, timeout_s=5)
    failures = _away_for(ingest, monkeypatch, 1)
    task = asyncio.create_task(ingest.predictions(p, events))
    await until(lambda: _sent(producer, 1))
    producer.sends[0][2].set_exception(RefusedError("TopicAuthorizationFailed"))
    with pytest.raises(UnavailableError, match="refused"):
        await task
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _gone(redis, key), timeout_s=10)
    assert len(failures) == 1
    task = asyncio.create_task(ingest.predictions(p, events))  # the retry is taken anew
    await until(lambda: _sent(producer, 2))
    producer.sends[1][2].set_result(None)
    assert (await task).accepted == 2
    assert await producer.stored(p.tenant_id) == len(events)


async def test_the_ids_of_a_process_that_died_mid_send_are_free_after_the_pending_ttl(redis, held):
    """kill -9 with a send in flight: nothing settles or renews its claims. A retry to
    another replica is told to wait (503) for at most the pending TTL, not the dedup TTL,
    and is then taken anew."""
    p, events = who(), batch()
    dying = intake(redis, await held(), pending_ttl_s=1.0)
    with pytest.raises(UnavailableError, match="stay claimed"):
        await dying.predictions(p, events)
    for t in list(dying._renewing):  # the process is gone: its loop runs no more
        t.cancel()
    other = await held()
    replica = intake(redis, other, timeout_s=0.5, pending_ttl_s=1.0)
    with pytest.raises(PendingError):
        await replica.predictions(p, events)
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _gone(redis, key), timeout_s=3)
    task = asyncio.create_task(replica.predictions(p, events))
    await until(lambda: _sent(other, 1))
    other.sends[0][2].set_result(None)
    retry = await task
    assert (retry.status_code, retry.accepted) == (202, len(events))
    assert await _is(redis, key, b"a")


async def test_a_live_send_keeps_its_ids_claimed_beyond_the_pending_ttl(redis, held):
    """The process whose send outlived its request renews its claims: a retry meets 503
    for as long as the send is unresolved, then its outcome (here: stored, so duplicates)."""
    producer, p, events = await held(), who(), batch()
    ingest = intake(redis, producer, pending_ttl_s=1.5)
    with pytest.raises(UnavailableError, match="stay claimed"):
        await ingest.predictions(p, events)
    await asyncio.sleep(4.5)  # three pending TTLs: renewed meanwhile
    with pytest.raises(PendingError):
        await ingest.predictions(p, events)
    producer.sends[0][2].set_result(None)
    key = f"dl:seen:{p.tenant_id}:{events[0]['event_id']}"
    await until(lambda: _is(redis, key, b"a"))
    retry = await ingest.predictions(p, events)
    assert (retry.status_code, retry.accepted) == (409, 0)
    assert len(producer.sends) == 1
    assert not ingest._renewing  # renewal ends with the send
    assert await ingest.drain(1) == 0


def test_a_pending_ttl_shorter_than_the_request_is_refused() -> None:
    with pytest.raises(ValueError, match="must exceed kafka_timeout_s"):
        intake(None, None, timeout_s=10, pending_ttl_s=5)  # type: ignore[arg-type]
