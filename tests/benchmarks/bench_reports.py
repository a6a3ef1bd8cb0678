"""Compliance reports: how long a month of one tenant's evidence takes to become a signed
report (build, JSON, HTML with charts, PDF, signing), and how fast evidence is stored
(encrypt + insert into PostgreSQL) as the service consumes the topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from common import record, table
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driftline_compliance_report.app import build
from driftline_compliance_report.evidence import Fact
from driftline_compliance_report.frameworks import Inputs, build_report
from driftline_compliance_report.history import ModelHistory
from driftline_compliance_report.model import Integrity
from driftline_compliance_report.render import render
from driftline_compliance_report.settings import ReportOptions, ReportSettings
from driftline_core.reportsign import sign_manifest

START = datetime(2026, 10, 1, tzinfo=UTC)
END = START + timedelta(days=30)
MODELS = 3
WINDOW_S = 300  # five-minute windows: 8,640 per model per month
AUDIT_FACTS = 20_000
EVIDENCE_N = 10_000


def _inputs() -> Inputs:
    registry, audit = [], []
    for m in range(MODELS):
        mid = f"model-{m}"
        registry.append(
            _fact(
                "registry.model_registered",
                START - timedelta(days=1),
                "user:a",
                mid,
                None,
                {
                    "details": {
                        "name": mid,
                        "task": "classification",
                        "feature_schema": {
                            "features": [{"name": f"f{i}", "kind": "numeric"} for i in range(20)]
                        },
                    }
                },
            )
        )
        for v in range(10):
            at = START + timedelta(days=3 * v)
            registry.append(
                _fact(
                    "registry.version_registered",
                    at,
                    "user:a",
                    mid,
                    str(v),
                    {
                        "details": {
                            "artifact_sha256": "a" * 64,
                            "metadata": {
                                "validation": {
                                    "dataset": "d",
                                    "metrics": {"auc": 0.9},
                                    "gates": {"auc": {"min": 0.8}},
                                }
                            },
                        }
                    },
                )
            )
            registry.append(
                _fact(
                    "registry.version_approved",
                    at + timedelta(hours=1),
                    "user:b",
                    mid,
                    str(v),
                    {"details": {"approved_by": "user:b"}},
                )
            )
    for k in range(AUDIT_FACTS):
        at = START + timedelta(seconds=k * (30 * 86400 // AUDIT_FACTS))
        audit.append(_fact("audit.query", at, f"user:u{k % 7}", None, None, {"details": {}}))
    n = 30 * 86400 // WINDOW_S
    history = {
        f"model-{m}": ModelHistory(
            windows=[
                {
                    "time": (START + timedelta(seconds=WINDOW_S * (i + 1))).isoformat(),
                    "version": "1",
                    "events": 500,
                    "drifted_share": (i % 20) / 20,
                    "dataset_drift": i % 20 >= 10,
                    "quality_score": 99.0 - (i % 7),
                }
                for i in range(n)
            ],
            features={f"f{i}": {"windows": n, "drifted": i * 10} for i in range(20)},
            performance=[
                {
                    "time": (START + timedelta(hours=h + 1)).isoformat(),
                    "version": "1",
                    "labelled": 200,
                    "metrics": {"accuracy": 0.9 - (h % 10) / 100, "auc": 0.93},
                }
                for h in range(24 * 30)
            ],
        )
        for m in range(MODELS)
    }
    return Inputs(
        report_id="bench",
        tenant_id="bench",
        framework="fda",
        start=START,
        end=END,
        generated_at=END,
        generated_by="user:auditor",
        registry=registry,
        audit=audit,
        history=history,
        integrity=Integrity(status="verified", records=AUDIT_FACTS),
    )


def _fact(
    kind: str,
    at: datetime,
    actor: str,
    model: str | None,
    version: str | None,
    body: dict[str, Any],
) -> dict[str, Any]:
    return {
        "tenant_id": "bench",
        "source_id": uuid.uuid4(),
        "topic": "driftline.registry.v1" if kind.startswith("registry.") else "driftline.audit.v1",
        "occurred_at": at,
        "kind": kind,
        "actor": actor,
        "resource_type": "model",
        "resource_id": model or "",
        "outcome": "success",
        "model_id": model,
        "model_version": version,
        "body": body,
    }


def generation() -> dict[str, float]:
    inputs = _inputs()
    t = time.perf_counter()
    report = build_report(inputs)
    build_s = time.perf_counter() - t
    out: dict[str, float] = {"report_build_s": round(build_s, 3)}
    files: dict[str, bytes] = {}
    for fmt in ("json", "html", "pdf"):
        t = time.perf_counter()
        files |= render(report, [fmt])
        out[f"report_render_{fmt}_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    sign_manifest(Ed25519PrivateKey.generate(), "k", {"report_id": "bench"}, files)
    out["report_sign_s"] = round(time.perf_counter() - t, 4)
    out["report_pdf_bytes"] = len(files["report.pdf"])
    out["report_windows_charted"] = sum(m.windows for m in report.monitoring)
    out["report_month_total_s"] = round(
        build_s + sum(v for k, v in out.items() if k.startswith("report_render_")), 3
    )
    return out


async def evidence_rate() -> dict[str, float]:
    s = ReportSettings(environment="test", reports=ReportOptions(group_id="bench-reports"))
    deps = build(s)
    await deps.keyring.database.start()
    assert deps.core.database is not None
    await deps.core.database.start()
    try:
        tenant = f"bench-{uuid.uuid4().hex[:6]}"
        facts = [
            Fact(
                tenant,
                uuid.uuid4(),
                "driftline.audit.v1",
                START + timedelta(seconds=i),
                "audit.query",
                "user:u",
                "audit_trail",
                tenant,
                "success",
                None,
                None,
                {"details": {"i": i, "returned": 100}},
            )
            for i in range(EVIDENCE_N)
        ]
        t = time.perf_counter()
        for i in range(0, EVIDENCE_N, 500):
            await deps.evidence.add(facts[i : i + 500])
        add_s = time.perf_counter() - t
        again = await deps.evidence.add(facts[:500])  # redelivery stores nothing
        t = time.perf_counter()
        rows = await deps.evidence.facts(tenant)
        read_s = time.perf_counter() - t
        assert len(rows) == EVIDENCE_N
        assert again == 0
        return {
            "report_evidence_stored_per_s": round(EVIDENCE_N / add_s, 1),
            "report_evidence_read_decrypted_per_s": round(EVIDENCE_N / read_s, 1),
        }
    finally:
        await deps.keyring.database.stop()
        await deps.core.database.stop()


if __name__ == "__main__":
    figures = generation() | asyncio.run(evidence_rate())
    table("Compliance reports", figures)
    record("reports", figures)
