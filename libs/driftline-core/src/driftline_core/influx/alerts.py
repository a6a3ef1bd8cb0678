"""Alert transitions as an InfluxDB series, for the dashboards' alerts timeline and
open-alert counts (docs/metrics.md): measurement `alert`, tags tenant, model, version, rule,
severity, status (and feature, segment when the alert has them); fields `firing` (1 firing,
0 resolved), `delta` (+1 firing, -1 resolved: their sum over a range that covers the
alerts' start is how many are open), `value`. One point per transition at the time it
happened; the fingerprint is a field, never a tag."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from influxdb_client.client.write.point import Point

from .writer import InfluxWriter

__all__ = ["AlertSeries"]


class AlertSeries:
    def __init__(self, writer: InfluxWriter) -> None:
        self.writer = writer

    async def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        self.writer.close()

    @staticmethod
    def point(a: Any) -> Point:
        firing = a.status == "firing"
        at = a.starts_at if firing or not a.ends_at else a.ends_at
        p = Point("alert").tag("tenant", a.tenant_id).tag("model", a.labels.get("model", ""))
        for name in ("version", "feature", "segment"):
            if a.labels.get(name):
                p = p.tag(name, a.labels[name])
        return (  # type: ignore[no-any-return]
            p.tag("rule", a.rule.id)
            .tag("severity", a.rule.severity)
            .tag("status", a.status)
            .field("firing", int(firing))
            .field("delta", 1 if firing else -1)
            .field("value", float(a.value))
            .field("fingerprint", a.fingerprint)
            .time(int(at * 1e9))
        )

    def record(self, alerts: Iterable[Any]) -> None:
        """Queue the transitions (batched by the writer; refused points are spooled)."""
        points = [self.point(a) for a in alerts]
        if points:
            self.writer.write(points)
