"""`make demo`: the local stack and every Driftline service running, shown healthy.

Later issues extend it: a demo model streams events through drift detection to an alert.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "deploy" / "local" / "stack.py")]
console = Console()


def stack(*args: str) -> str:
    out = subprocess.run([*STACK, *args], capture_output=True, text=True)
    if out.returncode != 0:
        console.print(out.stdout, out.stderr, style="red")
        raise SystemExit(out.returncode)
    return out.stdout


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
    console.print("Metrics: http://127.0.0.1:19090 (Prometheus)   Stop everything: make down")
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
