"""The alerting service at work: results in, alerts evaluated, groups flushed, notifications
delivered.

- `handle` (consumer of drift, quality and performance results): rules evaluated; firing and
  resolved alerts join their groups and are announced on `driftline.alerts.v1` and
  `driftline.audit.v1`; a rule with remediation asks for retraining (cooldown per model and
  rule). The state is saved before the consumer commits, and the announcements with it, in
  the same statement, into an outbox relayed to Kafka after the commit: a crash between the
  save and the broker loses none of them. A result seen again after a crash is recognised
  by its window and has no effect.
- `tick` (every `tick_s`): "no data" rules on the clock, expired silences announced, due
  groups flushed. The notifications decided and the state that records them are saved in one
  transaction, as deliveries (an outbox).
- `deliver` (loop): due deliveries sent; every attempt logged; retries with exponential
  backoff and jitter, honouring Retry-After; a circuit breaker per receiver; after the last
  attempt the notification goes to the DLQ and the audit topic, never silently dropped."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from driftline_core.audit import AuditEmitter
from driftline_core.db.outbox import Outbox
from driftline_core.errors import InvalidEventError
from driftline_core.events import (
    Actor,
    AlertEvent,
    AuditRecord,
    DeadLetter,
    DriftResult,
    PerformanceResult,
    QualityResult,
    Resource,
    RetrainRequested,
    encode,
)
from driftline_core.events.alerts import AlertEventKind
from driftline_core.influx.alerts import AlertSeries
from driftline_core.kafka import EventProducer, Message
from driftline_core.observability.metrics import AlertingMetrics, integration_type

from .dispatch import Dispatcher, Notification
from .receivers import Clients, Links, Outcome, post, send, sign_headers
from .routing import AlertingConfig, Silence
from .rules import Alert, Rule, RuleEngine, default_rules
from .settings import AlertingOptions
from .store import Store

__all__ = ["KINDS", "AlertingRuntime", "nul_path"]

log = logging.getLogger(__name__)
SERVICE = Actor(type="service", id="alerting")
KINDS: dict[str, str] = {
    DriftResult.TOPIC: "drift",
    QualityResult.TOPIC: "quality",
    PerformanceResult.TOPIC: "performance",
}


def nul_path(v: Any, path: str = "") -> str | None:
    """Where a NUL character sits in a JSON value (keys included), or None. PostgreSQL's
    text and jsonb cannot hold one ("\\u0000 cannot be converted to text")."""
    if isinstance(v, str):
        return (path or "<value>") if "\x00" in v else None
    if isinstance(v, dict):
        for k, x in v.items():
            here = f"{path}.{k}" if path else str(k)
            if "\x00" in str(k):
                return _printable(here)
            found = nul_path(x, here)
            if found is not None:
                return found
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            found = nul_path(x, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _printable(v: Any) -> str:
    return repr(v)  # escapes NUL and other control characters


@dataclass
class Breaker:
    failures: int = 0
    open_until: float = 0.0


class AlertingRuntime:
    def __init__(
        self,
        opts: AlertingOptions,
        store: Store,
        producer: EventProducer,
        audit: AuditEmitter,
        *,
        topics: dict[str, str] | None = None,
    ) -> None:
        self.opts, self.store, self.producer, self.audit = opts, store, producer, audit
        self.kinds = topics or KINDS
        self.engine = RuleEngine()
        self.dispatcher = Dispatcher()
        self.cooldowns: dict[str, float] = {}
        self.rules: dict[str, list[Rule]] = {}
        self.configs: dict[str, AlertingConfig] = {}
        self.silences: dict[str, list[Silence]] = {}
        self.breakers: dict[str, Breaker] = {}
        self.lock = asyncio.Lock()
        self.clients = Clients()
        self.links = Links(opts.external_url, opts.models_url)
        self.results_seen = 0
        self.restores = 0  # state restored from the store after a failed save
        self.metrics: AlertingMetrics | None = None  # notifications sent/failed (app.py)
        self.series: AlertSeries | None = None  # transitions in InfluxDB (dashboards)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # a group due at once (group_wait 0) or a delivery queued wakes its loop early
        self._wake = {"tick": asyncio.Event(), "deliver": asyncio.Event()}
        # deliveries a result's save just inserted, handed to the delivery loop so it sends
        # them without reading them back (claim_due); ids it attempted lately, so a row both
        # handed and claimed is sent once
        self._handed: list[Any] = []
        self._attempted: dict[str, None] = {}
        # attempts sent whose outcome is being recorded (store, events, audit) while the loop
        # sends the next ones; claim_due skips them. _claims_full: the last claim was all
        # such rows, so a recording that ends wakes the loop for the rows behind them
        self._recording: dict[str, asyncio.Task[None]] = {}
        self._claims_full = False
        # every new delivery is handed over by its save, so claim_due (retries, rows left by
        # a previous leader) runs once per tick, or again at once while claims find rows
        self._claim_again_at = 0.0
        # the announcements every save writes with the state, relayed to Kafka in their order
        # after the commit (by the leader; rows a previous leader left are relayed at start)
        self.outbox = Outbox(store.db, producer)
        self._defaults: list[Rule] | None = None
        # quiet series are forgotten after 7 days: looking for them once a minute, not on
        # every result (a walk over every series, 10 % of handle's time)
        self._pruned_at = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()  # started again when this replica becomes leader again
        self.rules = await self.store.rules()
        self.configs = await self.store.configs()
        self.silences = await self.store.silences()
        if self.opts.rules_file:
            await self.load_file(Path(self.opts.rules_file))
        state = await self.store.load_state()
        if state is not None:
            self.engine.load(state["engine"])
            self.dispatcher.load_rows(state["dispatcher"], time.time())
            self.cooldowns = state["cooldowns"]
        self._tasks = [
            asyncio.create_task(self._loop(self.tick, "tick")),
            asyncio.create_task(self._loop(self.deliver, "deliver")),
        ]
        await self.outbox.start()

    async def _restore(self) -> None:
        """Back to the last saved state after a failed save (called under the lock). If the
        store cannot be read either (an outage), keep the state in memory: its unsaved rows
        stay marked and go with the next save, and results seen again change nothing."""
        try:
            state = await self.store.load_state()
        except Exception:
            log.warning("alerting state not restored after a failed save", exc_info=True)
            return
        engine, dispatcher = RuleEngine(), Dispatcher()
        cooldowns: dict[str, float] = {}
        if state is not None:
            engine.load(state["engine"])
            dispatcher.load_rows(state["dispatcher"], time.time())
            cooldowns = state["cooldowns"]
        self.engine, self.dispatcher, self.cooldowns = engine, dispatcher, cooldowns
        self.restores += 1

    async def stop(self) -> None:
        self._stopping.set()
        for ev in self._wake.values():
            ev.set()
        # let a delivery in flight finish and be recorded, so a restart does not resend it
        tasks, self._tasks = self._tasks, []
        _done, pending = await asyncio.wait(tasks, timeout=15) if tasks else (set(), set())
        for t in pending:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        # and the outcomes of attempts already sent recorded (a restart must not resend
        # them), then what the outbox holds relayed (the rest goes at the next start)
        recording = list(self._recording.values())
        if recording:
            await asyncio.wait(recording, timeout=15)
        await self.outbox.stop()
        await self.clients.aclose()
        self.clients = Clients()  # for a next start (leadership regained)

    async def _loop(self, step: Any, name: str) -> None:
        while not self._stopping.is_set():
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store outage must not end the loop
                log.exception("alerting %s failed; retrying", name)
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake[name].wait(), self.opts.tick_s)
            self._wake[name].clear()

    async def load_file(self, path: Path) -> None:
        """`tenants: {<tenant>: {rules: [...], <alertmanager.yml keys>}}`, or
        `alertmanager_config: <path of an alertmanager.yml>` (relative to this file)."""
        doc = yaml.safe_load(path.read_text()) or {}  # noqa: ASYNC240 - once, at start
        actor = f"file:{path.name}"
        for tenant, body in (doc.get("tenants") or {}).items():
            for r in body.get("rules", []):
                rule = Rule.model_validate(r)
                await self.store.put_rule(tenant, rule, actor)
            am = {k: v for k, v in body.items() if k not in ("rules", "alertmanager_config")}
            if body.get("alertmanager_config"):
                am_path = path.parent / body["alertmanager_config"]
                am = {**(yaml.safe_load(am_path.read_text()) or {}), **am}
            if am:
                await self.store.put_config(tenant, AlertingConfig.model_validate(am), actor)
        self.rules = await self.store.rules()
        self.configs = await self.store.configs()

    def rules_for(self, tenant: str) -> list[Rule]:
        mine = self.rules.get(tenant)
        if mine is not None:
            return mine
        if not self.opts.default_rules:
            return []
        if self._defaults is None:  # built once (rules are frozen): 12 % of handle's time
            self._defaults = default_rules()
        return list(self._defaults)

    def config_for(self, tenant: str) -> AlertingConfig:
        return self.configs.get(tenant) or AlertingConfig()

    # --- results ---------------------------------------------------------------------------

    async def handle(self, batch: list[Message[Any]]) -> None:
        """A batch of results, saved with its effects in one transaction. A result that
        cannot be stored (a NUL character anywhere) is refused before it touches any state;
        and if a save fails for any other reason, the in-memory state goes back to the last
        saved one, so the consumer can isolate the guilty record (it re-handles the batch one
        record at a time and dead-letters only that one) and nothing poisons later saves."""
        now = time.time()
        alerts: list[Alert] = []
        results: list[tuple[str, dict[str, Any]]] = []
        for m in batch:
            kind = self.kinds.get(m.topic)
            if kind is None:
                continue
            result = m.value.model_dump(mode="json")
            # orjson writes a NUL as \u0000: one C pass over the result, and the walk that
            # names where it is only when there may be one
            where = nul_path(result) if b"\\u0000" in orjson.dumps(result) else None
            if where is not None:
                raise InvalidEventError(
                    f"{m.topic}[{m.partition}]@{m.offset} (tenant "
                    f"{_printable(result.get('tenant_id'))}): {where} holds a NUL character "
                    "(\\u0000), which alerting's state cannot store; the result is refused"
                )
            results.append((kind, result))
        async with self.lock:
            try:
                for kind, result in results:
                    self.results_seen += 1
                    for a in self.engine.observe(
                        kind, result, self.rules_for(result["tenant_id"]), now
                    ):
                        self.dispatcher.add(a, self.config_for(a.tenant_id), now)
                        alerts.append(a)
                retrain = [a for a in alerts if a.status == "firing" and self._cooled(a, now)]
                if now - self._pruned_at >= 60:
                    self.engine.prune(now)
                    self._pruned_at = now
                # groups due now (group_wait 0) are flushed here, their deliveries queued in
                # the same transaction as the state that decided them (as tick does), so the
                # delivery loop is woken without waiting for the clock's next save
                queued = self._flush_due(now) if alerts else []
                inserted = await self.store.save(
                    self.engine,
                    self.dispatcher,
                    self.cooldowns,
                    [d for a in retrain if (d := self._retrain_delivery(a)) is not None] + queued,
                    self._announcements(alerts)
                    + [
                        self._retrain_command(a)
                        for a in retrain
                        if (a.rule.remediation and a.rule.remediation.command)
                    ],
                )
                self._handed += inserted
            except Exception:
                await self._restore()
                raise
        if alerts and self.dispatcher.due(time.time()):
            self._wake["tick"].set()
        if retrain or queued:
            self._wake["deliver"].set()
        self._announced(alerts)

    def _cooled(self, a: Alert, now: float) -> bool:
        rem = a.rule.remediation
        if rem is None:
            return False
        key = f"{a.tenant_id}:{a.model_id}:{a.rule.id}"
        if now - self.cooldowns.get(key, 0.0) < rem.cooldown_s:
            return False
        self.cooldowns[key] = now
        return True

    def _evidence(self, a: Alert) -> dict[str, Any]:
        return {
            "alert": a.fingerprint,
            "rule_id": a.rule.id,
            "labels": a.labels,
            "value": a.value,
            "windows": list(a.evidence),
            "features": sorted({a.labels["feature"]} if "feature" in a.labels else set()),
        }

    def _retrain_command(self, a: Alert) -> RetrainRequested:
        return RetrainRequested(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"retrain:{a.fingerprint}:{a.starts_at}"),
            tenant_id=a.tenant_id,
            model_id=a.model_id,
            model_version=a.labels.get("version"),
            rule_id=a.rule.id,
            reason=a.annotations.get("summary") or a.rule.name,
            evidence=self._evidence(a),
        )

    def _retrain_delivery(self, a: Alert) -> tuple[str, str, str, str, dict[str, Any]] | None:
        rem = a.rule.remediation
        if rem is None or rem.webhook is None:
            return None
        cmd = self._retrain_command(a)
        # no secret in the body: it is stored in clear and copied to the DLQ after the last
        # attempt; the signing secret is resolved at send time from the (encrypted) rule
        body = {
            "url": str(rem.webhook),
            "rule_id": a.rule.id,
            "signed": rem.webhook_secret is not None,
            "payload": orjson.loads(encode(cmd)),
        }
        return (f"rtr_{cmd.event_id.hex}", a.tenant_id, "retrain-webhook", "remediation", body)

    @staticmethod
    def _announcements(alerts: list[Alert]) -> list[AlertEvent | AuditRecord]:
        """Each transition for the alerts topic and the audit trail, saved with the state
        that decided it (the outbox)."""
        events: list[AlertEvent | AuditRecord] = []
        for a in alerts:
            events.append(
                AlertEvent(
                    tenant_id=a.tenant_id,
                    kind=a.status,
                    fingerprint=a.fingerprint,
                    rule_id=a.rule.id,
                    severity=a.rule.severity,
                    labels=a.labels,
                    annotations=a.annotations,
                    starts_at=datetime.fromtimestamp(a.starts_at, UTC),
                    ends_at=datetime.fromtimestamp(a.ends_at, UTC) if a.ends_at else None,
                    details={"value": a.value, "evidence": list(a.evidence)},
                )
            )
            events.append(
                AuditRecord(
                    tenant_id=a.tenant_id,
                    service="alerting",
                    actor=SERVICE,
                    action=f"alert.{a.status}",
                    resource=Resource(type="alert", id=a.fingerprint),
                    details={"rule_id": a.rule.id, "labels": a.labels, "value": a.value},
                )
            )
        return events

    def _announced(self, alerts: list[Alert]) -> None:
        """A save with transitions committed: relay them now, and show them in InfluxDB."""
        if not alerts:
            return
        self.outbox.poke()
        if self.series is not None:
            self.series.record(alerts)

    # --- the clock -------------------------------------------------------------------------

    async def tick(self) -> None:
        now = time.time()
        when = datetime.fromtimestamp(now, UTC)
        alerts: list[Alert] = []
        queued: list[tuple[str, str, str, str, dict[str, Any]]] = []
        expired: list[tuple[str, Silence]] = []
        async with self.lock:
            tenants = {t for t, _ in self.engine.last_seen}
            for tenant in tenants:
                for a in self.engine.absent(tenant, self.rules_for(tenant), now):
                    self.dispatcher.add(a, self.config_for(a.tenant_id), now)
                    alerts.append(a)
            for tenant, silences in self.silences.items():
                expired += [(tenant, s) for s in silences if s.ends_at <= when]
                self.silences[tenant] = [s for s in silences if s.ends_at > when]
            queued += self._flush_due(now)
            if alerts or queued:
                self.dispatcher.prune(now)
                try:
                    self._handed += await self.store.save(
                        self.engine,
                        self.dispatcher,
                        self.cooldowns,
                        queued,
                        self._announcements(alerts),
                    )
                except Exception:
                    await self._restore()
                    raise
        if queued:
            self._wake["deliver"].set()
        self._announced(alerts)
        for tenant, s in expired:
            await self._silence_event(tenant, s, "silence_expired", SERVICE)
            await self.store.mark_expired(tenant, s.id)

    def _flush_due(self, now: float) -> list[tuple[str, str, str, str, dict[str, Any]]]:
        """The deliveries of every group due at `now` (called under the lock; the caller
        saves them with the state)."""
        queued: list[tuple[str, str, str, str, dict[str, Any]]] = []
        for g in self.dispatcher.due(now):
            n = self.dispatcher.flush(
                g, self.config_for(g.tenant), self.silences.get(g.tenant, []), now
            )
            if n is not None:
                queued += self._deliveries(n)
        if queued:
            self.dispatcher.prune(now)
        return queued

    def _deliveries(self, n: Notification) -> list[tuple[str, str, str, str, dict[str, Any]]]:
        """One delivery per integration of the receiver (each retried on its own, as in
        Alertmanager); a receiver without integrations gets none; an unknown one gets one,
        which fails with the reason."""
        receiver = self.config_for(n.tenant).receiver(n.receiver)
        refs = receiver.integration_refs() if receiver is not None else ["?"]
        body = n.to_json()
        return [
            (
                n.id if i == 0 else f"{n.id}.{i}",
                n.tenant,
                n.receiver,
                "notification",
                {**body, "integration": i, "integration_ref": ref},
            )
            for i, ref in enumerate(refs)
        ]

    async def add_silence(self, tenant: str, s: Silence, actor: Actor) -> None:
        await self.store.put_silence(tenant, s)
        async with self.lock:
            mine = [x for x in self.silences.get(tenant, []) if x.id != s.id]
            self.silences[tenant] = [*mine, s]
        await self._silence_event(tenant, s, "silence_created", actor)

    async def _silence_event(
        self, tenant: str, s: Silence, kind: AlertEventKind, actor: Actor
    ) -> None:
        await self.producer.send(
            AlertEvent(
                tenant_id=tenant,
                kind=kind,
                fingerprint=s.id,
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                details={
                    "matchers": [m.model_dump() for m in s.matchers],
                    "created_by": s.created_by,
                    "comment": s.comment,
                },
            )
        )
        await self.audit.record(
            tenant_id=tenant,
            actor=actor,
            action=kind.replace("_", "."),
            resource=Resource(type="silence", id=s.id),
            details={"ends_at": s.ends_at.isoformat(), "comment": s.comment},
        )

    # --- delivery --------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Send what a save handed over, else what is due. Each batch is sent before the
        next one (the order of sends is kept); an attempt's outcome is recorded while the
        next batch is sent, so a result's notification does not wait for the store and the
        event topics to hear about the one before it."""
        limit = 50
        while True:
            handed, self._handed = self._handed, []
            rows = [r for r in handed if r["id"] not in self._attempted]
            if not rows:
                if time.monotonic() < self._claim_again_at:
                    return
                # the rows being recorded when the claim is sent: one whose recording ends
                # while the claim runs may have been read as it was before (still pending
                # and due), and sending it again would send it twice
                in_flight = set(self._recording)
                claimed = await self.store.claim_due(limit)  # retries, rows left behind
                rows = [r for r in claimed if r["id"] not in in_flight]
                self._claims_full = not rows and len(claimed) >= limit
                if self._claims_full and not any(r["id"] in self._recording for r in claimed):
                    # all of them were recorded while the claim ran: no recording is left
                    # to wake the loop, so claim again now (what it reads is recorded)
                    self._claims_full, self._claim_again_at = False, 0.0
                    continue
                # rows found, or a full claim of rows in flight: there may be more, claim
                # again at once (when woken); none: on the clock
                again = rows or self._claims_full
                self._claim_again_at = 0.0 if again else time.monotonic() + self.opts.tick_s
            if not rows:
                return
            for r in rows:
                self._attempted[r["id"]] = None
            while len(self._attempted) > 10_000:
                del self._attempted[next(iter(self._attempted))]
            await asyncio.gather(*(self._deliver_one(r) for r in rows))
            if self._stopping.is_set():
                return

    async def _deliver_one(self, row: Any) -> None:
        now = time.time()
        bkey = f"{row['tenant_id']}|{row['receiver']}"
        breaker = self.breakers.setdefault(bkey, Breaker())
        if breaker.open_until > now:
            await self.store.postpone(row["id"], breaker.open_until - now)
            return
        body = orjson.loads(row["body"])
        attempt = row["attempts"] + 1
        t0 = time.perf_counter()
        rtype = "retrain"  # the receiver type the metrics count by
        if row["kind"] == "remediation":
            out = await self._retrain_call(row["id"], row["tenant_id"], body, now)
        else:
            n = Notification.from_json(body)
            config = self.config_for(n.tenant)
            receiver = config.receiver(n.receiver)
            index = int(body.get("integration", 0))
            if receiver is not None and body.get("integration_ref"):
                # by its list and place in it ("email_configs/0"): adding an integration of
                # another kind meanwhile does not send this delivery to that one
                refs = receiver.integration_refs()
                ref = body["integration_ref"]
                index = refs.index(ref) if ref in refs else len(refs)
            if receiver is None:
                out = Outcome(
                    False,
                    False,
                    error=f"tenant {n.tenant!r} has no receiver named {n.receiver!r}",
                )
            elif index >= len(receiver.integrations):
                what = body.get("integration_ref") or f"#{index}"
                out = Outcome(
                    False, False, error=f"receiver {n.receiver!r} has no integration {what}"
                )
            else:
                rtype = integration_type(receiver.integrations[index])
                out = await send(
                    receiver.integrations[index],
                    n,
                    self.clients,
                    now,
                    config=config,
                    links=self.links,
                )
        ms = (time.perf_counter() - t0) * 1000
        if self.metrics is not None:
            self.metrics.delivery(rtype, out.ok)
        if out.ok:
            breaker.failures = 0
        else:
            breaker.failures += 1
            if breaker.failures >= self.opts.breaker_failures:
                breaker.open_until = time.time() + self.opts.breaker_open_s
        final = None
        if out.ok:
            final = "delivered"
        elif not out.retriable or attempt >= self.opts.max_attempts:
            final = "failed"
        delay = out.retry_after_s if out.retry_after_s is not None else self._backoff(attempt)
        task = asyncio.create_task(
            self._record(row, body, attempt, out, ms, final, min(delay, self.opts.backoff_cap_s))
        )
        self._recording[row["id"]] = task
        task.add_done_callback(functools.partial(self._recorded, row["id"]))

    async def _record(
        self,
        row: Any,
        body: dict[str, Any],
        attempt: int,
        out: Outcome,
        ms: float,
        final: str | None,
        next_in_s: float,
    ) -> None:
        events = self._finished(row, body, final, attempt, out) if final is not None else []
        await self.store.attempt(
            row["id"],
            attempt,
            out.ok,
            out.status,
            out.error,
            ms,
            final=final,
            next_in_s=next_in_s,
            events=events,
        )
        if events:
            self.outbox.poke()

    def _recorded(self, delivery_id: str, task: asyncio.Task[None]) -> None:
        self._recording.pop(delivery_id, None)
        if not task.cancelled() and (e := task.exception()) is not None:
            # not recorded: the row stays pending and due, and is claimed and sent again
            # (at least once), as when the loop itself failed on it
            log.error("delivery %s: its attempt was not recorded", delivery_id, exc_info=e)
        if self._claims_full:
            self._claims_full = False
            self._wake["deliver"].set()

    def _backoff(self, attempt: int) -> float:
        d = min(self.opts.backoff_cap_s, self.opts.backoff_base_s * 2 ** (attempt - 1))
        return float(d / 2 + random.uniform(0, d / 2))

    def _webhook_secret(self, tenant: str, rule_id: str) -> str | None:
        for r in self.rules_for(tenant):
            if r.id == rule_id and r.remediation is not None:
                return r.remediation.webhook_secret
        return None

    async def _retrain_call(
        self, delivery_id: str, tenant: str, body: dict[str, Any], now: float
    ) -> Outcome:
        data = orjson.dumps(body["payload"]).decode()
        headers = {"Idempotency-Key": delivery_id}
        if body.get("signed"):
            rule_id = body.get("rule_id") or body["payload"].get("rule_id", "")
            secret = self._webhook_secret(tenant, rule_id)
            if secret is None:
                return Outcome(
                    False,
                    False,
                    error=f"rule {rule_id!r} has no webhook secret any more: not sent unsigned",
                )
            headers.update(sign_headers([secret], delivery_id, data, now))
        return await post(self.clients.default, body["url"], data.encode(), headers, 10)

    def _finished(
        self, row: Any, body: dict[str, Any], final: str, attempts: int, out: Outcome
    ) -> list[AlertEvent | AuditRecord | DeadLetter]:
        """What announces a delivery's last attempt, recorded with it (the outbox): the
        outcome on the alerts topic and the audit trail, and a failed one's dead letter."""
        tenant = row["tenant_id"]
        kind: AlertEventKind = "delivery_succeeded" if final == "delivered" else "delivery_failed"
        details = {
            "delivery_id": row["id"],
            "kind": row["kind"],
            "attempts": attempts,
            "status_code": out.status,
            "error": out.error,
        }
        events: list[AlertEvent | AuditRecord | DeadLetter] = [
            AlertEvent(
                tenant_id=tenant,
                kind=kind,
                fingerprint=row["id"],
                receiver=row["receiver"],
                details=details,
            ),
            AuditRecord(
                tenant_id=tenant,
                service="alerting",
                actor=SERVICE,
                action=f"alert.{kind}",
                outcome="success" if final == "delivered" else "failure",
                resource=Resource(type="delivery", id=row["id"]),
                details={**details, "receiver": row["receiver"]},
            ),
        ]
        if final == "failed":
            payload, enc = DeadLetter.wrap_payload(orjson.dumps(body))
            events.append(
                DeadLetter(
                    tenant_id=tenant,
                    reason=f"delivery to {row['receiver']!r} failed after {attempts} "
                    f"attempt(s): {out.error}",
                    error_type="delivery_failed",
                    source="alerting",
                    payload=payload,
                    payload_encoding=enc,
                )
            )
        return events
