"""Helpers of the fault suite: the outage length, the figures file."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = float(os.environ.get("DRIFTLINE_FAULT_OUTAGE_S", "10"))
RESULTS = Path(os.environ.get("DRIFTLINE_FAULT_RESULTS", str(ROOT / ".stack" / "faults")))


def record(fault: str, figures: dict[str, Any]) -> None:
    """Write what a fault test measured (and print it, for the test log)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {"fault": fault, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    (RESULTS / f"{fault}.json").write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    print(f"\n[fault {fault}] {orjson.dumps(figures).decode()}")
