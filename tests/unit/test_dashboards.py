"""The Grafana dashboards (deploy/grafana): generated from generate.py and up to date, valid
against Grafana's published dashboard schema (the TypeScript types of the npm package
@grafana/schema, checked by the TypeScript compiler, both pinned in
deploy/grafana/schema/package-lock.json and installed into .stack/cache by bootstrap), and
referring only to the provisioned datasources. What the panels show is checked against a
real run by tests/e2e/test_dashboards.py."""

from __future__ import annotations

import copy
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
SCHEMA_SRC = GRAFANA / "schema"
SCHEMA_DIR = ROOT / ".stack" / "cache" / "grafana-schema"
sys.path.insert(0, str(GRAFANA))

import generate  # noqa: E402


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out += walk(v)
    elif isinstance(node, list):
        for v in node:
            out += walk(v)
    return out


@pytest.fixture(scope="module")
def tsc() -> Path:
    """The TypeScript compiler with @grafana/schema, as bootstrap installs them (npm ci from
    the committed lock file); installed here too when missing or stale."""
    lock = SCHEMA_SRC / "package-lock.json"
    ready = (
        (SCHEMA_DIR / "node_modules" / "@grafana" / "schema").is_dir()
        and filecmp.cmp(lock, SCHEMA_DIR / "package-lock.json", shallow=False)
        if (SCHEMA_DIR / "package-lock.json").exists()
        else False
    )
    if not ready:
        npm = shutil.which("npm")
        assert npm, "npm is missing: deploy/local/bootstrap.sh installs nodejs and npm"
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(SCHEMA_SRC / name, SCHEMA_DIR / name)
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=SCHEMA_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
    return SCHEMA_DIR / "node_modules" / "typescript" / "bin" / "tsc"


def typecheck(
    tsc: Path, boards: dict[str, dict[str, Any]], workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Each dashboard as an object literal that must satisfy @grafana/schema's Dashboard:
    unknown properties, missing required ones and wrong types are compile errors."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = ["import type { Dashboard } from '@grafana/schema';"]
    for i, (name, board) in enumerate(boards.items()):
        lines.append(
            f"// {name}\nexport const d{i} = {json.dumps(board, indent=1)} satisfies Dashboard;"
        )
    (workdir / "check.ts").write_text("\n".join(lines) + "\n")
    (workdir / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "module": "esnext",
                    "moduleResolution": "bundler",
                    "target": "es2022",
                    "skipLibCheck": True,
                    "typeRoots": [],
                    "baseUrl": ".",
                    "paths": {
                        "@grafana/schema": [
                            str(SCHEMA_DIR / "node_modules" / "@grafana" / "schema")
                        ]
                    },
                },
                "files": ["check.ts"],
            }
        )
    )
    node = shutil.which("node")
    assert node, "node is missing: deploy/local/bootstrap.sh installs nodejs"
    return subprocess.run(
        [node, str(tsc), "-p", str(workdir / "tsconfig.json")],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_dashboards_are_generated_and_up_to_date():
    on_disk = {p.name: p.read_text() for p in (GRAFANA / "dashboards").glob("*.json")}
    assert on_disk == generate.render(), "stale: run python deploy/grafana/generate.py"


def test_every_dashboard_validates_against_grafanas_published_schema(tsc, tmp_path):
    r = typecheck(tsc, dashboards(), tmp_path)  # a run of its own: no shared folder
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_schema_check_fails_on_a_broken_dashboard(tsc, tmp_path):
    board = copy.deepcopy(dashboards()["model-detail.json"])
    board["panels"][1]["gridPos"] = {"h": 8, "x": 0, "y": 0}  # w is required
    board["refresh"] = 10  # a string in the schema
    board["templating"]["list"][0]["bogus"] = True  # not a property of a variable
    r = typecheck(tsc, {"broken.json": board}, tmp_path)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "'w'" in out
    assert "bogus" in out
    assert "Type 'number' is not assignable to type 'string'" in out  # refresh


def test_dashboards_refer_only_to_provisioned_datasources():
    prov = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "driftline.yml").read_text())
    uids = {d["uid"]: d["type"] for d in prov["datasources"]}
    assert uids == {"driftline-influxdb": "influxdb", "driftline-prometheus": "prometheus"}
    influx = next(d for d in prov["datasources"] if d["type"] == "influxdb")
    assert influx["jsonData"]["version"] == "InfluxQL"
    for name, board in dashboards().items():
        refs = [n["datasource"] for n in walk(board) if isinstance(n.get("datasource"), dict)]
        assert refs, name
        for ref in refs:
            assert uids.get(ref["uid"]) == ref["type"], f"{name}: {ref}"


def test_panels_use_grafanas_macros_and_the_template_variables():
    names = set()
    for name, board in dashboards().items():
        names |= {v["name"] for v in board["templating"]["list"]}
        assert board["uid"].startswith("driftline-")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in board["panels"]:
            for t in p.get("targets", []):
                if t["datasource"]["type"] == "influxdb":
                    assert "$timeFilter" in t["query"], (name, p["title"])
                    assert t["rawQuery"] is True
                    if "GROUP BY time(" in t["query"]:
                        assert "time($__interval)" in t["query"], (name, p["title"])
                else:
                    assert t["expr"], (name, p["title"])
    assert {"tenant", "model", "version", "feature", "segment"} <= names
    titles = {p["title"] for b in dashboards().values() for p in b["panels"]}
    for wanted in (
        "Event rate",
        "Model latency",
        "Prediction distribution",
        "Drift per feature",
        "Quality score",
        "Performance",
        "Business value",
        "Alerts timeline",
        "Statistic and calibrated threshold",
        "Reference versus latest window",
        "Consumer lag",
        "DLQ rate by reason",
        "Notifications and webhook failures",
        "Ingestion 4xx/5xx",
        "Audit chain",
        "InfluxDB spool",
    ):
        assert wanted in titles


def test_provisioning_files_are_grafana_provisioning_documents():
    dash = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "driftline.yml").read_text())
    assert dash["apiVersion"] == 1
    assert dash["providers"][0]["type"] == "file"
    no_alerting = [p for p in (GRAFANA / "provisioning").rglob("*") if "alerting" in p.parts]
    assert no_alerting == []  # alerts come from Driftline's alerting service, not Grafana
