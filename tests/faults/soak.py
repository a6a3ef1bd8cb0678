"""Soak (issue 18 item 7; `make soak`): the whole system (the e2e harness: every service as
a process on the run's own broker and databases) under the fault suite's load for
`DRIFTLINE_SOAK_S` seconds (1800 by default), sampling every `DRIFTLINE_SOAK_EVERY_S` (10 s)
each process's resident memory and open file descriptors (its whole process group, from
/proc) and its consumer lag (`driftline_consumer_lag_records` summed over its /metrics).
At the end: each figure's least-squares slope per minute, its first and last value, and the
acknowledged and counted totals; written to `.stack/soak/report.json` and printed.

Not run in CI (it takes half an hour); `DRIFTLINE_SOAK_S=240 make soak` is a short run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))

from faultlib import MODEL, MODEL_ID, RATE, Load  # noqa: E402
from harness import System, Tenant  # noqa: E402

from driftline_core.settings import DriftlineSettings  # noqa: E402

LAG = re.compile(r"^driftline_consumer_lag_records\{[^}]*\}\s+([0-9.e+]+)", re.M)


def group_pids(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:  # field 5 of stat: the process group
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def fds(pids: list[int]) -> int:
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return n


async def lag(http: httpx.AsyncClient, url: str) -> float:
    try:
        text = (await http.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return float("nan")
    return float(sum(float(v) for v in LAG.findall(text)))


def slope_per_min(ts: list[float], ys: list[float]) -> float | None:
    pts = [(t, y) for t, y in zip(ts, ys, strict=True) if y == y]  # drop NaN
    if len(pts) < 3:
        return None
    t, y = np.array(pts).T
    return float(np.polyfit((t - t[0]) / 60.0, y, 1)[0])


async def main() -> int:
    duration = float(os.environ.get("DRIFTLINE_SOAK_S", "1800"))
    every = float(os.environ.get("DRIFTLINE_SOAK_EVERY_S", "10"))
    out_dir = ROOT / ".stack" / "soak"
    out_dir.mkdir(parents=True, exist_ok=True)
    system = System(
        DriftlineSettings(environment="test"), Path(tempfile.mkdtemp(prefix="soak-", dir=out_dir))
    )
    await system.start()
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        tenant = await Tenant.create(system, "soak")
        rng = np.random.default_rng(7)
        await tenant.register(MODEL)
        await tenant.add_version(MODEL_ID, "1")
        await tenant.upload_reference(
            MODEL_ID,
            [{"x0": float(rng.normal()), "x1": float(rng.normal(5, 2))} for _ in range(2000)],
        )
        load = Load(tenant, [system.url("ingestion")])
        loader = asyncio.create_task(load.run())
        t_end = time.monotonic() + duration
        async with httpx.AsyncClient() as http:
            while time.monotonic() < t_end:
                now = time.time()
                for key, p in system.services.items():
                    assert p.proc is not None
                    if p.proc.poll() is not None:
                        raise RuntimeError(f"{key} exited {p.proc.returncode}:\n{p.tail()}")
                    pids = group_pids(p.proc.pid)
                    s = samples.setdefault(key, {"t": [], "rss": [], "fds": [], "lag": []})
                    s["t"].append(now)
                    s["rss"].append(rss_mib(pids))
                    s["fds"].append(float(fds(pids)))
                    s["lag"].append(await lag(http, p.url))
                await asyncio.sleep(every)
        load.stop.set()
        await loader
        report: dict[str, Any] = {
            "duration_s": duration,
            "rate_per_s": RATE,
            "events_sent": load.sent,
            "events_acknowledged": len(load.acked),
            "batches_given_up": load.gave_up,
            "samples": len(next(iter(samples.values()))["t"]) if samples else 0,
            "services": {},
        }
        for key, s in samples.items():
            report["services"][key] = {
                f: {
                    "first": s[f][0],
                    "last": s[f][-1],
                    "max": max(s[f]),
                    "slope_per_min": slope_per_min(s["t"], s[f]),
                }
                for f in ("rss", "fds", "lag")
            }
        (out_dir / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(
            f"soak: {duration:.0f} s at {RATE} events/s, {load.sent} sent, "
            f"{len(load.acked)} acknowledged, {report['samples']} samples"
        )
        print(
            f"{'process':18} {'RSS MiB first/last':>20} {'MiB/min':>8} {'fds':>9} "
            f"{'fds/min':>8} {'lag max':>8} {'lag/min':>8}"
        )
        for key, r in report["services"].items():

            def f(x: float | None) -> str:
                return "-" if x is None else f"{x:+.2f}"

            print(
                f"{key:18} {r['rss']['first']:9.1f}/{r['rss']['last']:<9.1f} "
                f"{f(r['rss']['slope_per_min']):>8} "
                f"{int(r['fds']['first']):4d}/{int(r['fds']['last']):<4d} "
                f"{f(r['fds']['slope_per_min']):>8} {r['lag']['max']:8.0f} "
                f"{f(r['lag']['slope_per_min']):>8}"
            )
        print(f"report: {out_dir / 'report.json'}")
        return 0
    finally:
        await system.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
