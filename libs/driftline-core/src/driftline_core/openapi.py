"""The services' OpenAPI documents: what every one declares, and their published files.

`install_openapi(app)` (called by `create_service_app`) completes FastAPI's document: every
operation declares its errors as RFC 9457 problem details (`Problem`, under
`application/problem+json`, for 4XX and 5XX, and for 422 in place of FastAPI's validation
error model), which is what `driftline_core.problems` makes every error body.

The published files (docs/openapi/<service>.json):

`python -m driftline_core.openapi docs/openapi ingestion=driftline_ingestion ...` builds each
named service's app the way its `main.py` does (`create_app(settings, build(settings))`, with
adapters unconnected: nothing is contacted) and writes `app.openapi()` with sorted keys, so
the files change only when an API does. The settings are the defaults: the environment's
`DRIFTLINE_*` variables and secret files are ignored while rendering, so every machine
writes the same bytes. A unit test fails when the committed files are stale (`make schemas`
rewrites them).

The services are named here only as data (name -> package): they are imported by name when
a document is rendered, never when this module is (libraries do not depend on services).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

from fastapi import FastAPI
from pydantic import BaseModel

from .problems import PROBLEM_MEDIA_TYPE, Problem

__all__ = [
    "PROBLEM_TOO",
    "SERVICES",
    "install_openapi",
    "raw_body",
    "render",
    "render_all",
    "service_app",
    "with_problems",
    "write_all",
]

# the five services and their packages, in the order the docs list them
SERVICES: dict[str, str] = {
    "ingestion": "driftline_ingestion",
    "drift-detection": "driftline_drift_detection",
    "alerting": "driftline_alerting",
    "audit": "driftline_audit",
    "compliance-report": "driftline_compliance_report",
}


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


# a response's `content` beside its model: the same status may also be answered as a problem
# (a 413 for a body too large to read, beside a batch whose every event was too large)
PROBLEM_TOO: dict[str, Any] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
_MODELS_KEY = "x-driftline-models"  # moved into components.schemas by with_problems


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    doc = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(doc.pop("$defs", {}))
    schemas[model.__name__] = doc
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def raw_body(
    *,
    json: type[BaseModel] | None = None,
    json_array: bool = False,
    ndjson: type[BaseModel] | None = None,
    yaml: type[BaseModel] | None = None,
    content: dict[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """`openapi_extra` declaring the body of a route that reads its request itself (NDJSON
    events, a YAML configuration, a CloudEvent, a file upload): `json` (one object, or an
    array of them too with `json_array`), `ndjson` (lines of that model), `yaml`, or raw
    `content` (media type -> media type object)."""
    schemas: dict[str, Any] = {}
    media: dict[str, Any] = {}
    if json is not None:
        one = _schema(json, schemas)
        media["application/json"] = {
            "schema": {"anyOf": [one, {"type": "array", "items": one}]} if json_array else one
        }
    if ndjson is not None:
        _schema(ndjson, schemas)
        media["application/x-ndjson"] = {
            "schema": {
                "type": "string",
                "description": f"one {ndjson.__name__} JSON object per line",
            }
        }
    if yaml is not None:
        media["application/yaml"] = {"schema": _schema(yaml, schemas)}
    media.update(content or {})
    body: dict[str, Any] = {"required": True, "content": media}
    if description:
        body["description"] = description
    return {"requestBody": body, _MODELS_KEY: schemas}


def with_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with Problem declared for every operation's 422, 4XX and 5XX (responses a route
    declares itself, such as /readyz's 503 or Alertmanager's string errors, are kept)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if method not in _METHODS:
                continue
            schemas.update(op.pop(_MODELS_KEY, {}))
            responses = op.setdefault("responses", {})
            got = responses.get("422", {}).get("content", {}).get("application/json", {})
            if got.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                responses["422"] = _problem("the request is not valid (every failed check)")
            responses.setdefault("4XX", _problem("the request was refused, with the reason"))
            responses.setdefault("5XX", _problem("a server error or a dependency unavailable"))
    text = str(doc["paths"])
    for name in _FASTAPI_VALIDATION:
        if f"/{name}'" not in text:
            schemas.pop(name, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` answer the completed document (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@contextlib.contextmanager
def default_environment() -> Iterator[None]:
    """No `DRIFTLINE_*` variable and no secret files while settings are read."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("DRIFTLINE_")}
    for k in saved:
        del os.environ[k]
    os.environ["DRIFTLINE_SECRETS_DIR"] = ""  # an empty value turns secret files off
    try:
        yield
    finally:
        del os.environ["DRIFTLINE_SECRETS_DIR"]
        os.environ.update(saved)


def service_app(package: str) -> FastAPI:
    """The app of `package` (its `app` module's `create_app` and `build`), default settings."""
    module: Any = importlib.import_module(f"{package}.app")
    settings_type = get_type_hints(module.create_app)["settings"]
    with default_environment():
        settings = settings_type()
        app = module.create_app(settings, module.build(settings))
    assert isinstance(app, FastAPI)
    return app


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all(services: dict[str, str] = SERVICES) -> dict[str, str]:
    """File name -> text, one document per service."""
    return {f"{name}.json": render(service_app(pkg)) for name, pkg in services.items()}


def write_all(target: Path, services: dict[str, str] = SERVICES) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all(services).items():
        path = target / name
        path.write_text(text)
        written.append(path)
    return written


def _parse(args: list[str]) -> dict[str, str]:
    pairs = [a.split("=", 1) for a in args]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit("usage: python -m driftline_core.openapi DIR [service=package ...]")
    return {name: pkg for name, pkg in pairs} or SERVICES


if __name__ == "__main__":  # pragma: no cover
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi")
    for p in write_all(out, _parse(sys.argv[2:])):
        sys.stderr.write(f"wrote {p}\n")
