"""Aggregation groups and the notification log, as in Alertmanager.

An alert goes to every route it matches; there it joins the group of its `group_by` label
values. A new group is flushed after `group_wait`, then every `group_interval`. At a flush,
silenced and inhibited alerts are left out, and the group notifies its receiver when:

- an alert fires that the last notification did not have as firing, or
- an alert the last notification had as firing is resolved (if the receiver wants resolved
  notifications), or
- something still fires and `repeat_interval` has passed since the last notification.

Resolved alerts leave the group once flushed; an empty group is removed. The notification
log (what was last sent per group and receiver, and how many times) is what makes this
dedup work across restarts: the service saves it with the deliveries it creates, in one
transaction. A notification's id (the idempotency key receivers see) derives from the group,
the receiver, the alert sets and the log's sequence number, so a notification rebuilt after a
crash has the id of the one that may already have gone out.

Pure logic with the clock passed in."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .routing import AlertingConfig, ResolvedRoute, Silence, route
from .rules import STORED, Alert

__all__ = ["Dispatcher", "GroupAlert", "Notification"]


@dataclass
class GroupAlert:
    fingerprint: str
    rule_id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: Literal["firing", "resolved"]
    starts_at: float
    ends_at: float | None
    value: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    remediation: dict[str, Any] | None = None

    @classmethod
    def of(cls, a: Alert) -> GroupAlert:
        return cls(
            a.fingerprint,
            a.rule.id,
            a.labels,
            a.annotations,
            a.status,
            a.starts_at,
            a.ends_at,
            a.value,
            list(a.evidence),
            # never the webhook secret: groups and notifications are stored in clear
            a.rule.remediation.model_dump(mode="json", exclude={"webhook_secret"})
            if a.rule.remediation
            else None,
        )


@dataclass
class Group:
    key: str
    tenant: str
    route: ResolvedRoute
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, GroupAlert] = field(default_factory=dict)


@dataclass
class LogEntry:
    firing: list[str]
    resolved: list[str]
    at: float
    seq: int


@dataclass(frozen=True)
class Notification:
    id: str
    tenant: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    status: Literal["firing", "resolved"]
    alerts: tuple[GroupAlert, ...]
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "receiver": self.receiver,
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "status": self.status,
            "alerts": [_alert_json(a) for a in self.alerts],
            "at": self.at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Notification:
        return cls(
            d["id"],
            d["tenant"],
            d["receiver"],
            d["group_key"],
            d["group_labels"],
            d["status"],
            tuple(GroupAlert(**a) for a in d["alerts"]),
            d["at"],
        )


def _alert_json(a: GroupAlert) -> dict[str, Any]:
    return {
        "fingerprint": a.fingerprint,
        "rule_id": a.rule_id,
        "labels": a.labels,
        "annotations": a.annotations,
        "status": a.status,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "value": a.value,
        "evidence": a.evidence,
        "remediation": a.remediation,
    }


class Dispatcher:
    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.log: dict[str, LogEntry] = {}  # "group key|receiver" -> last notification
        self.dirty: set[str] = set()  # group keys and log keys ("log:" + key) to write
        self.removed: set[str] = set()

    def add(self, alert: Alert, config: AlertingConfig, now: float) -> None:
        for r in route(config.route, alert.labels):
            key = f"{alert.tenant_id}|{r.group_key(alert.labels)}"
            g = self.groups.get(key)
            if g is None:
                labels = (
                    dict(alert.labels)
                    if r.group_by == ("...",)
                    else {k: alert.labels.get(k, "") for k in r.group_by}
                )
                g = self.groups[key] = Group(key, alert.tenant_id, r, labels, now + r.group_wait_s)
            g.route = r
            g.alerts[alert.fingerprint] = GroupAlert.of(alert)
            self.dirty.add(key)

    def due(self, now: float) -> list[Group]:
        return sorted(
            (g for g in self.groups.values() if g.next_flush <= now), key=lambda g: g.next_flush
        )

    def flush(
        self,
        g: Group,
        config: AlertingConfig,
        silences: list[Silence],
        now: float,
    ) -> Notification | None:
        when = datetime.fromtimestamp(now, UTC)
        all_firing = [
            a.labels
            for grp in self.groups.values()
            if grp.tenant == g.tenant
            for a in grp.alerts.values()
            if a.status == "firing"
        ]

        timed_out = bool(config.muted_by(g.route, when))  # time intervals mute the route

        def muted(a: GroupAlert) -> bool:
            return (
                timed_out
                or any(s.mutes(a.labels, when) for s in silences)
                or config.inhibited(a.labels, all_firing)
            )

        firing = {fp: a for fp, a in g.alerts.items() if a.status == "firing" and not muted(a)}
        resolved = {fp: a for fp, a in g.alerts.items() if a.status == "resolved"}
        receiver = config.receiver(g.route.receiver)
        send_resolved = receiver.send_resolved if receiver is not None else True
        repeat_s = g.route.repeat_interval_s
        if receiver is not None and receiver.resend_s is not None:  # a hand-off re-sends
            repeat_s = min(repeat_s, receiver.resend_s)
        lkey = f"{g.key}|{g.route.receiver}"
        last = self.log.get(lkey)
        was_firing = set(last.firing) if last else set()
        resolved_news = {fp for fp in resolved if fp in was_firing}
        needs = bool(
            (firing and not set(firing) <= was_firing)
            or (send_resolved and resolved_news)
            or (firing and last is not None and now - last.at >= repeat_s)
            or (not firing and was_firing and not resolved_news and last is not None)
        )
        # leave resolved alerts behind; keep the rest for the next flush
        for fp in resolved:
            g.alerts.pop(fp, None)
        g.next_flush = now + min(g.route.group_interval_s, repeat_s)
        self.dirty.add(g.key)
        if not g.alerts:
            self.groups.pop(g.key, None)
            self.dirty.discard(g.key)
            self.removed.add(g.key)
        if not needs:
            return None
        seq = (last.seq + 1) if last else 1
        self.log[lkey] = LogEntry(sorted(firing), sorted(resolved), now, seq)
        self.dirty.add("log:" + lkey)
        if not firing and not (send_resolved and resolved_news):
            return None  # muted since the last notification: remember, send nothing
        shown = list(firing.values()) + (
            [resolved[fp] for fp in sorted(resolved_news)] if send_resolved else []
        )
        ident = hashlib.sha256(
            "|".join(
                [lkey, ",".join(sorted(firing)), ",".join(sorted(resolved_news)), str(seq)]
            ).encode()
        ).hexdigest()[:32]
        return Notification(
            id=f"ntf_{ident}",
            tenant=g.tenant,
            receiver=g.route.receiver,
            group_key=g.key,
            group_labels=g.labels,
            status="firing" if firing else "resolved",
            alerts=tuple(shown),
            at=now,
        )

    def prune(self, now: float, max_age_s: float = 5 * 86400) -> None:
        """Forget log entries of groups gone for longer than `max_age_s` (as Alertmanager's
        notification log retention)."""
        for k in [
            k
            for k, e in self.log.items()
            if now - e.at > max_age_s and k.rsplit("|", 1)[0] not in self.groups
        ]:
            del self.log[k]
            self.dirty.discard("log:" + k)
            self.removed.add("log:" + k)

    # --- persistence -----------------------------------------------------------------------

    @staticmethod
    def group_json(g: Group) -> dict[str, Any]:
        return {
            "key": g.key,
            "tenant": g.tenant,
            "route": g.route.model_dump(),
            "labels": g.labels,
            "next_flush": g.next_flush,
            "alerts": [_alert_json(a) for a in g.alerts.values()],
        }

    def changes(self) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """Rows to write (groups by key, log entries as "log:" + key) and to delete since
        the last call."""
        out: list[tuple[str, dict[str, Any]]] = []
        for k in self.dirty:
            if k.startswith("log:"):
                e = self.log.get(k[4:])
                if e is not None:
                    out.append((k, asdict(e)))
            elif k in self.groups:
                out.append((k, self.group_json(self.groups[k])))
        gone = sorted(self.removed)
        self.dirty.clear()
        self.removed.clear()
        return out, gone

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": [self.group_json(g) for g in self.groups.values()],
            "log": {k: asdict(v) for k, v in self.log.items()},
        }

    def load_rows(self, rows: list[tuple[str, dict[str, Any]]], now: float) -> None:
        self.load(
            {
                "groups": [b for k, b in rows if not k.startswith("log:")],
                "log": {k[4:]: b for k, b in rows if k.startswith("log:")},
            },
            now,
        )

    def load(self, d: dict[str, Any], now: float) -> None:
        """Saved groups come back with their alerts; a group whose flush was due while the
        service was down flushes now (the log decides whether anything is sent)."""
        self.groups = {}
        for gd in d.get("groups", []):
            g = Group(
                gd["key"],
                gd["tenant"],
                ResolvedRoute.model_validate(gd["route"], context=STORED),
                gd["labels"],
                min(gd["next_flush"], now + 1.0) if gd["next_flush"] < now else gd["next_flush"],
                {a["fingerprint"]: GroupAlert(**a) for a in gd["alerts"]},
            )
            self.groups[g.key] = g
        self.log = {k: LogEntry(**v) for k, v in d.get("log", {}).items()}
        self.dirty.clear()
        self.removed.clear()
