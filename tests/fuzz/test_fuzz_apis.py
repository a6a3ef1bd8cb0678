"""Issue 18 item 2: schemathesis against every service's published OpenAPI document
(docs/openapi/<service>.json, which tests/unit/test_openapi_documents.py keeps equal to the
apps'), sent to the services running as processes on the real stack, with real credentials.

For every operation, a bounded number of generated requests (fixed seed through Hypothesis'
`derandomize`): positive ones (valid by the schema, once with random path parameters and
once naming the tenant's real model), and negative ones (invalid by the schema). Checks:
- `not_a_server_error`: no 5xx;
- `response_schema_conformance`: every answer matches what the operation declares (2xx
  models, Problem for errors);
- `negative_data_rejection`: a request that violates the schema is refused with a 4xx.
Every failure of every operation is collected and reported together. The test also fails if
any service's last-resort handler (`driftline_http_unhandled_errors_total`) counted an error
during the run.

Bounds: DRIFTLINE_FUZZ_EXAMPLES (default 6) examples per operation and mode."""

from __future__ import annotations

import asyncio
import time

import pytest
from fuzzing import Credentials, Finding, credentials, describe, fuzz_service, unhandled_errors
from harness import SERVICES, System

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
async def creds(system: System) -> Credentials:
    return await credentials(system)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("service", SERVICES)
async def test_generated_requests_get_no_5xx_and_answers_as_declared(system, creds, service):
    url = system.url(service)
    before = await asyncio.to_thread(unhandled_errors, url)
    findings: list[Finding] = []
    t0 = time.monotonic()
    sent = await asyncio.to_thread(fuzz_service, service, url, creds, findings)
    moved = await asyncio.to_thread(unhandled_errors, url) - before
    print(f"{service}: {sent} requests in {time.monotonic() - t0:.0f} s, {len(findings)} findings")
    assert sent > 0
    report = f"{service}: the last-resort handler counted {moved}; {len(findings)} findings:\n"
    assert not findings, report + describe(findings)
    assert moved == 0, report
