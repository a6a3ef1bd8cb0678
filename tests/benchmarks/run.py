"""`make bench`: run every benchmark; figures merge into .bench/results.json."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ORDER = [
    "bench_stack.py",
    "bench_kafka.py",
    "bench_ingest.py",
    "bench_live.py",
    "bench_drift.py",
    "bench_alerting.py",
    "bench_audit.py",
    "bench_reports.py",
    "bench_evidently.py",
]

if __name__ == "__main__":
    only = sys.argv[1:]
    for name in ORDER:
        if not only or any(o in name for o in only):
            runpy.run_path(str(HERE / name), run_name="__main__")
    from report import write

    write()  # every figure beside its goal: .bench/REPORT.md
    print(f"\nresults: {HERE.parents[1] / '.bench' / 'results.json'}")
