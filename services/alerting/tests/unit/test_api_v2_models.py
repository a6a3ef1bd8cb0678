"""The response models that alerting's published OpenAPI document declares for Alertmanager's
API v2 (docs/openapi/alerting.json) are Alertmanager's own (api/v2/openapi.yaml, the
fixture): for every operation's 200, the same properties with the same types, enums,
formats and item schemas, and at least Alertmanager's required members. Clients generated
from either document read the same shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
OURS = json.loads((ROOT / "docs" / "openapi" / "alerting.json").read_text())
THEIRS = yaml.safe_load(
    (Path(__file__).parent.parent / "fixtures" / "alertmanager" / "openapi.yaml").read_text()
)

# (method, Alertmanager's path, ours)
OPERATIONS = [
    ("get", "/status", "/api/v2/status"),
    ("get", "/receivers", "/api/v2/receivers"),
    ("get", "/alerts", "/api/v2/alerts"),
    ("get", "/alerts/groups", "/api/v2/alerts/groups"),
    ("get", "/silences", "/api/v2/silences"),
    ("post", "/silences", "/api/v2/silences"),
    ("get", "/silence/{silenceID}", "/api/v2/silence/{silence_id}"),
]


def canonical(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """What a schema allows, in one form: refs resolved, allOf merged, titles, descriptions
    and defaults dropped, `additionalProperties: true` (allowed anyway) left out."""
    if "$ref" in schema:
        return canonical(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    required: set[str] = set()
    for part in [schema, *schema.get("allOf", [])]:
        if "$ref" in part:
            part = canonical(part, defs)
            props.update(part.get("properties", {}))
            required |= set(part.get("required", []))
            continue
        for k in ("type", "format", "minItems"):
            if k in part:
                out[k] = part[k]
        if "enum" in part:
            out["enum"] = sorted(part["enum"])
        if "items" in part:
            out["items"] = canonical(part["items"], defs)
        extra = part.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = canonical(extra, defs)
        props.update({k: canonical(v, defs) for k, v in part.get("properties", {}).items()})
        required |= set(part.get("required", []))
    if props or required:
        out["type"] = "object"
        out["properties"] = props
        out["required"] = sorted(required)
    return out


def differences(ours: dict[str, Any], theirs: dict[str, Any], where: str = "$") -> list[str]:
    out = []
    for k in ("type", "format", "enum", "minItems"):
        if ours.get(k) != theirs.get(k):
            out.append(f"{where}: {k} {ours.get(k)!r}, Alertmanager's {theirs.get(k)!r}")
    for k in ("items", "additionalProperties"):
        if (k in ours) != (k in theirs):
            out.append(f"{where}: {k} only in {'ours' if k in ours else 'Alertmanager'}")
        elif k in ours:
            out += differences(ours[k], theirs[k], f"{where}[]" if k == "items" else where)
    mine, its = ours.get("properties", {}), theirs.get("properties", {})
    for name in sorted(set(mine) | set(its)):
        here = f"{where}.{name}"
        if name not in mine:
            out.append(f"{here}: missing")
        elif name not in its:
            out.append(f"{here}: not Alertmanager's")
        else:
            out += differences(mine[name], its[name], here)
    lacking = set(theirs.get("required", [])) - set(ours.get("required", []))
    if lacking:
        out.append(f"{where}: not required: {sorted(lacking)}")
    return out


@pytest.mark.parametrize(("method", "theirs", "ours"), OPERATIONS)
def test_each_v2_answer_is_alertmanagers_definition(method: str, theirs: str, ours: str) -> None:
    mine = OURS["paths"][ours][method]["responses"]["200"]["content"]["application/json"]
    its = THEIRS["paths"][theirs][method]["responses"]["200"]["schema"]
    a = canonical(mine["schema"], OURS["components"]["schemas"])
    b = canonical(its, THEIRS["definitions"])
    assert a.get("type") in ("object", "array"), a
    assert differences(a, b) == []


def test_delete_silence_answers_200_without_a_body_as_alertmanager() -> None:
    ok = OURS["paths"]["/api/v2/silence/{silence_id}"]["delete"]["responses"]["200"]
    assert "content" not in ok
    assert "schema" not in THEIRS["paths"]["/silence/{silenceID}"]["delete"]["responses"]["200"]


def test_the_comparison_can_fail() -> None:
    its = canonical({"$ref": "#/definitions/gettableSilence"}, THEIRS["definitions"])
    mine = json.loads(json.dumps(its))
    mine["properties"]["status"]["properties"]["state"]["enum"] = ["active"]
    del mine["properties"]["comment"]
    mine["required"].remove("updatedAt")
    mine["properties"]["extra"] = {"type": "string"}
    assert differences(mine, its) == [
        "$.comment: missing",
        "$.extra: not Alertmanager's",
        "$.status.state: enum ['active'], Alertmanager's ['active', 'expired', 'pending']",
        "$: not required: ['updatedAt']",
    ]
