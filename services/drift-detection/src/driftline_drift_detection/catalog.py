"""What drift detection knows of each model: task, feature names, monitoring config,
references and the PCA reference, kept in its own schema from `driftline.registry.v1` (it
never reads the registry's tables). Any change that carries one of them (registration,
`schema_changed`, `monitoring_config_changed`, `reference_profile_updated`) rebuilds the
model's detector; a feature dropped from the schema stops being tested at once."""

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
from driftline_stats.multivariate import PCAReference
from driftline_stats.profile import PREDICTION

__all__ = ["ModelCatalog", "Monitored"]

log = logging.getLogger(__name__)


@dataclass
class Monitored:
    monitoring: MonitoringConfig
    refs: list[FeatureReference]
    detector: Detector
    task: str | None = None
    pca: PCAReference | None = None


class ModelCatalog:
    def __init__(self, db: HasPool, family_alpha: float) -> None:
        self._db = db
        self._alpha = family_alpha
        self.models: dict[tuple[str, str], Monitored] = {}

    def _build(self, r: Any) -> Monitored:
        cfg = MonitoringConfig.model_validate(orjson.loads(r["monitoring"]) or {})
        names = set(orjson.loads(r["features"])) if r["features"] is not None else None
        references = [
            FeatureReference.from_dict(d)
            for d in orjson.loads(r["references_"])
            if names is None or d["name"] in names or d["name"] == PREDICTION
        ]
        tests: dict[str, Test] = {n: t.test for n, t in cfg.features.items() if t.test != "auto"}
        fixed = {n: t.threshold for n, t in cfg.features.items() if t.threshold}
        if cfg.prediction.test != "auto":
            tests[PREDICTION] = cfg.prediction.test
        if cfg.prediction.threshold:
            fixed[PREDICTION] = cfg.prediction.threshold
        pca = None
        if r["multivariate"] is not None:
            pca = PCAReference.from_dict(orjson.loads(r["multivariate"]))
            if names is not None and not set(pca.features) <= names:
                pca = None  # fitted on features the schema no longer has
        return Monitored(
            cfg,
            references,
            Detector(references, family_alpha=self._alpha, tests=tests, thresholds=fixed),
            r["task"],
            pca,
        )

    async def load(self) -> None:
        rows = await self._db.pool.fetch(
            "SELECT tenant_id, model_id, task, features, monitoring, references_, multivariate"
            " FROM models WHERE references_ IS NOT NULL"
        )
        for r in rows:
            self.models[(r["tenant_id"], r["model_id"])] = self._build(r)

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
            d = ev.details
            monitoring, refs = d.get("monitoring"), d.get("references")
            schema = d.get("feature_schema")
            features = [f["name"] for f in schema["features"]] if schema else None
            if monitoring is None and refs is None and features is None and "task" not in d:
                continue

            def js(v: Any) -> str | None:
                return orjson.dumps(v).decode() if v is not None else None

            row = await self._db.pool.fetchrow(
                "INSERT INTO models (tenant_id, model_id, monitoring, references_, "
                "profile_version, task, features, multivariate) VALUES ($1, $2, "
                "coalesce($3::jsonb, '{}'), $4::jsonb, $5, $6, $7::jsonb, $8::jsonb) "
                "ON CONFLICT (tenant_id, model_id) DO UPDATE SET "
                "monitoring = coalesce($3::jsonb, models.monitoring), "
                "references_ = coalesce($4::jsonb, models.references_), "
                "profile_version = coalesce($5, models.profile_version), "
                "task = coalesce($6, models.task), "
                "features = coalesce($7::jsonb, models.features), "
                "multivariate = CASE WHEN $4::jsonb IS NULL THEN models.multivariate "
                "ELSE $8::jsonb END, updated_at = now() "
                "RETURNING task, features, monitoring, references_, multivariate",
                *key,
                js(monitoring),
                js(refs),
                d.get("profile_version"),
                d.get("task"),
                js(features),
                js(d.get("multivariate")),
            )
            if row["references_"] is not None:
                self.models[key] = self._build(row)
                log.info(
                    "model monitored",
                    extra={"tenant": key[0], "model": key[1], "change": ev.change},
                )
