"""Fixtures of the whole-system tests: the System (every service as a process on the run's
own broker and databases, see harness.py), a tenant, and a signature-verifying webhook
receiver."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py (importlib import mode)

from harness import Receiver, System, Tenant


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    """Every service, started once per test module; stopped and cleaned up after it. On a
    failure to start, the error carries the last lines of the service's log."""
    s = System(stack, tmp_path_factory.mktemp("e2e"))
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


@pytest.fixture(scope="module")
async def tenant(system: System) -> Tenant:
    return await Tenant.create(system)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1).start()
    yield r
    r.stop()
