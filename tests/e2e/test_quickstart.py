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
