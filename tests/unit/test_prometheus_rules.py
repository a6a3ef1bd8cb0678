"""Prometheus configuration and alert rules: `promtool check config`, `check rules` and
`test rules` (promtool comes with Debian's prometheus package, which bootstrap installs);
every rule has summary, description and a runbook_url whose section exists in
docs/runbooks.md, and a unit test in rules.test.yml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str, cwd: Path = PROM) -> str:
    assert PROMTOOL, "promtool is not installed (deploy/local/bootstrap.sh installs it)"
    r = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def rules() -> list[dict]:
    doc = yaml.safe_load((PROM / "rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        if m := re.match(r"^#{1,6}\s+(.*)$", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(slug)
    return out


def test_promtool_checks_the_config_and_the_rules():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 10 rules found" in promtool("check", "rules", "rules.yml")


def test_the_local_stacks_generated_config_is_valid(tmp_path):
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    from dlstack.prometheus import config

    conf = tmp_path / "prometheus.yml"
    conf.write_text(config())
    assert "SUCCESS" in promtool("check", "config", str(conf), cwd=tmp_path)


def test_rule_unit_tests_pass():
    assert "SUCCESS" in promtool("test", "rules", "rules.test.yml")


def test_every_rule_has_annotations_a_runbook_section_and_a_unit_test():
    sections = anchors((ROOT / "docs" / "runbooks.md").read_text())
    tested = {
        t["alertname"]
        for case in yaml.safe_load((PROM / "rules.test.yml").read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    names = [r["alert"] for r in rules()]
    assert {
        "DriftlineConsumerLagHigh",
        "DriftlineDeadLettersGrowing",
        "DriftlineWebhookDeliveryFailing",
        "DriftlineAuditVerificationFailed",
        "DriftlineModelNoData",
        "DriftlineDriftRecordsHeld",
        "DriftlineDriftModelsInvalid",
        "DriftlineCloudEventsUnmatched",
    } <= set(names)
    for r in rules():
        a = r["annotations"]
        assert a.get("summary"), r["alert"]
        assert a.get("description"), r["alert"]
        path, _, anchor = a["runbook_url"].partition("#")
        base = '{{ or $externalLabels.docs_url "docs" }}'
        assert path == base + "/runbooks.md", r["alert"]
        assert anchor in sections, f"{r['alert']}: no section #{anchor} in docs/runbooks.md"
        assert r["alert"] in tested, f"{r['alert']} has no firing case in rules.test.yml"
