"""Fixtures of the fault suite (issue 18, decision 39): the e2e harness's System (every
service as a process on the run's own broker and databases, tests/e2e/harness.py), with
replicas, faults injected one at a time, and the figures each fault test measured written
to `.stack/faults/<fault>.json` (docs/reliability.md quotes them).

Outages are bounded: `DRIFTLINE_FAULT_OUTAGE_S` (10 s by default, in CI; `make chaos` sets
30 s, the length issue 18 names)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))  # harness.py (importlib import mode)
sys.path.insert(0, str(HERE))  # faultlib.py


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.faults)
