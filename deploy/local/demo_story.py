"""The demo's last word on drift: for each drift the demo planted, the window it started in,
the window Driftline flagged it, and the alert that reached the webhook (or why none did:
not fired, or hidden by an inhibition rule, named)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from driftline_core.events import AlertEvent, DriftResult, PerformanceResult

__all__ = ["Finding", "Planted", "inhibited_by", "planted_vs_found", "show"]

LABEL = "label"  # the feature name of a label shift: found as concept drift


class Planted(Protocol):
    name: str
    feature: str
    start: float  # share of the stream (0..1) at which it begins


@dataclass(frozen=True)
class Finding:
    drift: str
    feature: str
    planted: datetime  # start of the window the drift began in
    flagged: datetime | None  # start of the first window it was flagged in, from then on
    early: int  # windows flagged before it was planted (false alarms)
    alert: str  # what reached the webhook, or why nothing did
    delivered: bool


def _matcher(m: str) -> tuple[str, str, str]:
    found = re.fullmatch(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*', m)
    if not found:
        raise ValueError(f"not a matcher: {m!r}")
    return found.group(1), found.group(2), found.group(3)


def _matches(labels: dict[str, str], matchers: Iterable[str]) -> bool:
    for m in matchers:
        name, op, value = _matcher(m)
        v = labels.get(name, "")
        ok = {
            "=": v == value,
            "!=": v != value,
            "=~": re.fullmatch(value, v) is not None,
            "!~": re.fullmatch(value, v) is None,
        }[op]
        if not ok:
            return False
    return True


def inhibited_by(
    labels: dict[str, str], firing: Iterable[dict[str, str]], rules: Sequence[dict[str, Any]]
) -> str | None:
    """The alertname of a firing alert that inhibits this one under the rules, if any."""
    for rule in rules:
        if not _matches(labels, rule.get("target_matchers", [])):
            continue
        for src in firing:
            if src is labels or src == labels:
                continue
            if _matches(src, rule.get("source_matchers", [])) and all(
                src.get(k, "") == labels.get(k, "") for k in rule.get("equal", [])
            ):
                return src.get("alertname", "?")
    return None


def _longest_run(flags: Iterable[bool]) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def _window_start(t: float, length: float) -> datetime:
    return datetime.fromtimestamp(t // length * length, UTC)


def planted_vs_found(
    drifts: Sequence[Planted],
    *,
    stream_start: float,
    seconds: float,
    results: Sequence[DriftResult],
    concept: Sequence[PerformanceResult],
    alerts: Sequence[AlertEvent],
    received: Sequence[dict[str, Any]],
    inhibit_rules: Sequence[dict[str, Any]],
    active: Sequence[dict[str, Any]] = (),
    for_windows: int = 2,
) -> list[Finding]:
    """`active`: the alerts firing now (alerting's `GET /v1/alerts`), to tell an alert still
    firing from an earlier run (not notified again) from one that never fired.
    `for_windows`: the drifted windows running the FeatureDrift rule needs (the default
    rule's 2), to say why a flagged feature raised no alert."""
    whole = sorted((r for r in results if not r.segment), key=lambda r: r.window.start)
    length = (whole[0].window.end - whole[0].window.start).total_seconds() if whole else seconds
    firing = [a for a in alerts if a.kind == "firing"]
    notified: dict[tuple[str, str], str] = {}  # (alertname, feature) -> webhook id
    for hit in received:
        for a in hit["payload"]["alerts"]:
            lab = a["labels"]
            if a["status"] == "firing" and "segment" not in lab:
                notified.setdefault((lab.get("alertname", ""), lab.get("feature", "")), hit["id"])
    out = []
    for d in drifts:
        t = stream_start + d.start * seconds
        planted = _window_start(t, length)
        streak = 0
        if d.feature == LABEL:
            name, feature = "ConceptDrift", ""
            times = sorted(c.occurred_at.timestamp() for c in concept)
            after = [x for x in times if x >= planted.timestamp()]
            flagged = _window_start(after[0], length) if after else None
            early = len({_window_start(x, length) for x in times if x < planted.timestamp()})
        else:
            name, feature = "FeatureDrift", d.feature
            hits = [
                r.window.start
                for r in whole
                if any(f.feature == d.feature and f.drifted for f in r.features)
            ]
            flagged = next((w for w in hits if w >= planted), None)
            early = sum(1 for w in hits if w < planted)
            streak = _longest_run([r.window.start in set(hits) for r in whole])
        if (name, feature) in notified:
            alert, delivered = f"{name} {notified[(name, feature)][:12]}", True
        else:
            mine = [
                a
                for a in firing
                if a.labels.get("alertname") == name
                and a.labels.get("feature", "") == feature
                and "segment" not in a.labels
            ]
            delivered = False
            before = [
                a
                for a in active
                if a.get("status") == "firing"
                and a["labels"].get("alertname") == name
                and a["labels"].get("feature", "") == feature
                and "segment" not in a["labels"]
                and datetime.fromisoformat(a["starts_at"]).timestamp() < stream_start
            ]
            if not mine and before:
                since = datetime.fromisoformat(before[0]["starts_at"]).astimezone(UTC)
                alert = f"{name} firing since {since:%H:%M:%S} (an earlier run): not sent again"
                delivered = True
            elif not mine and name == "FeatureDrift" and 0 < streak < for_windows:
                alert = (
                    f"no {name}: flagged {streak} window(s) running, the rule needs {for_windows}"
                )
            elif not mine:
                alert = f"no {name} alert fired"
            else:
                by = inhibited_by(mine[0].labels, [a.labels for a in firing], inhibit_rules)
                alert = (
                    f"{name} fired, hidden by inhibition: {by} was firing"
                    if by
                    else f"{name} fired, but no notification reached the webhook"
                )
        out.append(Finding(d.name, d.feature, planted, flagged, early, alert, delivered))
    return out


def show(console: Console, findings: Sequence[Finding]) -> None:
    table = Table(title="Planted vs found (whole population, windows by start time)")
    for col in ("planted drift", "feature", "started", "flagged", "alert at the webhook"):
        table.add_column(col)
    for f in findings:
        if f.flagged is None:
            found = "[red]not flagged"
        else:
            late = round((f.flagged - f.planted).total_seconds())
            found = f"{f.flagged:%H:%M:%S}" + (f" (+{late} s)" if late else " (same)")
        if f.early:
            found += f"\n[yellow]+{f.early} window(s) before"
        table.add_row(
            f.drift,
            f.feature if f.feature != LABEL else "labels",
            f"{f.planted:%H:%M:%S}",
            found,
            f.alert if f.delivered else f"[yellow]{f.alert}",
        )
    console.print(table)
    hidden = [f for f in findings if "inhibition" in f.alert]
    if hidden:
        console.print(
            "[yellow]An inhibition rule hid "
            + ", ".join(f.feature for f in hidden)
            + ": the alerts fired (driftline.alerts.v1) but were not notified."
        )
