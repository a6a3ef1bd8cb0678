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


def python_speed() -> float:
    """Millions of iterations of a fixed pure-Python loop per CPU-second of this process,
    now: the speed of the core this run got. The same box's host ran twice as fast at one
    hour as at another with the load average below 2, so a figure's section carries this
    beside it, and two runs compare by it (a figure over this speed), not by the wall clock."""
    best = 0.0
    for _ in range(3):
        c0, s, n = time.process_time(), 0, 1_000_000
        for i in range(n):
            s += i
        best = max(best, n / 1e6 / max(time.process_time() - c0, 1e-9))
    return round(best, 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def record(section: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into .bench/results.json (keyed by section), with the
    time, the load average and the core's speed (`python_speed`) when they were measured."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = {
        **figures,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python_loop_mops_per_cpu_s": python_speed(),
    }
    data["machine"] = {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
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
