"""docs/quickstart.md, executed: its Python blocks run in order, as one notebook would run
them, against every service started as the e2e harness starts them. The verdict it ends
with is checked against scipy on the same data."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from harness import System, Tenant
from scipy import stats

DOC = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


@pytest.mark.timeout(600)
async def test_the_quickstart_runs_to_a_drift_verdict(
    system: System, tenant: Tenant, tmp_path, monkeypatch
):
    code = blocks()
    assert len(code) >= 6, "the quickstart lost its code blocks"
    monkeypatch.setenv("DRIFTLINE_URL", system.url("ingestion"))
    monkeypatch.setenv("DRIFTLINE_ALERTING_URL", system.url("alerting"))
    monkeypatch.setenv("DRIFTLINE_API_KEY", tenant.api_key)
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "quickstart"}

    def run() -> None:
        for block in code:
            exec(compile(block, str(DOC), "exec"), ns)

    # in a thread: the blocks' sync client and polling must not stall this event loop
    await asyncio.to_thread(run)
    ns["dl"].close()

    assert ns["report"].accepted == len(ns["live"])
    assert ns["report"].rejected == []
    assert ns["sender"].accepted == 200
    verdict = ns["verdict"]
    assert verdict["labels"]["alertname"] == "DatasetDrift"
    assert verdict["labels"]["model"] == "churn"

    # independently: which features drifted, by scipy, on the same reference and traffic
    ref, live = pd.read_csv(tmp_path / "reference.csv"), ns["live"]
    drifted = [
        stats.ks_2samp(ref[c], live[c]).pvalue < 0.05 for c in ("tenure_months", "monthly_spend")
    ]
    table = pd.crosstab(
        pd.concat([ref["plan"], live["plan"]]),
        ["ref"] * len(ref) + ["live"] * len(live),
    )
    drifted.append(stats.chi2_contingency(table).pvalue < 0.05)
    share = sum(drifted) / len(drifted)
    assert share >= 0.5  # the rule's threshold, reached by the planted drift
    assert verdict["value"] == pytest.approx(share)
    assert os.environ["DRIFTLINE_API_KEY"] == tenant.api_key


async def test_the_alert_side_cli_and_status_against_the_running_services(
    system: System, tenant: Tenant, tmp_path
):
    import json

    import httpx
    from typer.testing import CliRunner

    from driftline.cli import app

    env = {
        "DRIFTLINE_URL": system.url("ingestion"),
        "DRIFTLINE_DRIFT_URL": system.url("drift-detection"),
        "DRIFTLINE_ALERTING_URL": system.url("alerting"),
        "DRIFTLINE_AUDIT_URL": system.url("audit"),
        "DRIFTLINE_REPORTS_URL": system.url("compliance-report"),
        "DRIFTLINE_API_KEY": tenant.api_key,
        "COLUMNS": "200",
    }

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    def flow() -> None:
        auth = {"Authorization": f"Bearer {tenant.api_key}"}
        with httpx.Client(base_url=system.url("alerting"), headers=auth, timeout=10) as h:
            out = cli("-o", "json", "alerts", "list")
            assert out.exit_code == 0, out.output
            assert {a["fingerprint"] for a in json.loads(out.stdout)} == {
                a["fingerprint"] for a in h.get("/v1/alerts").json()
            }
            out = cli("-o", "json", "rules", "list")
            assert out.exit_code == 0, out.output
            assert "dataset-drift" in {r["id"] for r in json.loads(out.stdout)}

            rule = tmp_path / "rules.yaml"
            rule.write_text(
                "rules:\n"
                "  - id: spend-drift\n"
                "    name: SpendDrift\n"
                "    model_id: churn\n"
                "    condition: {metric: drift.feature.drifted, op: '==', value: 1,"
                " feature: monthly_spend}\n"
            )
            out = cli("rules", "apply", "-f", str(rule))
            assert out.exit_code == 0, out.output
            assert "1 rules applied: spend-drift" in out.output
            stored = h.get("/v1/alert-rules/spend-drift").json()
            assert stored["condition"]["feature"] == "monthly_spend"
            bad = tmp_path / "bad.yaml"
            bad.write_text("- name: no id\n")
            assert cli("rules", "apply", "-f", str(bad)).exit_code == 2

            out = cli("-o", "json", "silences", "add", "-m", "model=churn", "--comment", "test",
                      "--duration", "30m")  # fmt: skip
            assert out.exit_code == 0, out.output
            sid = json.loads(out.stdout)["id"]
            out = cli("-o", "json", "silences", "list")
            [mine] = [s for s in json.loads(out.stdout) if s["id"] == sid]
            assert mine["state"] == "active"
            assert cli("silences", "expire", sid).exit_code == 0
            [after] = [s for s in h.get("/v1/silences").json() if s["id"] == sid]
            assert after["state"] != "active"
            out = cli("silences", "expire", "00000000-0000-0000-0000-000000000000")
            assert out.exit_code == 1
            assert "HTTP 404" in out.output

            out = cli("-o", "json", "deliveries", "list")
            assert out.exit_code == 0, out.output
            assert json.loads(out.stdout) == h.get("/v1/deliveries").json()

        out = cli("-o", "json", "status")
        rows = json.loads(out.stdout)
        assert [r["service"] for r in rows] == [
            "ingestion",
            "drift-detection",
            "alerting",
            "audit",
            "compliance-report",
        ]
        assert all(r["ready"] for r in rows), rows
        assert out.exit_code == 0
        lagged = {r["service"] for r in rows if r["lag"] is not None}
        assert "drift-detection" in lagged  # it reports its consumer groups' lag

    await asyncio.to_thread(flow)
