"""Export every topic's JSON Schema so producers in other languages can validate.

`python -m driftline_core.events.schemas docs/schemas` writes one file per topic and an
index; a unit test fails when the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .catalogue import TOPICS

__all__ = ["render_all", "write_all"]


def render_all() -> dict[str, str]:
    files: dict[str, str] = {}
    index: list[dict[str, Any]] = []
    for spec in TOPICS:
        schema = spec.model.model_json_schema(mode="validation")
        schema["$id"] = f"https://driftline.dev/schemas/{spec.name}.json"
        schema["x-topic"] = {
            "name": spec.name,
            "key": spec.key,
            "partitions": spec.partitions,
            "retention_ms": spec.retention_ms,
            "cleanup_policy": spec.cleanup_policy,
        }
        files[f"{spec.name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        index.append(
            {
                "topic": spec.name,
                "schema": f"{spec.name}.json",
                "key": spec.key,
                "description": spec.description,
            }
        )
    files["index.json"] = json.dumps(index, indent=2) + "\n"
    return files


def write_all(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = target / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    for p in write_all(out):
        sys.stderr.write(f"wrote {p}\n")
