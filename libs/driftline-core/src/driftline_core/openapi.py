"""The services' OpenAPI documents, published as files (docs/openapi/<service>.json).

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

__all__ = ["SERVICES", "render", "render_all", "service_app", "write_all"]

# the five services and their packages, in the order the docs list them
SERVICES: dict[str, str] = {
    "ingestion": "driftline_ingestion",
    "drift-detection": "driftline_drift_detection",
    "alerting": "driftline_alerting",
    "audit": "driftline_audit",
    "compliance-report": "driftline_compliance_report",
}


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
