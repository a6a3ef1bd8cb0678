"""What reports are built from: every audit record, registry change and alert event, kept
once per source event id in the service's own table (services share topics, not tables).

Index columns (who, what, which resource, when, outcome) are stored in clear so a report can
count without decrypting; the event itself is encrypted under the tenant's data key. Once a
tenant is erased its events cannot be sealed or read, except the erasure record itself,
which is kept in clear as the certificate that the erasure happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from driftline_core.crypto import FieldCipher, KeyDestroyedError
from driftline_core.db.pool import HasPool
from driftline_core.events import AlertEvent, AuditRecord, RegistryChange
from driftline_core.events import alerts as alerts_topic
from driftline_core.events import audit as audit_topic
from driftline_core.events import registry as registry_topic
from driftline_core.kafka import Message

__all__ = [
    "ALERTS",
    "AUDIT",
    "CLEAR_KINDS",
    "ERASURE_ACTIONS",
    "REGISTRY",
    "EvidenceStore",
    "Fact",
    "to_fact",
]

AUDIT, REGISTRY, ALERTS = audit_topic.TOPIC, registry_topic.TOPIC, alerts_topic.TOPIC
ERASURE_ACTIONS = frozenset({"tenant.erase"})
# kept in clear: the erasure certificate, and the audit service's verification answers
# (hashes and counts, no personal data), which must outlive the tenant's keys
CLEAR_KINDS = ERASURE_ACTIONS | {"audit.verify"}
_SKIP = frozenset({"audit.checkpoint"})  # the chain's own heartbeat; the verify answer is kept


@dataclass(frozen=True)
class Fact:
    tenant_id: str
    source_id: uuid.UUID
    topic: str
    occurred_at: datetime
    kind: str
    actor: str
    resource_type: str
    resource_id: str
    outcome: str
    model_id: str | None
    model_version: str | None
    body: dict[str, Any]


def _model_of(resource_type: str, resource_id: str) -> tuple[str | None, str | None]:
    if resource_type in ("model", "model_version"):
        model, _, version = resource_id.partition("@")
        return model, version or None
    return None, None


def to_fact(msg: Message[Any]) -> Fact | None:
    ev = msg.value
    body: dict[str, Any] = ev.model_dump(mode="json")
    common = {"tenant_id": ev.tenant_id, "source_id": ev.event_id, "topic": msg.topic}
    if isinstance(ev, AuditRecord):
        if ev.action in _SKIP:
            return None
        model, version = _model_of(ev.resource.type, ev.resource.id)
        return Fact(
            **common,
            occurred_at=ev.occurred_at,
            kind=ev.action,
            actor=ev.actor.id,
            resource_type=ev.resource.type,
            resource_id=ev.resource.id,
            outcome=ev.outcome,
            model_id=model,
            model_version=version,
            body=body,
        )
    if isinstance(ev, RegistryChange):
        return Fact(
            **common,
            occurred_at=ev.occurred_at,
            kind=f"registry.{ev.change}",
            actor=ev.actor,
            resource_type="model_version" if ev.model_version else "model",
            resource_id=ev.model_id + (f"@{ev.model_version}" if ev.model_version else ""),
            outcome="success",
            model_id=ev.model_id,
            model_version=ev.model_version,
            body=body,
        )
    if isinstance(ev, AlertEvent):
        return Fact(
            **common,
            occurred_at=ev.occurred_at,
            kind=f"alert.{ev.kind}",
            actor="service:alerting",
            resource_type="alert",
            resource_id=ev.fingerprint,
            outcome="success",
            model_id=ev.labels.get("model"),
            model_version=ev.labels.get("version"),
            body=body,
        )
    return None


_COLUMNS = (
    "tenant_id",
    "source_id",
    "topic",
    "occurred_at",
    "kind",
    "actor",
    "resource_type",
    "resource_id",
    "outcome",
    "model_id",
    "model_version",
    "payload",
    "clear",
)
_TYPES = ("text", "uuid", "text", "timestamptz", *["text"] * 7, "text", "jsonb")


class EvidenceStore:
    def __init__(self, db: HasPool, cipher: FieldCipher) -> None:
        self._db = db
        self._cipher = cipher

    async def _seal(self, f: Fact) -> tuple[str | None, str | None]:
        raw = orjson.dumps(f.body)
        if f.kind in CLEAR_KINDS:
            return None, raw.decode()
        try:
            return await self._cipher.encrypt(f.tenant_id, "evidence", str(f.source_id), raw), None
        except KeyDestroyedError:
            return None, None

    async def add(self, facts: Sequence[Fact]) -> int:
        """Store the facts not stored yet (by source event id); returns how many were new."""
        if not facts:
            return 0
        rows = []
        for f in facts:
            payload, clear = await self._seal(f)
            rows.append(
                (
                    f.tenant_id,
                    f.source_id,
                    f.topic,
                    f.occurred_at,
                    f.kind,
                    f.actor,
                    f.resource_type,
                    f.resource_id,
                    f.outcome,
                    f.model_id,
                    f.model_version,
                    payload,
                    clear,
                )
            )
        columns = list(zip(*rows, strict=True))
        unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_TYPES))
        done = await self._db.pool.fetch(
            f"INSERT INTO evidence ({', '.join(_COLUMNS)}) SELECT * FROM unnest({unnest}) "
            "ON CONFLICT (tenant_id, source_id) DO NOTHING RETURNING source_id",
            *[list(c) for c in columns],
        )
        return len(done)

    async def facts(
        self,
        tenant: str,
        *,
        topic: str | None = None,
        kinds: Iterable[str] | None = None,
        prefix: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        model_id: str | None = None,
        decrypt: bool = True,
    ) -> list[dict[str, Any]]:
        """Facts of a tenant in [start, end), oldest first; `body` is the event (None when it
        cannot be read: the tenant was erased)."""
        where, args = ["tenant_id = $1"], [tenant]

        def arg(v: Any) -> str:
            args.append(v)
            return f"${len(args)}"

        if topic is not None:
            where.append(f"topic = {arg(topic)}")
        if kinds is not None:
            where.append(f"kind = ANY({arg(list(kinds))})")
        if prefix is not None:
            where.append(f"starts_with(kind, {arg(prefix)})")
        if start is not None:
            where.append(f"occurred_at >= {arg(start)}")
        if end is not None:
            where.append(f"occurred_at < {arg(end)}")
        if model_id is not None:
            where.append(f"model_id = {arg(model_id)}")
        rows = await self._db.pool.fetch(
            f"SELECT * FROM evidence WHERE {' AND '.join(where)} ORDER BY occurred_at, source_id",
            *args,
        )
        out = []
        for r in rows:
            d = dict(r)
            d["body"] = await self._open(d) if decrypt else None
            out.append(d)
        return out

    async def _open(self, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["clear"] is not None:
            clear = row["clear"]
            return orjson.loads(clear) if isinstance(clear, str | bytes) else dict(clear)
        if row["payload"] is None:
            return None
        try:
            plain = await self._cipher.decrypt(
                row["tenant_id"], "evidence", str(row["source_id"]), row["payload"]
            )
        except KeyDestroyedError:
            return None
        value: dict[str, Any] = orjson.loads(plain)
        return value

    async def counts(self, tenant: str, start: datetime, end: datetime) -> dict[str, int]:
        """Facts per topic in the period, and how many of them are unreadable (shredded)."""
        rows = await self._db.pool.fetch(
            "SELECT topic, count(*) AS n, count(*) FILTER (WHERE payload IS NULL AND clear IS "
            "NULL) AS shredded FROM evidence WHERE tenant_id = $1 AND occurred_at >= $2 AND "
            "occurred_at < $3 GROUP BY topic",
            tenant,
            start,
            end,
        )
        out = {r["topic"]: int(r["n"]) for r in rows}
        out["shredded"] = sum(int(r["shredded"]) for r in rows)
        return out
