"""Every operation of every service's OpenAPI document declares what it answers (issue 20):
- each 2xx a named model (a component schema, or an array of one), or no body (204), or
  the media type of what it streams or sends as a file (not JSON); a route that only
  redirects (single sign-on) declares its 3xx;
- every error as RFC 9457 problem details (`Problem` under application/problem+json, 4XX
  and 5XX, and 422 in place of FastAPI's validation error);
- the bearer and API-key security schemes, on every route but the public ones.

KNOWN_GAPS lists the operations whose 2xx is still an untyped object; the test fails for
any other operation without a model, and for a listed one that has got one (so the list
only shrinks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftline_core.openapi import SERVICES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM = {"$ref": "#/components/schemas/Problem"}

# routes anyone may call: probes, login and refresh, and the platform admin's (their own token)
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/auth/login",
    "/v1/auth/refresh",
    "/v1/auth/tenants",
    "/v1/auth/data-keys/rewrap",
}
# single sign-on, and required-MFA enrolment (its own single-use token, X-MFA-Enrollment-Token)
PUBLIC_PREFIXES = ("/v1/auth/oidc/", "/v1/auth/mfa/required/")

# Alertmanager's deleteSilence answers 200 with no body (and no content type), as its
# api/v2/openapi.yaml declares: amtool and the other Alertmanager clients expect exactly that
NO_BODY_2XX = {"DELETE /api/v2/silence/{silence_id}"}

KNOWN_GAPS: set[str] = set()


def operations() -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    out = []
    for service in SERVICES:
        doc = json.loads((DOCS / f"{service}.json").read_text())
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if method in METHODS:
                    out.append((service, method.upper(), path, op, doc))
    return out


def _is_model(schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _is_model(schema.get("items", {}))
    return any(_is_model(s) for s in schema.get("anyOf", schema.get("oneOf", [])))


def untyped_answers(op: dict[str, Any], name: str = "") -> list[str]:
    """The 2xx answers of `op` (named `name`) that declare neither a model nor a non-JSON
    media type."""
    bad = []
    ok = {k: v for k, v in op["responses"].items() if k.startswith("2")}
    redirects = [k for k in op["responses"] if k.startswith("3")]
    assert ok or redirects, "no 2xx answer (nor a redirect) declared"
    for code, answer in ok.items():
        content = answer.get("content", {})
        if code == "204" or name in NO_BODY_2XX:
            assert not content, f"a {code} of {name or 'this operation'} has no body"
            continue
        assert content, f"{code} declares no content"
        for media, obj in content.items():
            if media == "application/json" and not _is_model(obj.get("schema", {})):
                bad.append(f"{code} {media}")
    return bad


OPS = operations()
IDS = [f"{s}:{m} {p}" for s, m, p, _, _ in OPS]


@pytest.mark.parametrize(("service", "method", "path", "op", "doc"), OPS, ids=IDS)
def test_every_operation_declares_its_answers_errors_and_security(
    service: str, method: str, path: str, op: dict[str, Any], doc: dict[str, Any]
) -> None:
    name = f"{method} {path}"
    bad = untyped_answers(op, name)
    if name in KNOWN_GAPS:
        assert bad, f"{name} has a response model now: remove it from KNOWN_GAPS"
    else:
        assert not bad, f"{service}: {name}: 2xx without a response model: {bad}"
    for code in ("4XX", "5XX"):
        assert op["responses"][code]["content"]["application/problem+json"]["schema"] == PROBLEM
    if "422" in op["responses"]:
        assert "HTTPValidationError" not in json.dumps(op["responses"]["422"])
    public = path in PUBLIC or path.startswith(PUBLIC_PREFIXES)
    schemes = {k for req in op.get("security", []) for k in req}
    if public:
        assert not schemes - {"adminToken"}, f"{name} is public but declares {schemes}"
    else:
        assert {"bearer", "apiKey"} <= schemes, f"{name} declares no credentials"
        assert {"bearer", "apiKey"} <= set(doc["components"]["securitySchemes"])


def test_the_problem_model_is_rfc_9457_problem_details() -> None:
    for service in SERVICES:
        doc = json.loads((DOCS / f"{service}.json").read_text())
        problem = doc["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail", "instance"} - {"instance"} <= set(
            problem["properties"]
        )
        assert {"title", "status", "detail"} <= set(problem["required"])
