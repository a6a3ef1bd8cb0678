"""What drift detection knows of each model: monitoring config and references, kept in its
own schema from `driftline.registry.v1` (it never reads the registry's tables)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from driftline_core.db.pool import HasPool
from driftline_core.events import RegistryChange
from driftline_core.events.features import MonitoringConfig
from driftline_core.kafka import Message
from driftline_stats.detector import Detector, FeatureReference, Test

__all__ = ["ModelCatalog", "Monitored"]

log = logging.getLogger(__name__)


@dataclass
class Monitored:
    monitoring: MonitoringConfig
    refs: list[FeatureReference]
    detector: Detector


class ModelCatalog:
    def __init__(self, db: HasPool, family_alpha: float) -> None:
        self._db = db
        self._alpha = family_alpha
        self.models: dict[tuple[str, str], Monitored] = {}

    def _build(self, monitoring: dict[str, Any], refs: list[dict[str, Any]]) -> Monitored:
        cfg = MonitoringConfig.model_validate(monitoring or {})
        references = [FeatureReference.from_dict(r) for r in refs]
        tests: dict[str, Test] = {n: t.test for n, t in cfg.features.items() if t.test != "auto"}
        fixed = {n: t.threshold for n, t in cfg.features.items() if t.threshold}
        return Monitored(
            cfg,
            references,
            Detector(references, family_alpha=self._alpha, tests=tests, thresholds=fixed),
        )

    async def load(self) -> None:
        rows = await self._db.pool.fetch(
            "SELECT tenant_id, model_id, monitoring, references_ FROM models "
            "WHERE references_ IS NOT NULL"
        )
        for r in rows:
            self.models[(r["tenant_id"], r["model_id"])] = self._build(
                orjson.loads(r["monitoring"]), orjson.loads(r["references_"])
            )

    async def handle(self, batch: list[Message[RegistryChange]]) -> None:
        for m in batch:
            ev = m.value
            key = (ev.tenant_id, ev.model_id)
            if ev.change == "model_deleted":
                await self._db.pool.execute(
                    "DELETE FROM models WHERE tenant_id = $1 AND model_id = $2", *key
                )
                self.models.pop(key, None)
                continue
            monitoring = ev.details.get("monitoring")
            refs = ev.details.get("references")
            if monitoring is None and refs is None:
                continue
            row = await self._db.pool.fetchrow(
                "INSERT INTO models (tenant_id, model_id, monitoring, references_, "
                "profile_version) VALUES ($1, $2, coalesce($3::jsonb, '{}'), $4::jsonb, $5) "
                "ON CONFLICT (tenant_id, model_id) DO UPDATE SET "
                "monitoring = coalesce($3::jsonb, models.monitoring), "
                "references_ = coalesce($4::jsonb, models.references_), "
                "profile_version = coalesce($5, models.profile_version), updated_at = now() "
                "RETURNING monitoring, references_",
                *key,
                orjson.dumps(monitoring).decode() if monitoring is not None else None,
                orjson.dumps(refs).decode() if refs is not None else None,
                ev.details.get("profile_version"),
            )
            if row["references_"] is not None:
                self.models[key] = self._build(
                    orjson.loads(row["monitoring"]), orjson.loads(row["references_"])
                )
                log.info("model monitored", extra={"tenant": key[0], "model": key[1]})
