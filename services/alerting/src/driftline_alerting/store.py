"""PostgreSQL access for the alerting service (its own schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

from driftline_core.crypto import FieldCipher, KeyDestroyedError
from driftline_core.db.outbox import Outbox
from driftline_core.db.pool import HasPool
from driftline_core.errors import ConfigurationError

from .dispatch import Dispatcher
from .routing import AlertingConfig, Silence
from .rules import STORED, Rule, RuleEngine

__all__ = ["Store"]

STATE_ID = "alerting"


def _j(v: Any) -> str:
    return orjson.dumps(v).decode()


def _outbox_cte(first: int) -> str:
    """The CTE that writes events into the outbox in their order, from three array
    parameters (topics, keys, values) numbered from `first`."""
    t, k, v = first, first + 1, first + 2
    return (
        f"ob AS (INSERT INTO outbox (topic, key, value) SELECT t, k, v FROM "
        f"unnest(${t}::text[], ${k}::bytea[], ${v}::bytea[]) WITH ORDINALITY "
        "AS u(t, k, v, o) ORDER BY o)"
    )


def _outbox_columns(events: Sequence[BaseModel]) -> list[list[Any]]:
    rows = Outbox.rows(events)
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], []]


class Store:
    """`cipher` encrypts rule and configuration bodies (receiver secrets, webhook secrets)
    under the tenant's data key; an erased tenant's bodies are unreadable and skipped."""

    def __init__(self, db: HasPool, cipher: FieldCipher | None = None) -> None:
        self.db = db
        self.cipher = cipher

    async def _seal(self, tenant: str, purpose: str, record: str, body: str) -> str:
        if self.cipher is None:
            return body
        token = await self.cipher.encrypt(tenant, purpose, record, body.encode())
        return _j({"encrypted": token})

    async def _open(self, tenant: str, purpose: str, record: str, body: str) -> str | None:
        data = orjson.loads(body)
        if not (isinstance(data, dict) and set(data) == {"encrypted"}):
            return body  # written before encryption; sealed on its next write
        if self.cipher is None:
            raise ConfigurationError("encrypted alerting state needs the keyring")
        try:
            return (await self.cipher.decrypt(tenant, purpose, record, data["encrypted"])).decode()
        except KeyDestroyedError:
            return None  # the tenant was erased

    # --- rules, configuration, silences ----------------------------------------------------

    async def rules(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for r in await self.db.pool.fetch("SELECT tenant_id, id, body FROM rules ORDER BY id"):
            body = await self._open(r["tenant_id"], "alert-rule", r["id"], r["body"])
            if body is not None:
                out.setdefault(r["tenant_id"], []).append(
                    Rule.model_validate_json(body, context=STORED)
                )
        return out

    async def put_rule(self, tenant: str, rule: Rule, actor: str) -> bool:
        """Upsert; True when it was new."""
        row = await self.db.pool.fetchrow(
            "INSERT INTO rules (tenant_id, id, body, updated_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id, id) DO UPDATE SET body = excluded.body, "
            "updated_by = excluded.updated_by, updated_at = now() RETURNING (xmax = 0) AS new",
            tenant,
            rule.id,
            await self._seal(tenant, "alert-rule", rule.id, rule.model_dump_json()),
            actor,
        )
        return bool(row["new"])

    async def delete_rule(self, tenant: str, rule_id: str) -> bool:
        done = await self.db.pool.execute(
            "DELETE FROM rules WHERE tenant_id = $1 AND id = $2", tenant, rule_id
        )
        return str(done).endswith(" 1")

    async def configs(self) -> dict[str, AlertingConfig]:
        out: dict[str, AlertingConfig] = {}
        for r in await self.db.pool.fetch("SELECT tenant_id, body FROM configs"):
            body = await self._open(r["tenant_id"], "alerting-config", r["tenant_id"], r["body"])
            if body is not None:
                out[r["tenant_id"]] = AlertingConfig.model_validate_json(body, context=STORED)
        return out

    async def put_config(self, tenant: str, config: AlertingConfig, actor: str) -> None:
        await self.db.pool.execute(
            "INSERT INTO configs (tenant_id, body, updated_by) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id) DO UPDATE SET body = excluded.body, "
            "updated_by = excluded.updated_by, updated_at = now()",
            tenant,
            await self._seal(
                tenant, "alerting-config", tenant, config.model_dump_json(by_alias=True)
            ),
            actor,
        )

    async def silences(self) -> dict[str, list[Silence]]:
        out: dict[str, list[Silence]] = {}
        for r in await self.db.pool.fetch(
            "SELECT tenant_id, body FROM silences WHERE NOT expiry_announced"
        ):
            out.setdefault(r["tenant_id"], []).append(
                Silence.model_validate_json(r["body"], context=STORED)
            )
        return out

    async def put_silence(self, tenant: str, s: Silence) -> None:
        await self.db.pool.execute(
            "INSERT INTO silences (tenant_id, id, body, ends_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tenant_id, id) DO UPDATE SET body = excluded.body, "
            "ends_at = excluded.ends_at, expiry_announced = false",
            tenant,
            s.id,
            s.model_dump_json(),
            s.ends_at,
        )

    async def all_silences(self, tenant: str) -> list[Silence]:
        rows = await self.db.pool.fetch(
            "SELECT body FROM silences WHERE tenant_id = $1 ORDER BY ends_at DESC", tenant
        )
        return [Silence.model_validate_json(r["body"], context=STORED) for r in rows]

    async def mark_expired(self, tenant: str, silence_id: str) -> None:
        await self.db.pool.execute(
            "UPDATE silences SET expiry_announced = true WHERE tenant_id = $1 AND id = $2",
            tenant,
            silence_id,
        )

    # --- evaluation state and deliveries ---------------------------------------------------

    async def load_state(self) -> dict[str, Any] | None:
        row = await self.db.pool.fetchrow(
            "SELECT engine, dispatcher, cooldowns FROM state WHERE id = $1", STATE_ID
        )
        if row is None:
            return None
        state = {k: orjson.loads(row[k]) for k in ("engine", "cooldowns")}
        state["engine"]["series"] = {
            r["fingerprint"]: orjson.loads(r["body"])
            for r in await self.db.pool.fetch("SELECT fingerprint, body FROM series")
        }
        state["dispatcher"] = [
            (r["key"], orjson.loads(r["body"]))
            for r in await self.db.pool.fetch("SELECT key, body FROM dispatch")
        ]
        return state

    async def save(
        self,
        engine: RuleEngine,
        dispatcher: Dispatcher,
        cooldowns: dict[str, float],
        deliveries: list[tuple[str, str, str, str, dict[str, Any]]] | None = None,
        events: Sequence[BaseModel] = (),
    ) -> list[asyncpg.Record]:
        """State, the deliveries it decided on and the events that announce it (into the
        outbox, relayed to Kafka after the commit), in one transaction: a notification is
        either logged and queued, or neither, and a transition saved is announced even if
        the process dies just after. Only the rule series, groups and log entries that
        changed are written. Returns the deliveries it inserted (not those already there),
        as `claim_due` returns them."""
        changed, gone = engine.changes()
        d_changed, d_gone = dispatcher.changes()
        try:
            return await self._save(
                engine, changed, gone, d_changed, d_gone, cooldowns, deliveries, events
            )
        except BaseException:  # not written: write these rows with the next save
            engine.dirty.update(fp for fp, _ in changed)
            engine.removed.update(gone)
            dispatcher.dirty.update(k for k, _ in d_changed)
            dispatcher.removed.update(d_gone)
            raise

    async def _save(
        self,
        engine: RuleEngine,
        changed: list[tuple[str, dict[str, Any]]],
        gone: list[str],
        d_changed: list[tuple[str, dict[str, Any]]],
        d_gone: list[str],
        cooldowns: dict[str, float],
        deliveries: list[tuple[str, str, str, str, dict[str, Any]]] | None,
        events: Sequence[BaseModel] = (),
    ) -> list[asyncpg.Record]:
        # one statement (its CTEs are one atomic command): one round trip to PostgreSQL, where
        # BEGIN, each table's write and COMMIT took one each (the alert latency path, issue
        # 17). A row both written and deleted since the last save is written: `changes`
        # gives only rows that exist now
        written = {k for k, _ in d_changed}
        series = {fp for fp, _ in changed}
        out = [(i, t, r, k, _j(b)) for i, t, r, k, b in deliveries or []]
        inserted: list[asyncpg.Record] = await self.db.pool.fetch(
            "WITH s AS (INSERT INTO state (id, engine, dispatcher, cooldowns) "
            "VALUES ($1, $2, '{}', $3) ON CONFLICT (id) DO UPDATE SET engine = excluded.engine, "
            "dispatcher = excluded.dispatcher, cooldowns = excluded.cooldowns, "
            "updated_at = now()), "
            "dw AS (INSERT INTO dispatch (key, body) SELECT k, b::jsonb "
            "FROM unnest($4::text[], $5::text[]) AS u(k, b) "
            "ON CONFLICT (key) DO UPDATE SET body = excluded.body), "
            "dd AS (DELETE FROM dispatch WHERE key = ANY($6::text[])), "
            "sw AS (INSERT INTO series (fingerprint, body) SELECT f, b::jsonb "
            "FROM unnest($7::text[], $8::text[]) AS u(f, b) "
            "ON CONFLICT (fingerprint) DO UPDATE SET body = excluded.body), "
            "sd AS (DELETE FROM series WHERE fingerprint = ANY($9::text[])), "
            f"{_outbox_cte(15)} "
            "INSERT INTO deliveries (id, tenant_id, receiver, kind, body) "
            "SELECT i, t, r, k, b::jsonb FROM unnest($10::text[], $11::text[], "
            "$12::text[], $13::text[], $14::text[]) WITH ORDINALITY AS u(i, t, r, k, b, o) "
            "ORDER BY o ON CONFLICT (id) DO NOTHING "
            "RETURNING id, tenant_id, receiver, kind, body, attempts",
            STATE_ID,
            _j(engine.meta()),
            _j(cooldowns),
            [k for k, _ in d_changed],
            [_j(body) for _, body in d_changed],
            [k for k in d_gone if k not in written],
            [fp for fp, _ in changed],
            [_j(body) for _, body in changed],
            [fp for fp in gone if fp not in series],
            *([list(c) for c in zip(*out, strict=True)] if out else [[], [], [], [], []]),
            *_outbox_columns(events),
        )
        return inserted

    async def claim_due(self, limit: int = 50) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.db.pool.fetch(
            "SELECT id, tenant_id, receiver, kind, body, attempts FROM deliveries "
            "WHERE status = 'pending' AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT $1",
            limit,
        )
        return rows

    async def attempt(
        self,
        delivery_id: str,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        *,
        final: str | None,
        next_in_s: float,
        events: Sequence[BaseModel] = (),
    ) -> None:
        # the attempt logged, the delivery updated and the events announcing its outcome
        # (into the outbox) in one statement (one round trip)
        await self.db.pool.execute(
            "WITH a AS (INSERT INTO delivery_attempts (delivery_id, attempt, ok, status_code, "
            "error, duration_ms) VALUES ($1, $2, $6, $7, $3, $8)), "
            f"{_outbox_cte(9)} "
            "UPDATE deliveries SET attempts = $2, last_error = $3, "
            "status = coalesce($4, status), "
            "finished_at = CASE WHEN $4::text IS NULL THEN NULL ELSE now() END, "
            "next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1",
            delivery_id,
            attempt,
            error,
            final,
            next_in_s,
            ok,
            status_code,
            duration_ms,
            *_outbox_columns(events),
        )

    async def postpone(self, delivery_id: str, seconds: float) -> None:
        await self.db.pool.execute(
            "UPDATE deliveries SET next_attempt_at = now() + make_interval(secs => $2) "
            "WHERE id = $1",
            delivery_id,
            seconds,
        )

    async def deliveries(self, tenant: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.db.pool.fetch(
            "SELECT d.id, d.receiver, d.kind, d.status, d.attempts, d.last_error, "
            "d.created_at, d.finished_at, coalesce(json_agg(json_build_object('attempt', "
            "a.attempt, 'at', a.at, 'ok', a.ok, 'status_code', a.status_code, 'error', a.error,"
            " 'duration_ms', a.duration_ms) ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT "
            "NULL), '[]') AS attempts_log FROM deliveries d LEFT JOIN delivery_attempts a ON "
            "a.delivery_id = d.id WHERE d.tenant_id = $1 GROUP BY d.id ORDER BY d.created_at "
            "DESC LIMIT $2",
            tenant,
            limit,
        )
        return [{**dict(r), "attempts_log": orjson.loads(r["attempts_log"])} for r in rows]
