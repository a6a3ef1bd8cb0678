"""docs/openapi/<service>.json are the services' own OpenAPI documents: a stale copy fails
here (`make schemas` rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path

from driftline_core.openapi import SERVICES, render_all

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"


def test_committed_openapi_documents_are_current() -> None:
    rendered = render_all()
    assert sorted(p.name for p in DOCS.glob("*.json")) == sorted(rendered)
    stale = [name for name, text in rendered.items() if (DOCS / name).read_text() != text]
    assert not stale, f"stale: {stale}; run make schemas"


def test_every_service_has_a_document_with_its_routes() -> None:
    for name in SERVICES:
        doc = json.loads((DOCS / f"{name}.json").read_text())
        assert doc["openapi"].startswith("3.")
        assert doc["info"]["title"].startswith("Driftline ")
        assert {"/healthz", "/readyz"} <= set(doc["paths"]), name
