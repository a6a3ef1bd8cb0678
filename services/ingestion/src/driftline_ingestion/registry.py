"""The model registry: models, versions, feature schemas, monitoring configs and reference
profiles, per tenant. Every change is written with its `driftline.registry.v1` event and
its audit record in one transaction (outbox), then relayed to Kafka."""

from __future__ import annotations

import time
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import ValidationError

from driftline_core.auth import Principal
from driftline_core.db.outbox import Outbox
from driftline_core.db.pool import HasPool
from driftline_core.errors import DriftlineError, NotFoundError
from driftline_core.events import AuditRecord, RegistryChange, Resource
from driftline_core.events.features import FeatureSchema, MonitoringConfig, monitoring_problems
from driftline_core.events.registry import ClassContract, RegistryChangeKind
from driftline_stats.detector import FeatureReference

from .validation import CompiledSchema


def compact_references(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """What drift detection needs of a profile, small enough for the registry topic."""
    return [
        FeatureReference.from_profile(name, body).to_dict()
        for name, body in profile["features"].items()
        if body["kind"] in ("numeric", "categorical", "boolean") and body.get("count")
    ]


__all__ = [
    "ConflictError",
    "InvalidModelError",
    "Registry",
    "SegregationError",
    "check_model",
    "learnt_contract",
    "with_positive_from_monitoring",
]

Stage = Literal["staging", "production", "archived"]


class ConflictError(DriftlineError):
    code = "conflict"


class SegregationError(DriftlineError):
    code = "segregation_of_duties"


class InvalidModelError(DriftlineError):
    """A schema, monitoring config or class contract that does not fit the model (422)."""

    code = "invalid_model"


def check_model(
    task: str,
    schema: FeatureSchema,
    monitoring: MonitoringConfig,
    classes: ClassContract | None,
) -> list[tuple[str, str]]:
    """(field, message) for everything the detector or the label join could not run."""
    problems = monitoring_problems(monitoring, {f.name: f.kind for f in schema.features}, task)
    if classes is not None and task != "classification":
        problems.append(("classes", "only a classification model has classes"))
    if (
        classes is not None
        and monitoring.positive_class is not None
        and monitoring.positive_class != classes.positive_class
    ):
        problems.append(
            (
                "monitoring.positive_class",
                f"{monitoring.positive_class!r} contradicts classes.positive_class "
                f"{classes.positive_class!r}",
            )
        )
    return problems


def learnt_contract(
    labels: list[str] | None, positive_class: str | None, model: dict[str, Any]
) -> ClassContract | None:
    """The class contract a reference's label column teaches a classifier that has none:
    None if the model has one already, is a regression, or the file has no labels. A
    binary task's positive class is the one named (`?positive_class=`, or the monitoring
    config's), else "1" of 0/1 labels or "true" of booleans, as scikit-learn's
    `pos_label=1`; any other pair must be named, never guessed."""
    if labels is None or model["task"] != "classification" or model.get("classes"):
        return None
    if len(labels) < 2:
        raise InvalidModelError(
            f"the reference's label column has one class only ({labels[0]!r}): "
            "declare the classes with PUT /v1/models/{id}/classes"
        )
    positive = positive_class or (model.get("monitoring") or {}).get("positive_class")
    if positive is None and len(labels) == 2:
        positive = {("0", "1"): "1", ("false", "true"): "true"}.get((labels[0], labels[1]))
        if positive is None:
            raise InvalidModelError(
                f"positive_class: the reference's labels are {labels[0]!r} and {labels[1]!r}; "
                "say which is the positive class (?positive_class=...)"
            )
    try:
        return ClassContract(classes=labels, positive_class=positive, source="reference")
    except ValueError as e:
        raise InvalidModelError(f"classes learnt from the reference: {e}") from e


def with_positive_from_monitoring(data: Any) -> Any:
    """A registration's `classes` without a positive class takes the monitoring config's
    `positive_class` (the older place to say it)."""
    if isinstance(data, dict) and isinstance(data.get("classes"), dict):
        mon = data.get("monitoring")
        positive = mon.get("positive_class") if isinstance(mon, dict) else None
        if positive is not None and data["classes"].get("positive_class") is None:
            data = {**data, "classes": {**data["classes"], "positive_class": positive}}
    return data


def _stored_monitoring(raw: str) -> MonitoringConfig:
    """A stored monitoring config; one an older version accepted and this one refuses (a
    count window) is checked as the defaults, so changing the schema is not blocked by it."""
    try:
        return MonitoringConfig.model_validate_json(raw)
    except ValidationError:
        return MonitoringConfig()


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise InvalidModelError("; ".join(f"{field}: {msg}" for field, msg in problems))


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


def _model_row(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "task": r["task"],
        "description": r["description"],
        "feature_schema": orjson.loads(r["feature_schema"]),
        "monitoring": orjson.loads(r["monitoring"]),
        "classes": orjson.loads(r["classes"]) if r["classes"] is not None else None,
        "created_by": r["created_by"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
    }


def _version_row(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    out["metadata"] = orjson.loads(out["metadata"])
    out.pop("tenant_id", None)
    return out


class Registry:
    def __init__(self, db: HasPool, outbox: Outbox, schema_cache_ttl_s: float = 2.0):
        self._db = db
        self._outbox = outbox
        self._ttl = schema_cache_ttl_s
        self._schemas: dict[tuple[str, str], tuple[float, CompiledSchema | None]] = {}

    # --- reads ---------------------------------------------------------------------------

    async def compiled_schema(self, tenant_id: str, model_id: str) -> CompiledSchema | None:
        """The model's validator, cached briefly; None if the tenant has no such model."""
        now = time.monotonic()
        hit = self._schemas.get((tenant_id, model_id))
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        row = await self._db.pool.fetchrow(
            "SELECT feature_schema, task, classes FROM models "
            "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            tenant_id,
            model_id,
        )
        compiled = (
            None
            if row is None
            else CompiledSchema(
                FeatureSchema.model_validate_json(row["feature_schema"]),
                row["task"],
                ClassContract.model_validate_json(row["classes"]) if row["classes"] else None,
            )
        )
        if len(self._schemas) > 10_000:
            self._schemas.clear()
        self._schemas[(tenant_id, model_id)] = (now, compiled)
        return compiled

    async def get_model(self, tenant_id: str, model_id: str) -> dict[str, Any]:
        row = await self._db.pool.fetchrow(
            "SELECT * FROM models WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            tenant_id,
            model_id,
        )
        if row is None:
            raise NotFoundError(f"model {model_id!r} not found")
        return _model_row(row)

    async def list_models(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self._db.pool.fetch(
            "SELECT * FROM models WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id",
            tenant_id,
        )
        return [_model_row(r) for r in rows]

    async def list_versions(self, tenant_id: str, model_id: str) -> list[dict[str, Any]]:
        await self.get_model(tenant_id, model_id)
        rows = await self._db.pool.fetch(
            "SELECT * FROM model_versions WHERE tenant_id = $1 AND model_id = $2 "
            "ORDER BY submitted_at",
            tenant_id,
            model_id,
        )
        return [_version_row(r) for r in rows]

    async def latest_profile(
        self, tenant_id: str, model_id: str, version: int | None = None
    ) -> dict[str, Any]:
        await self.get_model(tenant_id, model_id)
        row = await self._db.pool.fetchrow(
            "SELECT * FROM reference_profiles WHERE tenant_id = $1 AND model_id = $2 "
            "AND ($3::int IS NULL OR version = $3) ORDER BY version DESC LIMIT 1",
            tenant_id,
            model_id,
            version,
        )
        if row is None:
            raise NotFoundError(f"model {model_id!r} has no reference profile")
        return {
            "version": row["version"],
            "rows": row["rows"],
            "source": orjson.loads(row["source"]),
            "profile": orjson.loads(row["profile"]),
            "created_by": row["created_by"],
            "created_at": row["created_at"],
        }

    # --- changes -------------------------------------------------------------------------

    async def create_model(
        self,
        who: Principal,
        model_id: str,
        name: str,
        task: str,
        description: str,
        schema: FeatureSchema,
        monitoring: MonitoringConfig,
        classes: ClassContract | None = None,
    ) -> dict[str, Any]:
        _refuse(check_model(task, schema, monitoring, classes))
        async with self._db.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    "INSERT INTO models (tenant_id, id, name, task, description, feature_schema,"
                    " monitoring, created_by, classes) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                    "RETURNING *",
                    who.tenant_id,
                    model_id,
                    name,
                    task,
                    description,
                    schema.model_dump_json(),
                    monitoring.model_dump_json(),
                    who.actor_id,
                    classes.model_dump_json() if classes else None,
                )
            except asyncpg.UniqueViolationError as e:
                raise ConflictError(f"model {model_id!r} already exists") from e
            await self._announce(
                conn,
                who,
                "model_registered",
                model_id,
                None,
                {
                    "name": name,
                    "task": task,
                    "feature_schema": schema.model_dump(mode="json"),
                    "monitoring": monitoring.model_dump(mode="json"),
                    **({"classes": classes.model_dump(mode="json")} if classes else {}),
                },
            )
        return _model_row(row)

    async def update_model(
        self,
        who: Principal,
        model_id: str,
        *,
        schema: FeatureSchema | None = None,
        monitoring: MonitoringConfig | None = None,
        classes: ClassContract | None = None,
    ) -> dict[str, Any]:
        async with self._db.pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(
                "SELECT * FROM models WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL "
                "FOR UPDATE",
                who.tenant_id,
                model_id,
            )
            if current is None:
                raise NotFoundError(f"model {model_id!r} not found")
            _refuse(
                check_model(
                    current["task"],
                    schema or FeatureSchema.model_validate_json(current["feature_schema"]),
                    monitoring or _stored_monitoring(current["monitoring"]),
                    classes
                    or (
                        ClassContract.model_validate_json(current["classes"])
                        if current["classes"]
                        else None
                    ),
                )
            )
            row = await conn.fetchrow(
                "UPDATE models SET feature_schema = coalesce($3, feature_schema),"
                " monitoring = coalesce($4, monitoring), classes = coalesce($5, classes),"
                " updated_at = now() "
                "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *",
                who.tenant_id,
                model_id,
                schema.model_dump_json() if schema else None,
                monitoring.model_dump_json() if monitoring else None,
                classes.model_dump_json() if classes else None,
            )
            if row is None:
                raise NotFoundError(f"model {model_id!r} not found")
            if schema is not None:
                await self._announce(
                    conn,
                    who,
                    "schema_changed",
                    model_id,
                    None,
                    {"feature_schema": schema.model_dump(mode="json")},
                )
            if monitoring is not None:
                await self._announce(
                    conn,
                    who,
                    "monitoring_config_changed",
                    model_id,
                    None,
                    {"monitoring": monitoring.model_dump(mode="json")},
                )
            if classes is not None:
                await self._announce(
                    conn,
                    who,
                    "model_updated",
                    model_id,
                    None,
                    {"classes": classes.model_dump(mode="json")},
                )
        self._schemas.pop((who.tenant_id, model_id), None)
        return _model_row(row)

    async def delete_model(self, who: Principal, model_id: str) -> None:
        async with self._db.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE models SET deleted_at = now() "
                "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                who.tenant_id,
                model_id,
            )
            if done.endswith(" 0"):
                raise NotFoundError(f"model {model_id!r} not found")
            await self._announce(conn, who, "model_deleted", model_id, None, {})
        self._schemas.pop((who.tenant_id, model_id), None)

    async def add_version(
        self,
        who: Principal,
        model_id: str,
        version: str,
        artifact_uri: str,
        artifact_sha256: str,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        await self.get_model(who.tenant_id, model_id)
        async with self._db.pool.acquire() as conn, conn.transaction():
            try:
                row = await conn.fetchrow(
                    "INSERT INTO model_versions (tenant_id, model_id, version, artifact_uri,"
                    " artifact_sha256, metadata, submitted_by) VALUES ($1,$2,$3,$4,$5,$6,$7) "
                    "RETURNING *",
                    who.tenant_id,
                    model_id,
                    version,
                    artifact_uri,
                    artifact_sha256,
                    _json(metadata),
                    who.actor_id,
                )
            except asyncpg.UniqueViolationError as e:
                raise ConflictError(f"version {version!r} of {model_id!r} exists") from e
            await self._announce(
                conn,
                who,
                "version_registered",
                model_id,
                version,
                # metadata carries the validation evidence compliance reports quote
                {
                    "artifact_uri": artifact_uri,
                    "artifact_sha256": artifact_sha256,
                    "metadata": metadata,
                },
            )
        return _version_row(row)

    async def approve_version(
        self, who: Principal, model_id: str, version: str, comment: str
    ) -> dict[str, Any]:
        async with self._db.pool.acquire() as conn, conn.transaction():
            current = await self._version_for_update(conn, who.tenant_id, model_id, version)
            if current["submitted_by"] == who.actor_id:
                raise SegregationError(
                    f"{who.actor_id} submitted version {version} and may not approve it"
                )
            if current["approved_by"] is not None:
                raise ConflictError(f"version {version} was approved by {current['approved_by']}")
            row = await conn.fetchrow(
                "UPDATE model_versions SET approved_by = $4, approved_at = now(),"
                " approval_comment = $5 WHERE tenant_id = $1 AND model_id = $2 AND version = $3 "
                "RETURNING *",
                who.tenant_id,
                model_id,
                version,
                who.actor_id,
                comment,
            )
            await self._announce(
                conn,
                who,
                "version_approved",
                model_id,
                version,
                {
                    "approved_by": who.actor_id,
                    "submitted_by": current["submitted_by"],
                    "comment": comment,
                    "meaning": "approved for production use",
                },
            )
        return _version_row(row)

    async def set_stage(
        self, who: Principal, model_id: str, version: str, stage: Stage
    ) -> dict[str, Any]:
        async with self._db.pool.acquire() as conn, conn.transaction():
            current = await self._version_for_update(conn, who.tenant_id, model_id, version)
            if stage == "production" and current["approved_by"] is None:
                raise ConflictError(f"version {version} must be approved before production")
            row = await conn.fetchrow(
                "UPDATE model_versions SET stage = $4 WHERE tenant_id = $1 AND model_id = $2 "
                "AND version = $3 RETURNING *",
                who.tenant_id,
                model_id,
                version,
                stage,
            )
            await self._announce(
                conn,
                who,
                "version_stage_changed",
                model_id,
                version,
                {"from": current["stage"], "to": stage},
            )
        return _version_row(row)

    async def save_profile(
        self,
        who: Principal,
        model_id: str,
        profile: dict[str, Any],
        source: dict[str, Any],
        learnt: ClassContract | None = None,
    ) -> dict[str, Any]:
        """Store a reference profile. `learnt` is the class contract read from its label
        column: stored (and announced) only if the model has none yet; learnt once."""
        await self.get_model(who.tenant_id, model_id)
        async with self._db.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"profile:{who.tenant_id}:{model_id}"
            )
            classes = None
            if learnt is not None:
                classes = await conn.fetchval(
                    "UPDATE models SET classes = $3, updated_at = now() WHERE tenant_id = $1 "
                    "AND id = $2 AND deleted_at IS NULL AND classes IS NULL RETURNING classes",
                    who.tenant_id,
                    model_id,
                    learnt.model_dump_json(),
                )
            version = await conn.fetchval(
                "SELECT coalesce(max(version), 0) + 1 FROM reference_profiles "
                "WHERE tenant_id = $1 AND model_id = $2",
                who.tenant_id,
                model_id,
            )
            await conn.execute(
                "INSERT INTO reference_profiles (tenant_id, model_id, version, source, rows,"
                " profile, created_by) VALUES ($1,$2,$3,$4,$5,$6,$7)",
                who.tenant_id,
                model_id,
                version,
                _json(source),
                profile["rows"],
                _json(profile),
                who.actor_id,
            )
            await self._announce(
                conn,
                who,
                "reference_profile_updated",
                model_id,
                None,
                {
                    "profile_version": version,
                    "rows": profile["rows"],
                    "source": source,
                    "references": compact_references(profile),
                    "multivariate": profile.get("multivariate"),
                    **({"classes": orjson.loads(classes)} if classes else {}),
                },
            )
        self._schemas.pop((who.tenant_id, model_id), None)
        out: dict[str, Any] = {"version": version, "rows": profile["rows"], "source": source}
        if classes:
            out["classes_learnt"] = orjson.loads(classes)
        return out

    # --- internals -----------------------------------------------------------------------

    async def _version_for_update(
        self, conn: asyncpg.Connection, tenant_id: str, model_id: str, version: str
    ) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT v.* FROM model_versions v JOIN models m ON m.tenant_id = v.tenant_id "
            "AND m.id = v.model_id AND m.deleted_at IS NULL WHERE v.tenant_id = $1 AND "
            "v.model_id = $2 AND v.version = $3 FOR UPDATE OF v",
            tenant_id,
            model_id,
            version,
        )
        if row is None:
            raise NotFoundError(f"version {version!r} of model {model_id!r} not found")
        return row

    async def _announce(
        self,
        conn: asyncpg.Connection,
        who: Principal,
        change: RegistryChangeKind,
        model_id: str,
        version: str | None,
        details: dict[str, Any],
    ) -> None:
        event = RegistryChange(
            tenant_id=who.tenant_id,
            model_id=model_id,
            model_version=version,
            change=change,
            actor=who.actor_id,
            details=details,
        )
        audit = AuditRecord(
            tenant_id=who.tenant_id,
            service="ingestion",
            actor=who.actor(),
            action=f"registry.{change}",
            resource=Resource(
                type="model_version" if version else "model",
                id=f"{model_id}@{version}" if version else model_id,
            ),
            details={"registry_event_id": str(event.event_id)},
        )
        await Outbox.add(conn, [event, audit])
