"""Driftline against Evidently's DataDriftPreset on the same windows: agreement, accuracy on
known drift, and throughput as a ratio (`evidently_compare` says how the windows are made)."""

from __future__ import annotations

import os

from common import record, table
from evidently_compare import compare

WINDOWS = int(os.environ.get("DRIFTLINE_BENCH_EVIDENTLY_WINDOWS", "50"))


def main() -> None:
    large = compare(20_000, 1000, WINDOWS, seed=1)
    small = compare(800, 500, WINDOWS, seed=2)
    for name, r in (("large reference", large), ("small reference", small)):
        table(
            f"Driftline vs Evidently, {name} ({r['reference_rows']} rows, windows of "
            f"{r['window_rows']}, {r['windows']} windows, tests {', '.join(r['tests'])})",
            {
                "agreement (feature verdicts)": r["agreement_feature_verdicts"],
                "driftline drift-free windows flagged": r["driftline"][
                    "drift_free_windows_flagged"
                ],
                "evidently drift-free windows flagged": r["evidently"][
                    "drift_free_windows_flagged"
                ],
                "driftline detection (must flag)": r["driftline"]["detection_rate_must_flag"],
                "evidently detection (must flag)": r["evidently"]["detection_rate_must_flag"],
                "driftline wrong verdicts": r["driftline"]["wrong_verdicts"],
                "evidently wrong verdicts": r["evidently"]["wrong_verdicts"],
                "driftline events/s": r["driftline_events_per_s"],
                "evidently events/s": r["evidently_events_per_s"],
                "throughput ratio": r["throughput_ratio"],
            },
        )
        print("  disagreements:", r["disagreements"])
    record(
        "evidently",
        {
            "large_reference": large,
            "small_reference": small,
            "evidently_throughput_ratio": min(large["throughput_ratio"], small["throughput_ratio"]),
        },
    )


if __name__ == "__main__":
    main()
