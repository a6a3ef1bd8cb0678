"""The fuzzing machinery of tests/fuzz: schemathesis cases of one OpenAPI operation, sent
with real credentials to a running service, every check's failure collected (Finding)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from harness import System
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
EXAMPLES = int(os.environ.get("DRIFTLINE_FUZZ_EXAMPLES", "6"))
ADMIN_TOKEN = os.environ.get("DRIFTLINE_INGESTION__ADMIN_TOKEN", "driftline-dev-admin")
BOUNDS = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # a fixed seed: the same requests on every run
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimise
    suppress_health_check=list(HealthCheck),
)
CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection]
# operations that end the credentials they are called with: run with a throwaway session
SESSION_ENDING = {("POST", "/v1/auth/logout"), ("DELETE", "/v1/auth/sessions")}
OPERATOR_ONLY = ("/v1/auth/me", "/v1/auth/logout", "/v1/auth/mfa/", "/v1/auth/sessions")
SCHEMA = {
    "features": [
        {"name": "age", "kind": "numeric"},
        {"name": "plan", "kind": "categorical"},
    ]
}


@dataclass
class Credentials:
    tenant: str
    api_key: str
    model: str
    username: str
    password: str
    ingestion: str
    tokens: list[str] = field(default_factory=list)

    def operator_token(self) -> str:
        """The operator's access token: a new session once the last one was ended (the
        fuzzer logs out and revokes sessions)."""
        if self.tokens:
            r = httpx.get(
                f"{self.ingestion}/v1/auth/me",
                headers={"Authorization": f"Bearer {self.tokens[-1]}"},
                timeout=30,
            )
            if r.status_code == 200:
                return self.tokens[-1]
        r = httpx.post(
            f"{self.ingestion}/v1/auth/login",
            json={"tenant": self.tenant, "username": self.username, "password": self.password},
            timeout=30,
        )
        r.raise_for_status()
        self.tokens.append(str(r.json()["access_token"]))
        return self.tokens[-1]


async def credentials(system: System) -> Credentials:
    """A tenant, an admin API key, a registered model and an admin operator, made as the
    other tests make them (through the public API)."""
    base = system.url("ingestion")
    tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post(
            "/v1/auth/tenants",
            json={"id": tenant, "name": tenant},
            headers={"X-Admin-Token": ADMIN_TOKEN},
        )
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
        h = {"Authorization": f"Bearer {key}"}
        model = "fuzzed"
        r = await c.post(
            "/v1/models",
            json={"id": model, "name": model, "task": "classification", "feature_schema": SCHEMA},
            headers=h,
        )
        assert r.status_code == 201, r.text
        digest = hashlib.sha256(b"fuzzed").hexdigest()
        r = await c.post(
            f"/v1/models/{model}/versions",
            json={"version": "1", "artifact_uri": "s3://fuzz/1", "artifact_sha256": digest},
            headers=h,
        )
        assert r.status_code == 201, r.text
        password = uuid.uuid4().hex
        r = await c.post(
            "/v1/auth/users",
            json={"username": "fuzzer", "password": password, "role": "admin"},
            headers=h,
        )
        assert r.status_code == 201, r.text
    return Credentials(tenant, key, model, "fuzzer", password, base)


def unhandled_errors(url: str) -> float:
    """The sum of the last-resort handler's counter on one service's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("driftline_http_unhandled_errors_total")
    )


@dataclass
class Finding:
    service: str
    operation: str
    mode: str
    message: str


def fuzz_operation(
    service: str,
    url: str,
    op: Any,
    creds: Credentials,
    findings: list[Finding],
) -> int:
    """Every mode's examples of one operation; the number of requests sent."""
    method, path = op.method.upper(), op.path
    sent = 0
    pinned = {"model_id": creds.model} if "{model_id}" in path else None
    runs: list[tuple[str, GenerationMode, dict[str, Any] | None]] = [
        ("positive", GenerationMode.POSITIVE, None),
        ("negative", GenerationMode.NEGATIVE, None),
    ]
    if pinned:
        runs.insert(1, ("positive, real model", GenerationMode.POSITIVE, pinned))
    seen: set[str] = set()

    def auth_headers() -> dict[str, str]:
        if (method, path) in SESSION_ENDING or path.startswith(OPERATOR_ONLY):
            return {"Authorization": f"Bearer {creds.operator_token()}"}
        return {"Authorization": f"Bearer {creds.api_key}"}

    def check(case: Any, label: str, mode: GenerationMode) -> None:
        nonlocal sent
        headers = auth_headers()
        if mode is GenerationMode.POSITIVE and "x-admin-token" in {
            k.lower() for k in (case.headers or {})
        }:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "x-admin-token"}
            headers["X-Admin-Token"] = ADMIN_TOKEN
        response = case.call(base_url=url, headers=headers, timeout=60)
        sent += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as e:  # every failure is a finding, all reported
            key = f"{type(e).__name__}:{str(e)[:200]}"
            if key not in seen:
                seen.add(key)
                findings.append(Finding(service, f"{method} {path}", label, _short(e)))

    for label, mode, path_parameters in runs:
        strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        try:
            BOUNDS(given(case=strategy)(runner(check, label, mode)))()
        except Unsatisfiable:  # nothing to negate (an operation without parameters)
            assert mode is GenerationMode.NEGATIVE, (method, path, label)
    return sent


def runner(
    check: Callable[[Any, str, GenerationMode], None], label: str, mode: GenerationMode
) -> Callable[[Any], None]:
    def run(case: Any) -> None:
        check(case, label, mode)

    return run


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) < 1500 else text[:1500] + " ..."


def fuzz_service(
    service: str,
    url: str,
    creds: Credentials,
    findings: list[Finding],
    document: dict[str, Any] | None = None,
) -> int:
    """Every operation of the service's published document (or of `document`)."""
    schema = (
        schemathesis.openapi.from_dict(document)
        if document is not None
        else schemathesis.openapi.from_path(str(DOCS / f"{service}.json"))
    )
    sent = 0
    for result in schema.get_all_operations():
        op = result.ok()
        sent += fuzz_operation(service, url, op, creds, findings)
    return sent


def describe(findings: list[Finding]) -> str:
    return "\n\n".join(f"[{f.service}] {f.operation} ({f.mode}):\n{f.message}" for f in findings)
