"""`make demo`: the local stack and every Driftline service running and shown healthy; then
the synthetic credit-risk model is registered with its reference data and streams
predictions (with scheduled drift) and late labels through ingestion into Kafka; drift
verdicts and signed alerts are shown, and a signed FDA 21 CFR Part 11 report of the run is
generated, checked and saved under .stack/.

DEMO_SECONDS (default 45) and DEMO_RATE (events/s, default 400) tune the stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import demo_alerts  # deploy/local, beside this file
import demo_console
import demo_dashboards
import demo_reports
import demo_results
import demo_story
import httpx
from rich.console import Console
from rich.table import Table

from driftline.client import AsyncClient, Client, DriftlineAPIError
from driftline.demo.credit import DRIFTS
from driftline.demo.run import prepare, stream

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "deploy" / "local" / "stack.py")]
console = Console()


def stack(*args: str) -> str:
    out = subprocess.run([*STACK, *args], capture_output=True, text=True)
    if out.returncode != 0:
        console.print(out.stdout, out.stderr, style="red")
        raise SystemExit(out.returncode)
    return out.stdout


def demo_key(url: str) -> str:
    """The demo tenant's admin key, kept in .stack/demo.json between runs."""
    saved = ROOT / ".stack" / "demo.json"
    if saved.exists():
        key = json.loads(saved.read_text())["api_key"]
        with Client(url, key) as c:
            try:
                c.list_models()
                return str(key)
            except DriftlineAPIError:
                pass
    token = os.environ.get("DRIFTLINE_INGESTION__ADMIN_TOKEN", "driftline-dev-admin")
    with Client(url, admin_token=token) as c:
        for suffix in ["", *(f"-{i}" for i in range(1, 50))]:
            try:
                out = c.create_tenant(f"demo{suffix}", "Demo tenant")
                break
            except DriftlineAPIError as e:
                if e.status != 409:
                    raise
    saved.write_text(json.dumps({"tenant_id": out["tenant_id"], "api_key": out["api_key"]}))
    console.print(f"created tenant [bold]{out['tenant_id']}[/bold] (key in {saved})")
    return str(out["api_key"])


def run_stream(url: str, key: str, *, seconds: float, rate: float) -> tuple[int, float]:
    """Register the demo model and its reference, then stream; returns the exit code and
    the wall-clock time the stream began (the planted drifts are scheduled from it)."""

    async def go() -> tuple[int, float]:
        async with AsyncClient(url, key) as c:
            await prepare(c, console)
            began = time.time()
            totals = await stream(c, seconds=seconds, rate=rate, label_delay=5.0, console=console)
        console.print(
            f"sent {totals['predictions']:,} predictions and {totals['labels']:,} "
            f"late labels ({totals['rejected']} rejected)"
        )
        return (0 if totals["rejected"] == 0 else 1), began

    return asyncio.run(go())


def story(
    start: dict[Any, int],
    tenant: str,
    key: str,
    receiver: demo_alerts.Receiver,
    stream_start: float,
    seconds: float,
    settle_s: float = 8.0,
    wait_s: float = 45.0,
) -> list[demo_story.Finding]:
    """Planted vs found, from everything the run published: once every planted drift was
    flagged and notified, or nothing changed for `settle_s` (late labels, the last groups'
    flushes), at most `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    last: list[demo_story.Finding] = []
    stable_since = time.monotonic()
    while True:
        seen = asyncio.run(demo_results.since(start, tenant))
        active = httpx.get(
            "http://127.0.0.1:8103/v1/alerts",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).json()
        findings = demo_story.planted_vs_found(
            DRIFTS,
            stream_start=stream_start,
            seconds=seconds,
            results=seen.drift,
            concept=seen.concept,
            alerts=seen.alerts,
            received=receiver.received,
            inhibit_rules=demo_alerts.INHIBIT_RULES,
            active=active,
        )
        now = time.monotonic()
        if findings != last:
            last, stable_since = findings, now
        done = all(f.flagged is not None and f.delivered for f in findings)
        if done or now - stable_since >= settle_s or now > deadline:
            return findings
        time.sleep(1.0)


def main() -> int:
    console.rule("[bold]Driftline demo")
    console.print(stack("services-up").strip())
    rows = json.loads(stack("status", "--json"))
    table = Table(title="Driftline on this machine", show_lines=False)
    for col in ("component", "port", "pid", "ready", "RSS MiB", "dependencies"):
        table.add_column(col)
    healthy = True
    with httpx.Client(timeout=5) as http:
        for r in rows:
            deps = ""
            if r["name"] not in ("postgres", "redis", "influxdb", "kafka", "prometheus"):
                body = http.get(f"http://127.0.0.1:{r['port']}/readyz").json()
                deps = ", ".join(f"{k}={v}" for k, v in body["checks"].items())
                healthy &= body["status"] == "ready"
            healthy &= bool(r["ready"])
            table.add_row(
                r["name"],
                str(r["port"]),
                str(r["pid"] or "-"),
                "[green]yes" if r["ready"] else "[red]no",
                str(r["rss_mib"] or "-"),
                deps,
            )
    console.print(table)
    if not healthy:
        return 1
    console.rule("[bold]Streaming the credit-risk demo model")
    url = "http://127.0.0.1:8101"
    key = demo_key(url)
    tenant = json.loads((ROOT / ".stack" / "demo.json").read_text())["tenant_id"]
    receiver = demo_alerts.Receiver().start()
    demo_alerts.configure("http://127.0.0.1:8103", key, receiver)
    console.print(f"alerts of tenant {tenant} go to a signed webhook at {receiver.url}")
    start = asyncio.run(demo_results.mark())
    began = datetime.now(UTC)
    seconds = float(os.environ.get("DEMO_SECONDS", "45"))
    code, stream_start = run_stream(
        url, key, seconds=seconds, rate=float(os.environ.get("DEMO_RATE", "400"))
    )
    console.rule("[bold]Drift detection")
    console.print("waiting for the last windows to close (10 s after the stream stops)...")
    results = demo_results.run_collect(start, tenant)
    demo_results.show(console, results.drift)
    if not results.drift:
        console.print("[red]no drift results arrived: see .stack/logs/svc-drift-detection.log")
        code = code or 1
    findings = story(start, tenant, key, receiver, stream_start, seconds)
    console.rule("[bold]Alerting")
    if not demo_alerts.show(console, receiver, wait_s=0):
        console.print("[red]no alert reached the webhook: see .stack/logs/svc-alerting.log")
        code = code or 1
    receiver.stop()
    console.rule("[bold]Compliance report")
    try:
        doc = demo_reports.generate(key, began, ROOT / ".stack" / "demo-report.zip")
        if not demo_reports.show(console, doc, ROOT / ".stack" / "demo-report.zip"):
            code = code or 1
    except (httpx.HTTPError, RuntimeError) as e:
        console.print(f"[red]no report: {e} (see .stack/logs/svc-compliance-report.log)")
        code = code or 1
    console.rule("[bold]Planted vs found")
    demo_story.show(console, findings)
    if any(f.flagged is None or not f.delivered for f in findings):
        console.print("[yellow]not every planted drift was flagged and notified (see above)")
    demo_dashboards.show(console, tenant, began)  # where the dashboards are; PNGs of this run
    demo_console.show(console, url, key, tenant)  # the web console's URL and a login
    console.print("Metrics: http://127.0.0.1:19090 (Prometheus)   Stop everything: make down")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
