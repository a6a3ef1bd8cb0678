"""`.bench/REPORT.md` from `.bench/results.json`: the machine, each figure of issue 17
beside its goal, and ratios to the baselines measured in the same run (bare aiokafka,
the in-memory path). `make bench` writes it after the benchmarks; also runnable alone:
`python tests/benchmarks/report.py`."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from common import RESULTS

# (section, figure, goal, "min" = at least / "max" = at most, baseline figure or None)
GOALS: list[tuple[str, str, float, str, str | None]] = [
    ("drift", "drift_events_per_s_per_process", 50_000, "min", None),
    ("drift", "drift_events_per_cpu_s_per_process", 50_000, "min", None),
    ("drift", "drift_batch_events_per_s_per_process", 200_000, "min", None),
    ("drift", "drift_batch_events_per_cpu_s_per_process", 200_000, "min", None),
    ("drift", "drift_window_bytes_25_features", 25 * 16 * 1024, "max", None),
    ("drift", "drift_window_bytes_per_feature", 16 * 1024, "max", None),
    ("drift", "drift_checkpoint_mb_per_s_1000_models_x_25_features", 10, "max", None),
    ("drift", "drift_rss_mib_1000_models_x_25_features", 1024, "max", None),
    ("drift", "drift_cpu_per_event_ratio_2_vs_1_processes", 1.1, "max", None),
    ("ingestion", "ingest_kafka_sdk_events_per_s", 100_000, "min", "kafka_bare_batch_events_per_s"),
    ("ingestion", "ingest_http_events_per_s", 30_000, "min", "kafka_bare_batch_events_per_s"),
    ("ingestion", "ingest_http_batch1000_events_per_service_cpu_s", 50_000, "min", None),
    # the same with DRIFTLINE_INGESTION__BATCH_RECORDS=true (columnar batch records)
    (
        "ingestion",
        "ingest_http_batch_records_batch1000_events_per_s",
        30_000,
        "min",
        "kafka_bare_batch_events_per_s",
    ),
    (
        "ingestion",
        "ingest_http_batch_records_batch1000_events_per_service_cpu_s",
        50_000,
        "min",
        None,
    ),
    ("audit", "audit_verify_records_per_s", 100_000, "min", None),
    ("alerting", "alert_latency_ms_p50", 50, "max", None),
    ("alerting", "alert_latency_ms_p99", 200, "max", None),
]
# the in-memory baseline of the drift path, measured in the same run
IN_MEMORY = ("drift", "drift_ingest_events_per_cpu_s_records")


def _fmt(v: Any) -> str:
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)


def render(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    lines = [
        "# Benchmark report (issue 17)",
        "",
        f"Machine: {m.get('cpus', os.cpu_count())} CPUs ({m.get('cpu_model', 'unknown')}),"
        f" {m.get('platform', platform.platform())},"
        f" Python {m.get('python', platform.python_version())}; load average at report time "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared box: compare CPU-second"
        " figures and ratios within the run, not wall clock across runs).",
        "",
        "| figure | value | goal | meets | ratio to baseline (same run) | measured at |",
        "|---|---|---|---|---|---|",
    ]
    base_mem = data.get(IN_MEMORY[0], {}).get(IN_MEMORY[1])
    for section, name, goal, kind, baseline in GOALS:
        sec = data.get(section, {})
        value = sec.get(name)
        if value is None:
            lines.append(
                f"| {name} | not measured | {'>=' if kind == 'min' else '<='} "
                f"{_fmt(goal)} | - | - | - |"
            )
            continue
        ok = value >= goal if kind == "min" else value <= goal
        ratio = "-"
        if baseline and sec.get(baseline):
            ratio = f"{value / sec[baseline]:.3f} x {baseline}"
        elif name.startswith("drift_") and name.endswith("_cpu_s_per_process") and base_mem:
            ratio = f"{value / base_mem:.2f} x in-memory per-record path"
        lines.append(
            f"| {name} | {_fmt(value)} | {'>=' if kind == 'min' else '<='} {_fmt(goal)} | "
            f"{'yes' if ok else 'no'} | {ratio} | {sec.get('measured_at', '')} |"
        )
    lines += [
        "",
        "In-memory path (records to windows, no Kafka; the baseline the process figures are",
        "compared with), events per CPU-second:",
        "",
    ]
    for name in (
        "drift_ingest_events_per_cpu_s_records",
        "drift_ingest_events_per_cpu_s_columnar",
        "drift_ingest_events_per_cpu_s_batch",
    ):
        v = data.get("drift", {}).get(name)
        if v is not None:
            rel = f" ({v / base_mem:.2f} x per-record)" if base_mem else ""
            lines.append(f"- {name}: {_fmt(v)}{rel}")
    lines += [
        "",
        "The core's speed when each section was measured (a fixed pure-Python loop, millions",
        "of iterations per CPU-second; the same box has given twice as much at one hour as at",
        "another) and the load average then: compare two runs' figures over this speed.",
        "",
        "| section | measured at | loop Mops per CPU-s | load average (1 min) |",
        "|---|---|---|---|",
    ]
    for section, sec in data.items():
        if isinstance(sec, dict) and "python_loop_mops_per_cpu_s" in sec:
            lines.append(
                f"| {section} | {sec.get('measured_at', '')} | "
                f"{sec['python_loop_mops_per_cpu_s']:.2f} | {sec.get('load_average_1m', '-')} |"
            )
    lines += ["", "All figures: `.bench/results.json`.", ""]
    return "\n".join(lines)


def write(results: Path = RESULTS) -> Path:
    data = json.loads(results.read_text()) if results.exists() else {}
    out = results.with_name("REPORT.md")
    text = render(data)
    out.write_text(text)
    print(text)
    return out


if __name__ == "__main__":
    write()
