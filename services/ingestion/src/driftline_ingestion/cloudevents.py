"""KServe / Seldon inference-logger CloudEvents: the request and the response arrive as two
events with the same id; Driftline joins them (atomically, in Redis, within a TTL) into one
prediction event per instance. Binary mode (`ce-*` headers) and structured mode
(`application/cloudevents+json`) are accepted; payloads in the V1 (`instances` /
`predictions`) and V2 / Open Inference Protocol (`inputs` / `outputs`) formats.

Point the logger at `/v1/events/cloudevents?model_id=...&model_version=...&api_key=...`
(model and version default to the `inferenceservicename` and `endpoint` extensions).
Feature names: V1 objects and V2 per-feature tensors carry them; for rows of values the
registered schema's feature order is used."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from driftline_core.auth import Authenticator, Principal

from .http import read_body
from .intake import Intake
from .ratelimit import RateLimiter, enforce
from .registry import Registry
from .strings import identifier_problem, may_hold_control, refuse_unstorable_request

__all__ = ["cloudevents_router", "join_rows"]

_NAMESPACE = uuid.UUID("6f7c9a52-5b0c-4d59-9b7e-2f61f3b0c1d4")

# If the other half is waiting, take it (and delete it); otherwise leave ours. Atomic.
_JOIN = """
local other = redis.call('GET', KEYS[2])
if other then
  redis.call('DEL', KEYS[2])
  return other
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return false
"""


def _kind(ce_type: str) -> str:
    t = ce_type.lower()
    if t.endswith("inference.request"):
        return "request"
    if t.endswith("inference.response"):
        return "response"
    raise HTTPException(
        422,
        f"unsupported CloudEvent type {ce_type!r}: expected "
        "*.inference.request or *.inference.response",
    )


def _tensor_rows(tensors: list[dict[str, Any]]) -> tuple[list[str] | None, list[list[Any]]]:
    """V2 tensors -> (names or None, rows). One [N, F] tensor gives unnamed rows; several
    [N] or [N, 1] tensors give one named column each."""
    if len(tensors) == 1:
        t = tensors[0]
        shape, data = t.get("shape", []), t.get("data", [])
        if len(shape) == 2 and shape[1] > 1:
            width = shape[1]
            flat = [x for row in data for x in row] if data and isinstance(data[0], list) else data
            return None, [flat[i : i + width] for i in range(0, len(flat), width)]
        return [t.get("name", "output-0")], [[x] for x in _flatten(data)]
    names = [t["name"] for t in tensors]
    columns = [_flatten(t.get("data", [])) for t in tensors]
    return names, [list(row) for row in zip(*columns, strict=True)]


def _flatten(data: list[Any]) -> list[Any]:
    return [x[0] if isinstance(x, list) and len(x) == 1 else x for x in data]


def join_rows(
    request: dict[str, Any], response: dict[str, Any], feature_order: list[str]
) -> list[tuple[dict[str, Any], Any, dict[str, float] | None]]:
    """(features, prediction, probabilities) per instance."""
    if "instances" in request:
        inputs = request["instances"]
        feats = [
            dict(x) if isinstance(x, dict) else dict(zip(feature_order, x, strict=False))
            for x in inputs
        ]
    elif "inputs" in request:
        names, tensor_rows = _tensor_rows(request["inputs"])
        feats = [dict(zip(names or feature_order, row, strict=False)) for row in tensor_rows]
    else:
        raise HTTPException(422, "the request payload has neither `instances` nor `inputs`")
    probs: list[dict[str, float] | None] = [None] * len(feats)
    if "predictions" in response:
        preds = list(response["predictions"])
    elif "outputs" in response:
        outs = response["outputs"]
        main = next((o for o in outs if o.get("name") in ("predict", "label", "output-0")), outs[0])
        preds = _flatten(main.get("data", []))
        proba = next((o for o in outs if "proba" in o.get("name", "")), None)
        if proba is not None:
            _, prow = _tensor_rows([proba])
            probs = [{str(k): float(v) for k, v in enumerate(r)} for r in prow]
    else:
        raise HTTPException(422, "the response payload has neither `predictions` nor `outputs`")
    if len(preds) != len(feats):
        raise HTTPException(422, f"{len(feats)} instances but {len(preds)} predictions")
    rows: list[tuple[dict[str, Any], Any, dict[str, float] | None]] = []
    for f, p, pr in zip(feats, preds, probs, strict=True):
        prediction = p
        if isinstance(p, list) and pr is None:  # a probability vector as the prediction
            pr = {str(k): float(v) for k, v in enumerate(p)}
            prediction = max(range(len(p)), key=lambda k: p[k])
        rows.append((f, prediction, pr))
    return rows


def cloudevents_router(
    auth: Authenticator,
    intake: Intake,
    registry: Registry,
    redis: aioredis.Redis,
    limiter: RateLimiter,
    max_bytes: int,
    join_ttl_s: int,
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/events", tags=["events"], dependencies=[Depends(refuse_unstorable_request)]
    )
    join = redis.register_script(_JOIN)
    ingest = Depends(auth.require("ingest"))

    @r.post("/cloudevents")
    async def cloudevent(request: Request, who: Principal = ingest) -> JSONResponse:
        body = await read_body(request, max_bytes)
        h = request.headers
        try:
            if h.get("content-type", "").startswith("application/cloudevents+json"):
                envelope = orjson.loads(body)
                ce = {k: str(v) for k, v in envelope.items() if k != "data"}
                data = envelope.get("data") or {}
            else:
                ce = {k[3:]: v for k, v in h.items() if k.lower().startswith("ce-")}
                data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise HTTPException(400, f"malformed JSON: {e}") from e
        for required in ("id", "type"):
            if not ce.get(required):
                raise HTTPException(400, f"missing CloudEvent attribute ce-{required}")
        kind = _kind(ce["type"])
        model_id = request.query_params.get("model_id") or ce.get("inferenceservicename")
        version = (
            request.query_params.get("model_version")
            or ce.get("endpoint")
            or ce.get("component")
            or "default"
        )
        if not model_id:
            raise HTTPException(422, "no model: add ?model_id= to the logger URL")
        ids = (("ce-id", ce["id"]), ("model_id", model_id), ("model_version", version))
        for name, value in ids:
            if why := identifier_problem(name, value):
                raise HTTPException(422, why)
        schema = await registry.compiled_schema(who.tenant_id, model_id)
        if schema is None:
            raise HTTPException(404, f"unknown model {model_id!r}")
        half = orjson.dumps({"kind": kind, "data": data, "time": ce.get("time")})
        base = f"dl:ce:{who.tenant_id}:{model_id}:{ce['id']}"
        other = "response" if kind == "request" else "request"
        found = await join(keys=[f"{base}:{kind}", f"{base}:{other}"], args=[half, join_ttl_s])
        if found is None:
            return JSONResponse(
                {"status": "waiting for the matching " + other, "ce_id": ce["id"]}, 202
            )
        mate = orjson.loads(found)
        req = data if kind == "request" else mate["data"]
        resp = data if kind == "response" else mate["data"]
        rows = join_rows(req, resp, [f.name for f in schema.schema.features])
        await enforce(limiter, who.key_id, len(rows))
        items = [
            {
                "event_id": str(uuid.uuid5(_NAMESPACE, f"{who.tenant_id}:{ce['id']}:{i}")),
                "model_id": model_id,
                "model_version": version,
                "features": f,
                "prediction": p,
                "probabilities": pr,
                **({"timestamp": ce["time"]} if ce.get("time") else {}),
            }
            for i, (f, p, pr) in enumerate(rows)
        ]
        result = await intake.predictions(
            who, items, scan=may_hold_control(body) or may_hold_control(found)
        )
        return JSONResponse(
            {"status": "joined", "ce_id": ce["id"], **result.body()}, result.status_code
        )

    return r
