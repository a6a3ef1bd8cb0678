"""Accepting events: validate each one, refuse replays, encrypt sensitive features, send
the rejects to the DLQ with their reason and the rest to Kafka, and report only what the
broker acknowledged.

"Retry with the same event id" is safe end to end (decision 23). Each id is claimed in Redis
as *pending* before its record is handed to the producer, and marked *accepted* once the
broker acknowledged it. If Kafka does not acknowledge within `kafka_timeout_s`, the request
answers 503 but the ids stay pending: the producer is idempotent and keeps retrying, so the
record may still be written. When the send resolves, the ids become accepted (a retry is
then answered "duplicate event_id: already accepted", which clients count as accepted) or,
on a definite failure, are released (a retry is accepted anew). A retry of a batch with a
pending id claims nothing and answers 503 with Retry-After.

A pending claim lives `pending_ttl_s` (an accepted one `dedup_ttl_s`), and the process whose
send outlived its request renews its claims while the send is unresolved. So the ids of a
process that died with a send in flight are free again within `pending_ttl_s`, not after the
dedup TTL (10 minutes of 503 for every retry): Kafka may or may not hold those records, and a
retry is then taken anew (at least once, as any producer's retry after a crash)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from driftline_core.auth import Principal
from driftline_core.crypto import FieldCipher
from driftline_core.errors import UnavailableError
from driftline_core.events import DeadLetter, encode
from driftline_core.events import actuals as actuals_topic
from driftline_core.events import predictions as predictions_topic
from driftline_core.events.batch import encode_batch
from driftline_core.influx.live import IntakeObserver
from driftline_core.kafka import EventProducer
from driftline_core.kafka.batching import INGESTION_ORIGIN, ORIGIN_HEADER

from .limits import TOO_LARGE, EventTooLargeError, SizeLimits
from .registry import Registry
from .strings import identifier_problem, unstorable
from .validation import ActualIn, PredictionIn, describe

__all__ = ["Intake", "IntakeResult", "PendingError"]

log = logging.getLogger(__name__)


# The keys are ARGV[2] (the tenant's prefix) + each id of ARGV[3] (ids joined by spaces:
# event ids are canonical UUIDs), so a batch's 1,000 keys cost one argument, not 1,000.
# Claim every key as pending ('p', NX, PX ARGV[1]) unless one of them is pending already:
# then claim nothing. The reply: 'P' (a pending id: nothing claimed), or one character per
# key, '1' (claimed now) or '0' (accepted before).
_CLAIM = """
local keys = {}
for id in string.gmatch(ARGV[3], '%S+') do keys[#keys + 1] = ARGV[2] .. id end
for i, key in ipairs(keys) do
  if redis.call('GET', key) == 'p' then return 'P' end
end
local out = {}
for i, key in ipairs(keys) do
  out[i] = redis.call('SET', key, 'p', 'NX', 'PX', ARGV[1]) and '1' or '0'
end
return table.concat(out)
"""
# Settle claims (keys as for _CLAIM, ARGV[2] and ARGV[3]): ARGV[1] = 'a' marks them accepted
# (remembered for ARGV[4] ms, the dedup TTL; also a claim that expired while Redis was away:
# the broker stored the event), '' releases those still pending.
_SETTLE = """
local n = 0
for id in string.gmatch(ARGV[3], '%S+') do
  local key = ARGV[2] .. id
  local v = redis.call('GET', key)
  n = n + 1
  if ARGV[1] == 'a' then
    if v ~= 'a' then redis.call('SET', key, 'a', 'PX', ARGV[4]) end
  elseif v == 'p' then redis.call('DEL', key) end
end
return n
"""
# Renew pending claims (keys as for _CLAIM) for ARGV[1] ms more: the send is unresolved.
_RENEW = """
for id in string.gmatch(ARGV[3], '%S+') do
  local key = ARGV[2] .. id
  if redis.call('GET', key) == 'p' then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 1
"""
ORIGIN = [(ORIGIN_HEADER, INGESTION_ORIGIN)]
PENDING = (
    "an earlier request with these event ids is still waiting for Kafka's acknowledgement; "
    "send the same batch again later"
)


class PendingError(UnavailableError):
    """A retry arrived while an earlier send of one of its event ids is unresolved."""


def _not_an_object(item: Any) -> str:
    return str(getattr(item, "reason", "") or "an event must be a JSON object")


@dataclass
class IntakeResult:
    accepted: int = 0
    event_ids: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        if self.accepted or not self.rejected:
            return 202
        if all(r["reason"].startswith("duplicate event_id") for r in self.rejected):
            return 409
        if all(r["reason"].startswith(TOO_LARGE) for r in self.rejected):
            return 413
        return 422

    def body(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected, "event_ids": self.event_ids}


class Intake:
    def __init__(
        self,
        *,
        registry: Registry,
        producer: EventProducer,
        redis: aioredis.Redis,
        cipher: FieldCipher,
        dedup_ttl_s: int,
        kafka_timeout_s: float,
        observer: IntakeObserver | None = None,
        batch_records: bool = False,
        limits: SizeLimits | None = None,
        pending_ttl_s: float = 30.0,
    ) -> None:
        if pending_ttl_s <= kafka_timeout_s:
            raise ValueError(
                f"pending_ttl_s ({pending_ttl_s:g}) must exceed kafka_timeout_s "
                f"({kafka_timeout_s:g}): a claim must outlive the request that took it"
            )
        self._batch_records = batch_records
        self._limits = limits or SizeLimits()  # events not screened yet are measured here
        self._registry = registry
        self._producer = producer
        self._redis = redis
        self._cipher = cipher
        self._dedup_ttl = dedup_ttl_s
        self._pending_ms = int(pending_ttl_s * 1000)
        self._timeout = kafka_timeout_s
        self._claim = redis.register_script(_CLAIM)
        self._settle_script = redis.register_script(_SETTLE)
        self._renew_script = redis.register_script(_RENEW)
        # sends that outlived their request: settled when the producer resolves them, their
        # claims renewed meanwhile
        self._unresolved: set[asyncio.Future[Any]] = set()
        self._renewing: set[asyncio.Future[None]] = set()
        self._observer = observer  # metrics and live series (driftline_core.influx.live)

    async def predictions(
        self, who: Principal, items: list[Any], *, scan: bool = True
    ) -> IntakeResult:
        """`scan=False` when the body cannot hold a control character (strings.py)."""
        now = datetime.now(UTC)
        result = IntakeResult()
        candidates: list[tuple[int, dict[str, Any]]] = []
        items = self._limits.screen(items)
        wired: Iterable[tuple[int, PredictionIn | PredictionWire]] | None = (
            None if scan else _typed_predictions(items)
        )
        for i, ev in wired if wired is not None else _wire(items, PredictionIn, result, scan):
            schema = await self._registry.compiled_schema(who.tenant_id, ev.model_id)
            if schema is None:
                result.rejected.append({"index": i, "reason": f"unknown model {ev.model_id!r}"})
                continue
            features, reason = schema.check(ev.features)
            if reason or features is None:
                result.rejected.append({"index": i, "reason": reason})
                continue
            prediction, probabilities, reason = schema.check_output(ev.prediction, ev.probabilities)
            if reason:
                result.rejected.append({"index": i, "reason": reason})
                continue
            event_id = str(ev.event_id or uuid.uuid4())
            encrypted: dict[str, str] = {}
            for name in schema.sensitive:
                if features.get(name) is not None:
                    encrypted[name] = await self._cipher.encrypt(
                        who.tenant_id, f"feature:{name}", event_id, orjson.dumps(features[name])
                    )
                    features = {k: v for k, v in features.items() if k != name}
            candidates.append(
                (
                    i,
                    {
                        "event_id": event_id,
                        "schema_version": 1,
                        "tenant_id": who.tenant_id,
                        "occurred_at": ev.timestamp or now,
                        "produced_at": now,
                        "model_id": ev.model_id,
                        "model_version": ev.model_version,
                        "features": features,
                        "prediction": prediction,
                        "probabilities": probabilities,
                        "segment": ev.segment,
                        "business_value": ev.business_value,
                        "latency_ms": ev.latency_ms,
                        "encrypted_features": encrypted,
                    },
                )
            )
        await self._deliver(who, predictions_topic.TOPIC, candidates, items, result)
        return result

    async def actuals(self, who: Principal, items: list[Any], *, scan: bool = True) -> IntakeResult:
        now = datetime.now(UTC)
        result = IntakeResult()
        candidates: list[tuple[int, dict[str, Any]]] = []
        items = self._limits.screen(items)
        for i, ev in _wire(items, ActualIn, result, scan):
            schema = await self._registry.compiled_schema(who.tenant_id, ev.model_id)
            if schema is None:
                result.rejected.append({"index": i, "reason": f"unknown model {ev.model_id!r}"})
                continue
            actual, reason = schema.check_actual(ev.actual)
            if reason:
                result.rejected.append({"index": i, "reason": reason})
                continue
            candidates.append(
                (
                    i,
                    {
                        "event_id": str(ev.event_id or uuid.uuid4()),
                        "schema_version": 1,
                        "tenant_id": who.tenant_id,
                        "occurred_at": ev.timestamp or now,
                        "produced_at": now,
                        "model_id": ev.model_id,
                        "prediction_event_id": str(ev.prediction_event_id),
                        "actual": actual,
                        "segment": ev.segment,
                    },
                )
            )
        await self._deliver(who, actuals_topic.TOPIC, candidates, items, result)
        return result

    async def _deliver(
        self,
        who: Principal,
        topic: str,
        candidates: list[tuple[int, dict[str, Any]]],
        raw: list[Any],
        result: IntakeResult,
    ) -> None:
        reserved = await self._reserve(who.tenant_id, [c["event_id"] for _, c in candidates])
        fresh: list[tuple[int, dict[str, Any]]] = []
        for (i, c), ok in zip(candidates, reserved, strict=True):
            if ok:
                fresh.append((i, c))
            else:
                result.rejected.append(
                    {
                        "index": i,
                        "event_id": c["event_id"],
                        "reason": "duplicate event_id: already accepted",
                    }
                )
        result.rejected.sort(key=lambda r: r["index"])
        ids = [c["event_id"] for _, c in fresh]
        try:
            if result.rejected:
                letters = [
                    self._dead_letter(who, topic, r, raw[r["index"]]) for r in result.rejected
                ]
                await asyncio.wait_for(
                    self._producer.send_records(
                        DeadLetter.TOPIC, [(d.key(), encode(d)) for d in letters]
                    ),
                    self._timeout,
                )
        except (UnavailableError, TimeoutError) as e:
            await self._settle_or_later(who.tenant_id, ids, accepted=False)  # never handed over
            raise UnavailableError(f"Kafka did not acknowledge in time: {e!r}") from e
        if fresh:
            events = [c for _, c in fresh]
            if self._batch_records and topic == predictions_topic.TOPIC:
                records = _batch_records(who.tenant_id, events, self._producer.max_record_bytes)
            else:
                records = [
                    (
                        f"{who.tenant_id}:{c['model_id']}".encode(),
                        orjson.dumps(c, option=orjson.OPT_UTC_Z),
                    )
                    for c in events
                ]
            await self._send(who.tenant_id, topic, records, ids)
        result.accepted = len(fresh)
        result.event_ids = [c["event_id"] for _, c in fresh]
        if self._observer is not None:
            kind = "prediction" if topic == predictions_topic.TOPIC else "actual"
            accepted = [c for _, c in fresh]
            self._observer.delivered(who.tenant_id, kind, accepted, result.rejected, raw)

    def _dead_letter(
        self, who: Principal, topic: str, rejection: dict[str, Any], item: Any
    ) -> DeadLetter:
        raw = getattr(item, "raw", None)
        payload, encoding = DeadLetter.wrap_payload(raw if raw is not None else orjson.dumps(item))
        return DeadLetter(
            tenant_id=who.tenant_id,
            reason=rejection["reason"],
            error_type="rejected_at_ingestion",
            source="ingestion",
            source_topic=topic,
            payload=payload,
            payload_encoding=encoding,
        )

    async def _reserve(self, tenant_id: str, event_ids: list[str]) -> list[bool]:
        """Claim each event id once, as pending, in one round trip and one reply; refuse
        the whole batch (PendingError, 503) if one of its ids is pending."""
        if not event_ids:
            return []
        claimed = await self._claim(args=[self._pending_ms, _prefix(tenant_id), _ids(event_ids)])
        if claimed == b"P":
            raise PendingError(PENDING)
        return [c == 49 for c in claimed]  # b"1"

    async def _send(
        self, tenant_id: str, topic: str, records: list[tuple[bytes, bytes]], ids: list[str]
    ) -> None:
        """Send and settle the claims: accepted on the broker's ack, released on a definite
        failure; still pending (503) if the ack does not come in time."""
        limit = self._producer.max_record_bytes
        if big := [len(v) for _, v in records if len(v) > limit]:
            # the size limits leave room for this; a schema of many sensitive features may not
            await self._settle_or_later(tenant_id, ids, accepted=False)
            raise EventTooLargeError(
                f"{TOO_LARGE}a record of {big[0]:,} bytes does not fit the producer's batch "
                f"({limit:,} bytes); send smaller events (nothing of this request was stored)"
            )
        # marked as ingestion's: drift detection writes the live series of the other records
        send = asyncio.ensure_future(self._producer.send_records(topic, records, ORIGIN))
        try:
            done, _ = await asyncio.wait({send}, timeout=self._timeout)
        except asyncio.CancelledError:  # the client went away; the send goes on
            self._track(tenant_id, ids, send)
            raise
        if not done:
            self._track(tenant_id, ids, send)
            raise UnavailableError(
                f"Kafka did not acknowledge within {self._timeout:g} s; the {len(ids)} event "
                "ids stay claimed until it answers: send the same batch again later (ids it "
                "stored are answered as duplicates, already accepted)"
            )
        try:
            send.result()
        except Exception as e:
            # the idempotent producer retries in-flight batches until they succeed, so a
            # failure it reports (a refusal, a record too large) means nothing was stored
            await self._settle_or_later(tenant_id, ids, accepted=False)
            raise UnavailableError(f"Kafka refused the events: {e!r}") from e
        await self._settle_or_later(tenant_id, ids, accepted=True)

    async def _settle_or_later(self, tenant_id: str, ids: list[str], *, accepted: bool) -> None:
        """Settle the claims of a send the broker answered. If Redis went away since it
        took them, settle them in the background (retried) instead: the broker's answer is
        known, so the request answers by it (202 once Kafka stored the events) rather than
        503 with its ids left pending until the dedup TTL, every retry meeting 503 all along
        (a Redis outage under load, tests/faults)."""
        try:
            await self._settle(tenant_id, ids, accepted=accepted)
        except (RedisError, OSError):
            task = asyncio.ensure_future(
                self._settle_eventually(tenant_id, ids, accepted=accepted, attempts=12)
            )
            self._unresolved.add(task)
            task.add_done_callback(self._unresolved.discard)

    def _track(self, tenant_id: str, ids: list[str], send: asyncio.Future[Any]) -> None:
        self._unresolved.add(send)
        renewing = asyncio.ensure_future(self._renew(tenant_id, ids))
        self._renewing.add(renewing)
        renewing.add_done_callback(self._renewing.discard)
        send.add_done_callback(lambda t: self._later(tenant_id, ids, t, renewing))

    async def _renew(self, tenant_id: str, ids: list[str]) -> None:
        """Keep a send's claims pending while it is unresolved, a third of their TTL before
        they would expire; Redis away for a round is tried again at the next."""
        while True:
            await asyncio.sleep(self._pending_ms / 3000)
            try:
                await self._renew_script(args=[self._pending_ms, _prefix(tenant_id), _ids(ids)])
            except (RedisError, OSError) as e:
                log.warning(
                    "could not renew pending event id claims",
                    extra={"tenant_id": tenant_id, "events": len(ids), "error": repr(e)},
                )

    def _later(
        self,
        tenant_id: str,
        ids: list[str],
        send: asyncio.Future[Any],
        renewing: asyncio.Future[None],
    ) -> None:
        """A send that outlived its request has resolved: settle its claims."""
        renewing.cancel()
        self._unresolved.discard(send)
        ok = not send.cancelled() and send.exception() is None
        task = asyncio.ensure_future(self._settle_eventually(tenant_id, ids, accepted=ok))
        self._unresolved.add(task)
        task.add_done_callback(self._unresolved.discard)
        log.info(
            "a send that outlived its request resolved",
            extra={"tenant_id": tenant_id, "events": len(ids), "stored": ok},
        )

    async def _settle_eventually(
        self, tenant_id: str, ids: list[str], *, accepted: bool, attempts: int = 6
    ) -> None:
        """Settle in the background, retrying while Redis is away (0.5 s doubling to 16 s);
        if it never answers, the claims expire with the pending TTL."""
        for attempt in range(attempts):
            try:
                await self._settle(tenant_id, ids, accepted=accepted)
                return
            except (RedisError, OSError) as e:
                if attempt == attempts - 1:
                    log.warning(
                        "could not settle event id claims; they expire with the pending TTL",
                        extra={"tenant_id": tenant_id, "events": len(ids), "error": repr(e)},
                    )
                    return
                await asyncio.sleep(min(16.0, 0.5 * 2**attempt))

    async def _settle(self, tenant_id: str, event_ids: list[str], *, accepted: bool) -> None:
        if event_ids:
            await self._settle_script(
                args=[
                    "a" if accepted else "",
                    _prefix(tenant_id),
                    _ids(event_ids),
                    self._dedup_ttl * 1000,
                ]
            )

    async def drain(self, timeout_s: float) -> int:
        """Wait (bounded) for the sends that outlived their requests; how many are left."""
        if self._unresolved:
            await asyncio.wait(set(self._unresolved), timeout=timeout_s)
        return len(self._unresolved)


def _prefix(tenant_id: str) -> str:
    """Where a tenant's event ids are claimed: `dl:seen:<tenant>:<event id>`."""
    return f"dl:seen:{tenant_id}:"


def _ids(event_ids: list[str]) -> str:
    """Event ids as one script argument. They are canonical UUIDs (str of a UUID) and so hold
    no white space; one that did would claim the wrong keys, hence the check."""
    joined = " ".join(event_ids)
    if len(joined.split()) != len(event_ids):
        raise ValueError("an event id holds white space or is empty")
    return joined


W = TypeVar("W", bound=BaseModel)


class PredictionWire(msgspec.Struct, forbid_unknown_fields=True):
    """`PredictionIn` as a msgspec struct: a batch's events are converted in one call. It
    accepts a subset of what PredictionIn accepts, giving the same values; whatever it
    refuses (a bad event, or one PredictionIn reads more leniently: a string for a number,
    an epoch timestamp, a braced UUID) sends the batch through PredictionIn, which names
    each event's reason."""

    model_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    model_version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    features: dict[str, Any]
    prediction: float | int | str | bool | list[float]
    event_id: uuid.UUID | None = None
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    probabilities: dict[str, float] | None = None
    segment: dict[str, str] = msgspec.field(default_factory=dict)
    business_value: float | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None


_PREDICTIONS = list[PredictionWire]
# more than microseconds: msgspec rounds the fraction where pydantic truncates it
_SUB_MICROSECONDS = re.compile(r"[.,][0-9]{7}")


def _typed_predictions(items: list[Any]) -> list[tuple[int, PredictionWire]] | None:
    """Every event of the batch as a PredictionWire, or None if one of them is not."""
    try:
        typed = msgspec.convert(items, _PREDICTIONS)
    except msgspec.ValidationError:
        return None
    for ev, item in zip(typed, items, strict=True):
        raw = item["timestamp"] if ev.timestamp is not None else None
        if isinstance(raw, str) and _SUB_MICROSECONDS.search(raw):
            return None
    return list(enumerate(typed))


def _identifiers(ev: BaseModel) -> str | None:
    """Why an identifier of the event is refused (a control character), or None. The
    common case costs one `isprintable` over them all; the walk names the field of a hit."""
    fields = ev.__dict__  # PredictionIn or ActualIn (a missing attribute costs pydantic 2 us)
    segment: dict[str, str] = fields["segment"]
    probabilities: dict[str, float] = fields.get("probabilities") or {}
    singles = [
        (name, v)
        for name in ("model_id", "model_version", "prediction", "actual")
        if isinstance(v := fields.get(name), str)
    ]
    joined = "".join(v for _, v in singles)
    if segment or probabilities:
        joined = "".join((joined, *segment, *segment.values(), *probabilities))
    # every control character is unprintable; an unprintable string may still be allowed
    if joined.isprintable() or identifier_problem("", joined) is None:
        return None
    for name, value in singles:
        if why := identifier_problem(name, value):
            return why
    for k, v in segment.items():
        if why := identifier_problem("segment key", k) or identifier_problem(f"segment.{k}", v):
            return why
    for k in probabilities:
        if why := identifier_problem("probabilities key", k):
            return why
    return None


def _wire(
    items: list[Any], model: type[W], result: IntakeResult, scan: bool = True
) -> Iterator[tuple[int, W]]:
    """The events whose wire shape is right and whose strings the stores can hold, with
    their index; the rest are rejected with the reason. `scan=False`: the body holds no
    control character at all (strings.may_hold_control), so the string checks are skipped."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            result.rejected.append({"index": i, "reason": _not_an_object(item)})
            continue
        if scan and (why := unstorable(item)):
            result.rejected.append({"index": i, "reason": why})
            continue
        try:
            ev = model.model_validate(item)
        except ValidationError as e:
            result.rejected.append({"index": i, "reason": describe(e)})
            continue
        if scan and (why := _identifiers(ev)):
            result.rejected.append({"index": i, "reason": why})
            continue
        yield i, ev


def _batch_records(
    tenant_id: str, events: list[dict[str, Any]], max_bytes: int = 255 * 1024
) -> list[tuple[bytes, bytes]]:
    """A request's predictions as columnar batch records, one per model and version (up to
    2,000 events each, halved until each record fits `max_bytes`); events with encrypted
    features stay per-event JSON records."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    out: list[tuple[bytes, bytes]] = []
    for c in events:
        key = f"{tenant_id}:{c['model_id']}".encode()
        if c["encrypted_features"]:
            out.append((key, orjson.dumps(c, option=orjson.OPT_UTC_Z)))
        else:
            groups.setdefault((c["model_id"], c["model_version"]), []).append(c)
    for (model, version), group in groups.items():
        key = f"{tenant_id}:{model}".encode()
        for i in range(0, len(group), 2000):
            out.extend(_fitting(key, tenant_id, model, version, group[i : i + 2000], max_bytes))
    return out


def _fitting(
    key: bytes,
    tenant_id: str,
    model: str,
    version: str,
    events: list[dict[str, Any]],
    max_bytes: int,
) -> list[tuple[bytes, bytes]]:
    """Batch records of these events, each at most `max_bytes` (a single event over it stays
    one record: the producer refuses it, the request answers 413)."""
    value = encode_batch(tenant_id, model, version, events)
    if len(value) <= max_bytes or len(events) == 1:
        return [(key, value)]
    half = len(events) // 2
    return _fitting(key, tenant_id, model, version, events[:half], max_bytes) + _fitting(
        key, tenant_id, model, version, events[half:], max_bytes
    )
