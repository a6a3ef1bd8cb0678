"""Kafka-native logging: predictions straight to `driftline.predictions.v1` with the same
keys and idempotent event ids as the HTTP path, sent in whole batches per partition.
Kafka authenticates the producer (SASL/TLS settings); schema checks then happen downstream,
where bad events go to the DLQ.

By default a call's events go as columnar batch records (`driftline_core.events.batch`,
docs/schemas/prediction-batch.md): one Kafka record per up to `batch_events` events of the
model, named by its `driftline-format` header. `record_format="events"` sends one JSON
record per event instead, the schema the HTTP path writes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from driftline_core.errors import UnavailableError
from driftline_core.events import predictions as predictions_topic
from driftline_core.events.batch import encode_batch
from driftline_core.kafka import EventProducer
from driftline_core.settings import KafkaSettings

__all__ = ["KafkaLogger"]


class KafkaLogger:
    def __init__(
        self,
        tenant_id: str,
        settings: KafkaSettings | None = None,
        *,
        batch_size: int = 5000,
        attempts: int = 6,
        record_format: Literal["batch", "events"] = "batch",
        batch_events: int = 2000,
    ) -> None:
        self.tenant_id = tenant_id
        self._producer = EventProducer(settings or KafkaSettings(), max_batch_size=1 << 20)
        self._batch = batch_size
        self.record_format = record_format
        self._batch_events = batch_events
        self._max_value = (1 << 20) - 64 * 1024  # below the batch size and the broker's limit
        self._attempts = attempts
        self._in_flight = asyncio.Semaphore(4)

    async def __aenter__(self) -> KafkaLogger:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    def encode_batches(
        self, model_id: str, model_version: str, events: list[dict[str, Any]]
    ) -> list[tuple[bytes, bytes]]:
        """Batch records of up to `batch_events` events, halved until each fits a record."""
        key = f"{self.tenant_id}:{model_id}".encode()
        out: list[tuple[bytes, bytes]] = []
        todo = [
            events[i : i + self._batch_events] for i in range(0, len(events), self._batch_events)
        ]
        while todo:
            chunk = todo.pop(0)
            value = encode_batch(self.tenant_id, model_id, model_version, chunk)
            if len(value) > self._max_value and len(chunk) > 1:
                half = len(chunk) // 2
                todo[:0] = [chunk[:half], chunk[half:]]
                continue
            out.append((key, value))
        return out

    def encode(
        self, model_id: str, model_version: str, events: Iterable[dict[str, Any]]
    ) -> list[tuple[bytes, bytes]]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        key = f"{self.tenant_id}:{model_id}".encode()
        out = []
        for e in events:
            out.append(
                (
                    key,
                    orjson.dumps(
                        {
                            "event_id": e.get("event_id") or str(uuid.uuid4()),
                            "schema_version": 1,
                            "tenant_id": self.tenant_id,
                            "occurred_at": e.get("timestamp") or now,
                            "produced_at": now,
                            "model_id": model_id,
                            "model_version": model_version,
                            "features": e["features"],
                            "prediction": e["prediction"],
                            "probabilities": e.get("probabilities"),
                            "segment": e.get("segment", {}),
                            "business_value": e.get("business_value"),
                            "latency_ms": e.get("latency_ms"),
                            "encrypted_features": {},
                        }
                    ),
                )
            )
        return out

    async def log_predictions(
        self, model_id: str, model_version: str, events: Iterable[dict[str, Any]]
    ) -> int:
        """Send and wait for the broker's acknowledgement; retried with backoff (the same
        event ids, so consumers drop what an uncertain first attempt already stored).
        Up to four chunks are in flight at once, so group commit can fill the batches."""
        if self.record_format == "batch":
            evs = list(events)  # encoded once: every retry sends the same event ids
            records = self.encode_batches(model_id, model_version, evs)
            step, n = max(1, self._batch // self._batch_events), len(evs)
        else:
            records = self.encode(model_id, model_version, events)
            step, n = self._batch, len(records)
        chunks = [records[i : i + step] for i in range(0, len(records), step)]
        await asyncio.gather(*(self._send_chunk(c) for c in chunks))
        return n

    async def _send_chunk(self, chunk: list[tuple[bytes, bytes]]) -> None:
        async with self._in_flight:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(UnavailableError),
                wait=wait_exponential_jitter(multiplier=0.2, max=10),
                stop=stop_after_attempt(self._attempts),
                reraise=True,
            ):
                with attempt:
                    await self._producer.send_records(predictions_topic.TOPIC, chunk)
