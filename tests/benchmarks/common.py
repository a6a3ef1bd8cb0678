"""Shared helpers for benchmarks: results file, timing, a table on stdout."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("DRIFTLINE_BENCH_RESULTS", ROOT / ".bench" / "results.json"))


def record(section: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into .bench/results.json (keyed by section)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def table(title: str, rows: dict[str, Any]) -> None:
    print(f"\n{title}")
    for k, v in rows.items():
        print(f"  {k:<44} {v:>14,.1f}" if isinstance(v, float | int) else f"  {k:<44} {v}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out
