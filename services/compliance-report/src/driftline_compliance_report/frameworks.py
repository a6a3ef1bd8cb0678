"""From evidence to a report: pure functions of what was collected (no I/O), one per
framework, sharing the registry's history, the alerts' lifecycle and the monitoring summary.

Segregation-of-duties rules (SOX), each a `Violation`:
- approver-is-submitter: a version was approved by the user who submitted it (the registry
  refuses this; a record of it means a bypass, a legacy import or a forged event);
- submitter-promoted-to-production: the submitter moved their own version to production;
- self-role-change: a user changed their own role.

Model-version validation evidence is read from the version's metadata:
`{"validation": {"dataset": "...", "metrics": {"auc": 0.91}, "gates": {"auc": {"min": 0.85}}}}`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .history import History, ModelHistory
from .model import (
    AccessChange,
    AlertRecord,
    Approval,
    Change,
    Erasure,
    FeatureDriftCount,
    Gate,
    Integrity,
    KeyStatus,
    ModelMonitoring,
    ModelVersion,
    PersonalDataAccess,
    ProcessingRecord,
    Report,
    Retention,
    Violation,
)

__all__ = [
    "ACCESS_CHANGE_PREFIXES",
    "PERSONAL_DATA_READS",
    "TITLES",
    "Inputs",
    "build_report",
]

TITLES = {
    "gdpr": "GDPR record of processing and data-protection report",
    "sox": "SOX model change-management and access report",
    "fda": "FDA 21 CFR Part 11 / GMLP model validation and monitoring report",
    "model_card": "Model card: production life",
}
# reads of records that hold personal data (actors, addresses, payloads)
PERSONAL_DATA_READS = frozenset(
    {"audit.query", "audit.export", "report.download", "user.list", "session.list"}
)
ACCESS_CHANGE_PREFIXES = ("user.", "api_key.", "session.revoke")


@dataclass
class Inputs:
    report_id: str
    tenant_id: str
    framework: str
    start: datetime
    end: datetime
    generated_at: datetime
    generated_by: str
    model_id: str | None = None
    registry: list[dict[str, Any]] = field(default_factory=list)  # every change before `end`
    audit: list[dict[str, Any]] = field(default_factory=list)  # audit records in the period
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert events before `end`
    history: History = field(default_factory=dict)
    integrity: Integrity = field(default_factory=lambda: Integrity(status="unavailable"))
    key_versions: list[dict[str, Any]] = field(default_factory=list)
    retention_facts: list[dict[str, Any]] = field(default_factory=list)  # before `end`
    counts: dict[str, int] = field(default_factory=dict)
    evidence_complete: bool = True  # the evidence consumer had caught up when collecting


# --- the registry's history ---------------------------------------------------------------


@dataclass
class _Model:
    model_id: str
    name: str = ""
    task: str = ""
    registered_at: datetime | None = None
    registered_by: str = ""
    deleted_at: datetime | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, ModelVersion] = field(default_factory=dict)


def _details(f: dict[str, Any]) -> dict[str, Any]:
    body = f.get("body") or {}
    d: dict[str, Any] = body.get("details") or {}
    return d


def _registry(facts: Iterable[dict[str, Any]]) -> dict[str, _Model]:
    models: dict[str, _Model] = {}
    for f in facts:
        if f.get("body") is None:
            continue  # unreadable: the tenant was erased (counted as shredded, not shown)
        mid, v, d = f["model_id"], f["model_version"], _details(f)
        m = models.setdefault(mid, _Model(mid))
        kind = f["kind"].removeprefix("registry.")
        if kind == "model_registered":
            m.name, m.task = d.get("name", mid), d.get("task", "")
            m.registered_at, m.registered_by = f["occurred_at"], f["actor"]
            m.schema, m.monitoring = d.get("feature_schema", {}), d.get("monitoring", {})
            m.deleted_at = None
        elif kind == "schema_changed":
            m.schema = d.get("feature_schema", m.schema)
        elif kind == "monitoring_config_changed":
            m.monitoring = d.get("monitoring", m.monitoring)
        elif kind == "model_deleted":
            m.deleted_at = f["occurred_at"]
        elif kind == "version_registered" and v:
            m.versions[v] = _version(mid, v, f, d)
        elif kind == "version_approved" and v in m.versions:
            mv = m.versions[v]
            mv.approval = Approval(
                model_id=mid,
                version=v,
                signer=str(d.get("approved_by") or f["actor"]),
                at=f["occurred_at"],
                meaning=str(d.get("meaning") or "approved"),
                comment=str(d.get("comment") or ""),
                submitted_by=str(d.get("submitted_by") or mv.submitted_by),
            )
        elif kind == "version_stage_changed" and v in m.versions:
            mv = m.versions[v]
            mv.stages.append(
                {
                    "at": f["occurred_at"].isoformat(),
                    "by": f["actor"],
                    "from": d.get("from"),
                    "to": d.get("to"),
                }
            )
            mv.stage = str(d.get("to") or mv.stage)
    return models


def _version(mid: str, v: str, f: dict[str, Any], d: dict[str, Any]) -> ModelVersion:
    validation = (d.get("metadata") or {}).get("validation") or {}
    metrics = validation.get("metrics") or {}
    gates: list[Gate] = []
    for metric, rule in sorted((validation.get("gates") or {}).items()):
        value = metrics.get(metric)
        val = float(value) if isinstance(value, int | float) else None
        for op, key in ((">=", "min"), ("<=", "max")):
            if isinstance(rule, dict) and isinstance(rule.get(key), int | float):
                t = float(rule[key])
                met = val is not None and (val >= t if op == ">=" else val <= t)
                gates.append(Gate(metric=metric, op=op, threshold=t, value=val, met=met))
    return ModelVersion(
        model_id=mid,
        version=v,
        submitted_by=f["actor"],
        submitted_at=f["occurred_at"],
        artifact_sha256=str(d.get("artifact_sha256", "")),
        artifact_uri=str(d.get("artifact_uri", "")),
        validation_dataset=validation.get("dataset"),
        gates=gates,
        gates_met=all(g.met for g in gates) if gates else None,
    )


def _in(f: dict[str, Any], i: Inputs) -> bool:
    return bool(i.start <= f["occurred_at"] < i.end)


# --- sections -----------------------------------------------------------------------------


def _processing(models: dict[str, _Model], i: Inputs) -> list[ProcessingRecord]:
    out = []
    for m in sorted(models.values(), key=lambda m: m.model_id):
        if m.registered_at is None or (m.deleted_at is not None and m.deleted_at < i.start):
            continue
        feats = m.schema.get("features") or []
        sensitive = sorted(x["name"] for x in feats if x.get("sensitive"))
        categories: dict[str, int] = defaultdict(int)
        for x in feats:
            categories[str(x.get("kind", "unknown"))] += 1
        protection = {
            n: "encrypted before Kafka (AES-256-GCM, tenant data key); drift on the value's "
            "hash bucket only"
            for n in sensitive
        }
        if len(feats) > len(sensitive):
            protection["other fields"] = "TLS in transit; Kafka retention; profiles aggregate"
        ttl = float(m.monitoring.get("label_ttl_seconds", 7 * 24 * 3600))
        out.append(
            ProcessingRecord(
                model_id=m.model_id,
                name=m.name or m.model_id,
                task=m.task,
                purpose=f"production monitoring of model {m.name or m.model_id}: data drift, "
                "data quality and performance",
                features=len(feats),
                categories=dict(sorted(categories.items())),
                sensitive_fields=sensitive,
                protection=protection,
                label_retention_days=round(ttl / 86400, 3),
                registered_at=m.registered_at,
                registered_by=m.registered_by,
                deleted_at=m.deleted_at,
            )
        )
    return out


def _erasures(i: Inputs) -> list[Erasure]:
    out = []
    for f in i.audit:
        if f["kind"] == "tenant.erase":
            d = _details(f)
            out.append(
                Erasure(
                    at=f["occurred_at"],
                    actor=f["actor"],
                    reason=str(d.get("reason", "")),
                    data_keys_destroyed=int(d.get("data_keys_destroyed", 0)),
                    sessions_revoked=int(d.get("sessions_revoked", 0)),
                    users_disabled=int(d.get("users_disabled", 0)),
                )
            )
    return out


def _personal_access(i: Inputs) -> list[PersonalDataAccess]:
    acc: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in i.audit:
        if f["kind"] in PERSONAL_DATA_READS:
            acc[(f["actor"], f["kind"])].append(f)
    return [
        PersonalDataAccess(
            actor=actor,
            action=action,
            count=len(fs),
            denied=sum(1 for f in fs if f["outcome"] != "success"),
            first=fs[0]["occurred_at"],
            last=fs[-1]["occurred_at"],
        )
        for (actor, action), fs in sorted(acc.items())
    ]


def _retention(i: Inputs) -> Retention:
    policy = [f for f in i.retention_facts if f["kind"] == "audit.retention_set"]
    last = policy[-1] if policy else None
    return Retention(
        audit_retention_days=int(_details(last)["retention_days"])
        if last and "retention_days" in _details(last)
        else None,
        set_at=last["occurred_at"] if last else None,
        set_by=last["actor"] if last else None,
        holds_placed=sum(
            1 for f in i.retention_facts if f["kind"] == "audit.hold_placed" and _in(f, i)
        ),
        holds_released=sum(
            1 for f in i.retention_facts if f["kind"] == "audit.hold_released" and _in(f, i)
        ),
    )


def _keys(i: Inputs) -> KeyStatus:
    live = [k for k in i.key_versions if not k.get("destroyed")]
    return KeyStatus(
        versions=len(i.key_versions),
        current_version=max((int(k["version"]) for k in live), default=None),
        destroyed=len(i.key_versions) - len(live),
        rotations_in_period=[
            {"at": f["occurred_at"].isoformat(), "actor": f["actor"], **_details(f)}
            for f in i.audit
            if f["kind"] in ("data_key.rotate", "data_key.rewrap")
        ],
        kek_ids=sorted({str(k["kek_id"]) for k in live if k.get("kek_id")}),
        unreadable_records_in_period=int(i.counts.get("shredded", 0)),
    )


def _changes(i: Inputs) -> list[Change]:
    out = []
    for f in i.registry:
        if not _in(f, i):
            continue
        d = _details(f)
        detail = ""
        kind = f["kind"].removeprefix("registry.")
        if kind == "version_stage_changed":
            detail = f"{d.get('from')} → {d.get('to')}"
        elif kind == "version_registered":
            detail = f"artifact sha256 {str(d.get('artifact_sha256', ''))[:12]}…"
        elif kind == "version_approved":
            detail = str(d.get("comment", ""))
        out.append(
            Change(
                at=f["occurred_at"],
                actor=f["actor"],
                change=kind,
                model_id=f["model_id"],
                version=f["model_version"],
                detail=detail,
            )
        )
    return out


def _violations(models: dict[str, _Model], i: Inputs) -> list[Violation]:
    out = []
    for f in i.registry:
        if not _in(f, i):
            continue
        kind = f["kind"].removeprefix("registry.")
        m = models.get(f["model_id"])
        mv = m.versions.get(f["model_version"] or "") if m else None
        if mv is None:
            continue
        d = _details(f)
        if kind == "version_approved":
            signer = str(d.get("approved_by") or f["actor"])
            if signer == mv.submitted_by:
                out.append(
                    Violation(
                        rule="approver-is-submitter",
                        at=f["occurred_at"],
                        actor=signer,
                        model_id=mv.model_id,
                        version=mv.version,
                        description=f"{signer} approved version {mv.version} of "
                        f"{mv.model_id}, which they submitted",
                    )
                )
        elif (
            kind == "version_stage_changed"
            and d.get("to") == "production"
            and f["actor"] == mv.submitted_by
        ):
            out.append(
                Violation(
                    rule="submitter-promoted-to-production",
                    at=f["occurred_at"],
                    actor=f["actor"],
                    model_id=mv.model_id,
                    version=mv.version,
                    description=f"{f['actor']} promoted version {mv.version} of "
                    f"{mv.model_id}, which they submitted, to production",
                )
            )
    users = _usernames(i)
    for f in i.audit:
        if f["kind"] == "user.update" and "role" in _details(f):
            target = users.get(f["resource_id"])
            if target is not None and f["actor"] == f"user:{target}":
                out.append(
                    Violation(
                        rule="self-role-change",
                        at=f["occurred_at"],
                        actor=f["actor"],
                        description=f"{f['actor']} changed their own role to {_details(f)['role']}",
                    )
                )
    return sorted(out, key=lambda v: v.at)


def _usernames(i: Inputs) -> dict[str, str]:
    return {
        f["resource_id"]: str(_details(f)["username"])
        for f in [*i.retention_facts, *i.audit]
        if f["kind"] == "user.create" and "username" in _details(f)
    }


def _access_changes(i: Inputs) -> list[AccessChange]:
    out = []
    for f in i.audit:
        if not f["kind"].startswith(ACCESS_CHANGE_PREFIXES):
            continue
        if f["kind"] in PERSONAL_DATA_READS:
            continue
        d = {k: v for k, v in _details(f).items() if k not in ("sessions",)}
        out.append(
            AccessChange(
                at=f["occurred_at"],
                actor=f["actor"],
                action=f["kind"],
                target=f"{f['resource_type']}:{f['resource_id']}",
                outcome=f["outcome"],
                detail=", ".join(f"{k}={v}" for k, v in sorted(d.items())),
            )
        )
    return out


def _alerts(i: Inputs) -> list[AlertRecord]:
    """Alerts that fired before the end and were open at some time in the period; a
    repeated `firing` of an open alert is the same alert."""
    open_: dict[str, AlertRecord] = {}
    seen: list[AlertRecord] = []
    for f in i.alerts:
        body = f.get("body") or {}
        fp, at = f["resource_id"], f["occurred_at"]
        if f["kind"] == "alert.firing" and fp not in open_:
            rec = AlertRecord(
                fingerprint=fp,
                rule_id=body.get("rule_id"),
                severity=str(body.get("severity", "warning")),
                model_id=f["model_id"],
                summary=str((body.get("annotations") or {}).get("summary", "")),
                started_at=body.get("starts_at") or at,
                resolved_at=None,
                minutes_to_resolve=None,
            )
            open_[fp] = rec
            seen.append(rec)
        elif f["kind"] == "alert.resolved" and fp in open_:
            rec = open_.pop(fp)
            rec.resolved_at = _dt(body.get("ends_at") or at)
            rec.minutes_to_resolve = round(
                (rec.resolved_at - _dt(rec.started_at)).total_seconds() / 60, 2
            )
    return sorted(
        (
            r
            for r in seen
            if _dt(r.started_at) < i.end and (r.resolved_at is None or r.resolved_at >= i.start)
        ),
        key=lambda r: (r.started_at, r.fingerprint),
    )


def _dt(v: datetime | str) -> datetime:
    return v if isinstance(v, datetime) else datetime.fromisoformat(v)


def _most_drifted(kv: tuple[str, dict[str, int]]) -> tuple[int, str]:
    return -kv[1]["drifted"], kv[0]


def _monitoring(
    models: Iterable[str], history: History, alerts: list[AlertRecord]
) -> list[ModelMonitoring]:
    out = []
    for mid in sorted(models):
        h = history.get(mid, ModelHistory())
        shares = [w["drifted_share"] for w in h.windows]
        perf: dict[str, dict[str, float]] = {}
        names = sorted({k for p in h.performance for k in p["metrics"]})
        for name in names:
            values = [p["metrics"][name] for p in h.performance if name in p["metrics"]]
            perf[name] = {
                "mean": round(statistics.fmean(values), 6),
                "min": min(values),
                "max": max(values),
                "last": values[-1],
            }
        series: dict[str, list[list[Any]]] = {
            "drifted_share": [[w["time"], w["drifted_share"]] for w in h.windows],
            "quality_score": [[w["time"], w["quality_score"]] for w in h.windows],
        }
        for name in names:
            series[f"performance.{name}"] = [
                [p["time"], p["metrics"][name]] for p in h.performance if name in p["metrics"]
            ]
        mine = [a for a in alerts if a.model_id == mid]
        out.append(
            ModelMonitoring(
                model_id=mid,
                windows=len(h.windows),
                events=sum(w["events"] for w in h.windows),
                windows_with_dataset_drift=sum(1 for w in h.windows if w["dataset_drift"]),
                windows_with_feature_drift=sum(1 for w in h.windows if w.get("drifted_features")),
                windows_with_prediction_drift=sum(
                    1 for w in h.windows if w.get("prediction_drift")
                ),
                features_with_drift=sorted(
                    {f for w in h.windows for f in w.get("drifted_features", ())}
                ),
                versions_monitored=sorted({w["version"] for w in h.windows}),
                mean_drifted_share=round(statistics.fmean(shares), 6) if shares else None,
                max_drifted_share=max(shares) if shares else None,
                min_quality_score=min((w["quality_score"] for w in h.windows), default=None),
                features=[
                    FeatureDriftCount(feature=k, windows=v["windows"], drifted=v["drifted"])
                    for k, v in sorted(
                        h.features.items(), key=lambda kv: (-kv[1]["drifted"], kv[0])
                    )
                ],
                performance_windows=len(h.performance),
                performance=perf,
                series=series,
                alerts_fired=len(mine),
                alerts_resolved=sum(1 for a in mine if a.resolved_at is not None),
            )
        )
    return out


# --- the report ---------------------------------------------------------------------------


def build_report(i: Inputs) -> Report:
    models = _registry(i.registry)
    if i.model_id is not None:
        models = {k: v for k, v in models.items() if k == i.model_id}
    erasures = _erasures(i)
    base: dict[str, Any] = {
        "report_id": i.report_id,
        "tenant_id": i.tenant_id,
        "framework": i.framework,
        "title": TITLES[i.framework],
        "period": {"start": i.start, "end": i.end},
        "model_id": i.model_id,
        "generated_at": i.generated_at,
        "generated_by": i.generated_by,
        "integrity": i.integrity,
        "tenant_erased": bool(erasures) or any(k.get("destroyed") for k in i.key_versions),
    }
    summary: dict[str, int | float | str | bool | None] = {
        "integrity": i.integrity.status,
        "evidence_complete": i.evidence_complete,
        "audit_records_in_period": len(i.audit),
    }
    if i.framework == "gdpr":
        processing = _processing(models, i)
        access = _personal_access(i)
        keys = _keys(i)
        summary |= {
            "models": len(processing),
            "sensitive_fields": sum(len(p.sensitive_fields) for p in processing),
            "erasures": len(erasures),
            "personal_data_accesses": sum(a.count for a in access),
            "key_rotations": len(keys.rotations_in_period),
        }
        return Report(
            **base,
            summary=summary,
            processing=processing,
            erasures=erasures,
            personal_data_access=access,
            retention=_retention(i),
            keys=keys,
        )
    if i.framework == "sox":
        changes = _changes(i)
        violations = _violations(models, i)
        access_changes = _access_changes(i)
        summary |= {
            "changes": len(changes),
            "versions_registered": sum(1 for c in changes if c.change == "version_registered"),
            "versions_approved": sum(1 for c in changes if c.change == "version_approved"),
            "stage_changes": sum(1 for c in changes if c.change == "version_stage_changed"),
            "violations": len(violations),
            "access_changes": len(access_changes),
        }
        return Report(
            **base,
            summary=summary,
            changes=changes,
            violations=violations,
            access_changes=access_changes,
        )
    versions = sorted(
        (v for m in models.values() for v in m.versions.values()),
        key=lambda v: (v.model_id, v.submitted_at),
    )
    alerts = [a for a in _alerts(i) if i.model_id is None or a.model_id == i.model_id]
    live = [m.model_id for m in models.values() if m.registered_at is not None]
    monitoring = _monitoring(live, i.history, alerts)
    signatures = sorted(
        (v.approval for v in versions if v.approval is not None and _in_span(v.approval.at, i)),
        key=lambda a: a.at,
    )
    resolved = [a.minutes_to_resolve for a in alerts if a.minutes_to_resolve is not None]
    summary |= {
        "models": len(monitoring),
        # registered in the registry (with artifact and gates) vs seen in the stream
        "versions_registered": len(versions),
        "versions_monitored": sum(len(m.versions_monitored) for m in monitoring),
        "versions_failing_gates": sum(1 for v in versions if v.gates_met is False),
        "windows": sum(m.windows for m in monitoring),
        "windows_with_dataset_drift": sum(m.windows_with_dataset_drift for m in monitoring),
        "windows_with_feature_drift": sum(m.windows_with_feature_drift for m in monitoring),
        "windows_with_prediction_drift": sum(m.windows_with_prediction_drift for m in monitoring),
        "features_with_drift": sum(len(m.features_with_drift) for m in monitoring),
        "alerts": len(alerts),
        "alerts_unresolved": sum(1 for a in alerts if a.resolved_at is None),
        "median_minutes_to_resolve": round(statistics.median(resolved), 2) if resolved else None,
        "signatures": len(signatures),
    }
    extra: dict[str, Any] = {}
    if i.framework == "model_card":
        extra["processing"] = _processing(models, i)
        extra["changes"] = _changes(i)
    return Report(
        **base,
        summary=summary,
        versions=versions,
        monitoring=monitoring,
        alerts=alerts,
        signatures=signatures,
        **extra,
    )


def _in_span(at: datetime, i: Inputs) -> bool:
    return bool(i.start <= at < i.end)
