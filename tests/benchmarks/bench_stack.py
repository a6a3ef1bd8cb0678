"""Start-up time (warm cache) and resident memory of each local-stack server."""

from __future__ import annotations

import json
import subprocess
import sys

from common import ROOT, record, table

STACK = [sys.executable, str(ROOT / "deploy" / "local" / "stack.py")]


def main() -> None:
    subprocess.run([*STACK, "down"], check=True, capture_output=True)
    out = subprocess.run([*STACK, "up", "--json"], check=True, capture_output=True, text=True)
    started = json.loads(out.stdout.strip().splitlines()[-1])
    status = json.loads(
        subprocess.run(
            [*STACK, "status", "--json"], check=True, capture_output=True, text=True
        ).stdout
    )
    figures: dict[str, float] = {"stack_up_total_s": started["total_s"]}
    for row in status:
        if row["name"] in started["seconds"]:
            figures[f"{row['name']}_start_s"] = started["seconds"][row["name"]]
            figures[f"{row['name']}_rss_mib"] = row["rss_mib"]
    record("stack", figures)
    table("Local stack: warm start and resident memory", figures)


if __name__ == "__main__":
    main()
