"""Fixtures of the fuzz tests: every service as a process (tests/e2e/harness.py's System, on
the run's own broker and databases) and a tenant with real credentials."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # harness.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # fuzzing.py

from harness import System


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    s = System(stack, tmp_path_factory.mktemp("fuzz"))
    try:
        await s.start()
        yield s
    finally:
        await s.stop()
