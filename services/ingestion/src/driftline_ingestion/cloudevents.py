"""KServe / Seldon inference-logger CloudEvents: the request and the response arrive as two
events; Driftline joins them (atomically, in Redis, within a TTL) into one prediction event
per instance (a batch of N rows gives N events). Binary mode (`ce-*` headers) and
structured mode (`application/cloudevents+json`, `data` or `data_base64`) are accepted.

What the loggers send (their sources: kserve pkg/logger/worker.go, Seldon Core 1
executor/logger/worker.go, Seldon Core 2's MLServer response headers):

- KServe: ce-type `org.kubeflow.serving.inference.request` / `.response`; the two halves
  share `ce-id` (the request id); the model is `ce-inferenceservicename`, the version
  `ce-endpoint` (default / canary) or `ce-component`.
- Seldon Core 1 (executor): ce-type `io.seldon.serving.inference.request` / `.response`;
  each half has its own `ce-id`, they share `ce-requestid` (the puid); the model is
  `ce-modelid` (the graph node), else `ce-inferenceservicename` (the SeldonDeployment);
  the version `ce-endpoint` (the predictor).
- Seldon Core 2 (MLServer's CloudEvent headers): the same ce-types, `ce-requestid` =
  `ce-id`, `ce-modelid` `iris_1` (model `iris`, version 1, when `iris_1` itself is not
  registered), `ce-inferenceservicename` the server; the version is the OIP response's
  `model_version`.

The first candidate model that is registered is used; `?model_id=` and `?model_version=` on
the logger URL override them. Payloads: V1 (`instances` / `predictions`), V2 / Open
Inference Protocol (`inputs` / `outputs` tensors: name, shape, datatype, data, flat or
nested), and SeldonMessage (`data` with `names` and `ndarray` or `tensor` {shape, values},
`strData`, `jsonData`). Feature names: V1 objects, V2 per-feature tensors and a
SeldonMessage's `names` carry them; for rows of values the registered schema's feature
order is used.

**No half expires silently.** A waiting half is stored under its key and in the sorted set
`dl:ce:pending` scored by its deadline (now + TTL). Every ingestion process sweeps that set
once a second: one Lua call claims the halves past their deadline (moved to `dl:ce:claimed`
with a lease, so with two replicas each half is claimed once), the process writes each to
`driftline.dlq.v1` (`unmatched_cloudevent`, with the reason and the half as payload) and
counts it in `driftline_cloudevents_unmatched_total{kind, reason}`, then deletes it. A
process that dies after claiming leaves the lease to run out: another process claims the
half again (at least once in the DLQ). A half whose mate arrives after its deadline is not
joined with it: it waits, and expires, on its own."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import re
import time
import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field

from driftline_core.auth import Authenticator, Principal
from driftline_core.events import DeadLetter, encode
from driftline_core.kafka import EventProducer
from driftline_core.openapi import PROBLEM_TOO, raw_body

from .http import read_body
from .intake import Intake
from .ratelimit import RateLimiter, enforce
from .registry import Registry
from .responses import CloudEventOut
from .strings import identifier_problem, may_hold_control, refuse_unstorable_request

__all__ = ["CloudEventJoins", "cloudevents_router", "join_rows"]

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f7c9a52-5b0c-4d59-9b7e-2f61f3b0c1d4")
PENDING, CLAIMED = "dl:ce:pending", "dl:ce:claimed"

# KEYS: ours, the other half's, pending. If the other half is pending, take it (and forget
# it); otherwise store ours (its key outlives the deadline, so the sweep can read it) and
# note its deadline. Atomic.
_JOIN = """
if redis.call('ZSCORE', KEYS[3], KEYS[2]) then
  local other = redis.call('GET', KEYS[2])
  redis.call('ZREM', KEYS[3], KEYS[2])
  redis.call('DEL', KEYS[2])
  if other then return other end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], ARGV[3], KEYS[1])
return false
"""
# KEYS: pending, claimed. ARGV: now, lease deadline, limit. Claims the halves past their
# deadline (and those whose earlier claim's lease ran out): member, value ('' if gone).
_CLAIM = """
local out = {}
for _, z in ipairs(KEYS) do
  local due = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, m in ipairs(due) do
    redis.call('ZREM', z, m)
    redis.call('ZADD', KEYS[2], ARGV[2], m)
    table.insert(out, m)
    table.insert(out, redis.call('GET', m) or '')
  end
end
return out
"""
# KEYS: pending, claimed, then the members dead-lettered: forget them (a half stored anew
# under the same key meanwhile is pending again: its value stays).
_SETTLE = """
for i = 3, #KEYS do
  redis.call('ZREM', KEYS[2], KEYS[i])
  if not redis.call('ZSCORE', KEYS[1], KEYS[i]) then redis.call('DEL', KEYS[i]) end
end
return #KEYS - 2
"""


class CloudEventJoins:
    """The pending halves in Redis: offered, joined, and swept to the DLQ once expired."""

    def __init__(
        self,
        redis: aioredis.Redis,
        producer: EventProducer,
        registry: CollectorRegistry | None,
        ttl_s: float,
        *,
        sweep_interval_s: float = 1.0,
        lease_s: float = 30.0,
        batch: int = 200,
    ) -> None:
        self.redis, self.producer, self.ttl_s = redis, producer, ttl_s
        self.sweep_interval_s, self.lease_s, self.batch = sweep_interval_s, lease_s, batch
        self._join = redis.register_script(_JOIN)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)
        self.unmatched = Counter(
            "driftline_cloudevents_unmatched",
            "CloudEvent request or response halves whose other half did not arrive within "
            "the join TTL, each dead-lettered (reason: expired; payload_lost if its stored "
            "copy was gone)",
            ["kind", "reason"],
            registry=registry,
        )
        self.expired = 0  # dead-lettered by this process (tests)
        self._task: asyncio.Task[None] | None = None

    async def offer(self, key: str, other: str, half: bytes) -> bytes | None:
        """Store this half, or take its waiting mate (then neither is stored)."""
        deadline = time.time() + self.ttl_s
        keep = int(self.ttl_s + max(self.lease_s, 60) * 10)  # the sweep reads it after expiry
        found = await self._join(keys=[key, other, PENDING], args=[half, keep, deadline])
        return found if isinstance(found, bytes) else None

    async def sweep(self, now: float | None = None) -> int:
        """Dead-letter the halves past their deadline; how many."""
        now = time.time() if now is None else now
        got = await self._claim(keys=[PENDING, CLAIMED], args=[now, now + self.lease_s, self.batch])
        if not got:
            return 0
        members = [m.decode() for m in got[0::2]]
        letters = [self._letter(m, v) for m, v in zip(members, got[1::2], strict=True)]
        limit = self.producer.max_record_bytes
        fitted = [d.shrunk(limit) for d, _, _ in letters]
        await self.producer.send_records(DeadLetter.TOPIC, [(d.key(), encode(d)) for d in fitted])
        await self._settle(keys=[PENDING, CLAIMED, *members], args=[])
        for _, kind, reason in letters:
            self.unmatched.labels(kind, reason).inc()
        self.expired += len(letters)
        log.warning(
            "CloudEvent halves expired without their mate; dead-lettered",
            extra={"halves": len(letters)},
        )
        return len(letters)

    def _letter(self, member: str, value: bytes) -> tuple[DeadLetter, str, str]:
        # dl:ce:<tenant>:<model>:<pair>:<kind>; tenant ids and the kind hold no ':'
        _, _, tenant, rest = member.split(":", 3)
        kind = rest.rsplit(":", 1)[-1]
        other = "response" if kind == "request" else "request"
        try:
            half = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            half = None
        if not isinstance(half, dict):
            reason = "payload_lost"
            why = (
                f"a CloudEvent {kind} waited for its {other} past the join TTL "
                f"({self.ttl_s:g} s); its stored copy was gone (Redis evicted or lost it)"
            )
            return self._dead(tenant, member, why, b""), kind, reason
        model, pair = half.get("model", "?"), half.get("pair", "?")
        why = (
            f"the CloudEvent {kind} {pair!r} of model {model!r} got no matching {other} within "
            f"{self.ttl_s:g} s (ce-type {half.get('ce', {}).get('type', '?')!r}): not joined, "
            "no prediction was recorded; check that the logger sends both (mode: all)"
        )
        return self._dead(tenant, member, why, value), kind, "expired"

    @staticmethod
    def _dead(tenant: str, member: str, reason: str, value: bytes) -> DeadLetter:
        payload, encoding = DeadLetter.wrap_payload(value)
        return DeadLetter(
            tenant_id=tenant,
            reason=reason,
            error_type="unmatched_cloudevent",
            source="ingestion",
            source_key=member,
            payload=payload,
            payload_encoding=encoding,
        )

    # --- the sweep, a component of the service -------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                while await self.sweep() >= self.batch:
                    pass  # more are due: go on at once
            except Exception:  # Redis or Kafka away: the halves stay claimed, retried later
                log.exception("CloudEvent expiry sweep failed; retried")
            await asyncio.sleep(self.sweep_interval_s)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# --- attributes -------------------------------------------------------------------------


def _kind(ce_type: str) -> str:
    t = ce_type.lower()
    if t.endswith("inference.request"):
        return "request"
    if t.endswith("inference.response"):
        return "response"
    raise HTTPException(
        422,
        f"unsupported CloudEvent type {ce_type!r}: expected *.inference.request or "
        "*.inference.response (org.kubeflow.serving.* from KServe, io.seldon.serving.* from "
        "Seldon Core)",
    )


_CORE2_NAME = re.compile(r"^(?P<model>.+)_(?P<version>\d+)$")


def model_candidates(query: str | None, ce: dict[str, str]) -> list[tuple[str, str | None]]:
    """(model id, version it implies) to try in order: the URL's, else Seldon's
    `ce-modelid` (and, Seldon Core 2's `<model>_<version>`, the model it names), else the
    KServe InferenceService or SeldonDeployment name."""
    if query:
        return [(query, None)]
    out: list[tuple[str, str | None]] = []
    if mid := ce.get("modelid"):
        out.append((mid, None))
        if m := _CORE2_NAME.match(mid):
            out.append((m["model"], m["version"]))
    if isvc := ce.get("inferenceservicename"):
        out.append((isvc, None))
    return list(dict.fromkeys(out))


# --- payloads ---------------------------------------------------------------------------


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for x in data:
        out.extend(_flat(x) if isinstance(x, list) else [x])
    return out


def _shaped(what: str, shape: Any, data: Any) -> tuple[list[int], list[Any]]:
    """A tensor's shape and flat values, checked against each other."""
    flat = _flat(data)
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        shape = [len(flat)]
    if math.prod(shape) != len(flat):
        raise HTTPException(
            422, f"{what}: shape {shape} holds {math.prod(shape)} values, data has {len(flat)}"
        )
    return shape, flat


def _rows(shape: list[int], flat: list[Any]) -> list[list[Any]]:
    """[N, F...] as N rows of F values (a 1-d tensor: N rows of one)."""
    n = shape[0] if shape else 1
    width = len(flat) // n if n else 0
    return [flat[i * width : (i + 1) * width] for i in range(n)]


def _tensor_rows(tensors: list[Any], what: str) -> tuple[list[str] | None, list[list[Any]]]:
    """OIP tensors -> (names or None, rows). One [N, F] tensor (F > 1) gives unnamed rows;
    several [N] or [N, 1] tensors (MLServer's pandas codec) give one named column each."""
    if not tensors or not all(isinstance(t, dict) for t in tensors):
        raise HTTPException(422, f"{what}: expected a list of tensors (name, shape, data)")
    shaped = [_shaped(f"{what}.{t.get('name', i)}", t.get("shape"), t.get("data")) for i, t in
              enumerate(tensors)]  # fmt: skip
    if len(tensors) == 1:
        shape, flat = shaped[0]
        if len(shape) >= 2 and math.prod(shape[1:]) > 1:
            return None, _rows(shape, flat)
        return [str(tensors[0].get("name", "input-0"))], [[x] for x in flat]
    columns = [flat for _, flat in shaped]
    if len({len(c) for c in columns}) != 1:
        lengths = {str(t.get("name")): len(c) for t, c in zip(tensors, columns, strict=True)}
        raise HTTPException(422, f"{what}: per-feature tensors of different lengths {lengths}")
    names = [str(t.get("name", f"input-{i}")) for i, t in enumerate(tensors)]
    return names, [list(row) for row in zip(*columns, strict=True)]


def _seldon_rows(msg: Any, what: str) -> tuple[list[str] | None, list[Any]]:
    """A SeldonMessage's `data` (names with ndarray or tensor) -> (names, rows); a row is a
    list of values, or one value for a 1-d array."""
    if not isinstance(msg, dict):
        raise HTTPException(422, f"{what}.data: expected an object with ndarray or tensor")
    names = msg.get("names") or None
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise HTTPException(422, f"{what}.data.names: expected a list of strings")
    if "ndarray" in msg:
        arr = msg["ndarray"]
        if not isinstance(arr, list):
            raise HTTPException(422, f"{what}.data.ndarray: expected an array")
        if (
            arr
            and not any(isinstance(x, list) for x in arr)
            and names
            and len(names) == len(arr) > 1
        ):
            return names, [arr]  # one instance as a flat row of its named features
        return names, [x if isinstance(x, list) else [x] for x in arr]
    if "tensor" in msg:
        t = msg["tensor"]
        if not isinstance(t, dict):
            raise HTTPException(422, f"{what}.data.tensor: expected {{shape, values}}")
        shape, flat = _shaped(f"{what}.data.tensor", t.get("shape"), t.get("values"))
        if len(shape) == 1 and names and len(names) == shape[0] > 1:
            return names, [flat]
        return names, _rows(shape, flat) if len(shape) >= 2 else [[x] for x in flat]
    raise HTTPException(
        422, f"{what}.data: a SeldonMessage's data needs ndarray or tensor (tftensor is not read)"
    )


def request_features(request: Any, feature_order: list[str]) -> list[dict[str, Any]]:
    """The features of each instance of a request payload."""
    if not isinstance(request, dict):
        raise HTTPException(422, "the request payload must be a JSON object")

    def named(names: list[str] | None, rows: list[list[Any]]) -> list[dict[str, Any]]:
        return [dict(zip(names or feature_order, row, strict=False)) for row in rows]

    if "instances" in request:  # KServe V1 (TF Serving's row format)
        inputs = request["instances"]
        if not isinstance(inputs, list):
            raise HTTPException(422, "instances: expected an array")
        return [
            dict(x)
            if isinstance(x, dict)
            else dict(zip(feature_order, x if isinstance(x, list) else [x], strict=False))
            for x in inputs
        ]
    if "inputs" in request:  # Open Inference Protocol (KServe V2, Seldon Core 2, MLServer)
        return named(*_tensor_rows(request["inputs"], "inputs"))
    if "data" in request:  # SeldonMessage (Seldon Core 1)
        return named(*_seldon_rows(request["data"], "request"))
    if "strData" in request:
        if not feature_order:
            raise HTTPException(422, "strData: the model's schema has no feature to put it in")
        return [{feature_order[0]: request["strData"]}]
    if "jsonData" in request:
        jd = request["jsonData"]
        items = jd if isinstance(jd, list) else [jd]
        if not all(isinstance(x, dict) for x in items):
            raise HTTPException(422, "jsonData: expected an object of features or a list of them")
        return [dict(x) for x in items]
    raise HTTPException(
        422,
        "the request payload has none of instances (V1), inputs (V2 / Open Inference "
        "Protocol), data, strData or jsonData (SeldonMessage)",
    )


def _class_names(names: list[str] | None, width: int) -> list[str]:
    """Seldon's default output names `t:0`, `t:1` (and `proba_0`) are the classes' places."""
    if (
        names
        and len(names) == width
        and not all(re.fullmatch(r"(t:|proba_?)\d+", n) for n in names)
    ):
        return [str(n) for n in names]
    return [str(k) for k in range(width)]


Outputs = tuple[list[Any], list[dict[str, float] | None]]


def _predictions_from_rows(names: list[str] | None, rows: list[Any]) -> Outputs:
    """One prediction per row: a single value, or a probability vector (its argmax)."""
    preds: list[Any] = []
    probs: list[dict[str, float] | None] = []
    for row in rows:
        values = row if isinstance(row, list) else [row]
        if len(values) == 1:
            preds.append(values[0])
            probs.append(None)
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise HTTPException(
                422, f"a prediction row of several values must be numbers: {values!r}"
            )
        labels = _class_names(names, len(values))
        probs.append({labels[k]: float(v) for k, v in enumerate(values)})
        preds.append(labels[max(range(len(values)), key=lambda k: values[k])])
    return preds, probs


def response_outputs(response: Any) -> tuple[list[Any], list[dict[str, float] | None], str | None]:
    """(prediction, probabilities) per instance of a response payload, and the model
    version it names (the OIP response's `model_version`)."""
    if not isinstance(response, dict):
        raise HTTPException(422, "the response payload must be a JSON object")
    version = response.get("model_version")
    version = str(version) if isinstance(version, str | int) and str(version) else None
    if "predictions" in response:  # V1
        preds = response["predictions"]
        if not isinstance(preds, list):
            raise HTTPException(422, "predictions: expected an array")
        return *_predictions_from_rows(None, preds), version
    if "outputs" in response:  # Open Inference Protocol
        outs = response["outputs"]
        if not outs or not isinstance(outs, list) or not all(isinstance(o, dict) for o in outs):
            raise HTTPException(422, "outputs: expected a list of tensors (name, shape, data)")
        main = next((o for o in outs if o.get("name") in ("predict", "label", "output-0")), outs[0])
        shape, flat = _shaped(f"outputs.{main.get('name')}", main.get("shape"), main.get("data"))
        rows: list[Any] = _rows(shape, flat) if len(shape) >= 2 else flat
        preds, probs = _predictions_from_rows(None, rows)
        proba = next((o for o in outs if o is not main and "proba" in str(o.get("name", ""))), None)
        if proba is not None:
            pshape, pflat = _shaped(
                f"outputs.{proba.get('name')}", proba.get("shape"), proba.get("data")
            )
            prow = _rows(pshape, pflat) if len(pshape) >= 2 else [[x] for x in pflat]
            if len(prow) == len(preds):
                probs = [{str(k): float(v) for k, v in enumerate(r)} for r in prow]
        return preds, probs, version
    if "data" in response:  # SeldonMessage
        names, rows = _seldon_rows(response["data"], "response")
        return *_predictions_from_rows(names, rows), version
    if "strData" in response:
        return [response["strData"]], [None], version
    if "jsonData" in response:
        jd = response["jsonData"]
        if isinstance(jd, dict) and isinstance(jd.get("predictions"), list):
            jd = jd["predictions"]
        return *_predictions_from_rows(None, jd if isinstance(jd, list) else [jd]), version
    raise HTTPException(
        422,
        "the response payload has none of predictions (V1), outputs (V2 / Open Inference "
        "Protocol), data, strData or jsonData (SeldonMessage)",
    )


def join_rows(
    request: dict[str, Any], response: dict[str, Any], feature_order: list[str]
) -> list[tuple[dict[str, Any], Any, dict[str, float] | None]]:
    """(features, prediction, probabilities) per instance."""
    feats = request_features(request, feature_order)
    preds, probs, _ = response_outputs(response)
    if len(preds) != len(feats):
        raise HTTPException(422, f"{len(feats)} instances but {len(preds)} predictions")
    return list(zip(feats, preds, probs, strict=True))


# --- the route --------------------------------------------------------------------------


def _envelope(body: bytes, headers: Any) -> tuple[dict[str, str], Any]:
    """(attributes, data) of a binary-mode or structured-mode CloudEvent."""
    try:
        if headers.get("content-type", "").startswith("application/cloudevents+json"):
            envelope = orjson.loads(body)
            if not isinstance(envelope, dict):
                raise HTTPException(400, "a structured CloudEvent must be a JSON object")
            ce = {k: str(v) for k, v in envelope.items() if k not in ("data", "data_base64")}
            if "data_base64" in envelope:
                try:
                    raw = base64.b64decode(str(envelope["data_base64"]), validate=True)
                except (binascii.Error, ValueError) as e:
                    raise HTTPException(400, f"data_base64: not base64: {e}") from e
                data = orjson.loads(raw)
            else:
                data = envelope.get("data") or {}
        else:
            ce = {k[3:].lower(): v for k, v in headers.items() if k.lower().startswith("ce-")}
            data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPException(400, f"malformed JSON: {e}") from e
    return ce, data


class StructuredCloudEvent(BaseModel):
    """A structured-mode CloudEvent (`application/cloudevents+json`): the attributes and
    `data` (or `data_base64`) in one JSON object. `id` and `type` are required; the model
    and version come from the attributes the loggers set (modelid, inferenceservicename,
    endpoint, component) or the URL's `model_id` and `model_version`."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    type: str = Field(
        min_length=1,
        description="...inference.request or ...inference.response (KServe, Seldon)",
    )
    specversion: str | None = None
    source: str | None = None
    time: str | None = None
    data: Any = Field(default=None, description="the request's or the response's payload")
    data_base64: str | None = Field(default=None, description="the payload's JSON, in base64")


# binary mode's attributes: ce-id and ce-type required; the model and version named as above
_CE_HEADERS = (
    *("id", "type", "source", "specversion", "time", "requestid"),
    *("modelid", "inferenceservicename", "endpoint", "component"),
)
CLOUDEVENT_BODY = raw_body(
    content={
        "application/json": {
            "schema": {
                "description": "binary mode: the payload (V1, V2 / Open Inference Protocol "
                "or SeldonMessage), the attributes in ce-* headers (ce-id and ce-type "
                "required)"
            }
        },
        "application/cloudevents+json": {"schema": StructuredCloudEvent.model_json_schema()},
    },
    description="one half (the request or the response) of an inference logger's pair",
)
CLOUDEVENT_BODY["parameters"] = [
    {
        "in": "header",
        "name": f"ce-{name}",
        "required": False,
        "description": "binary mode: the CloudEvent attribute",
        "schema": {"type": "string"},
    }
    for name in _CE_HEADERS
] + [
    {
        "in": "query",
        "name": name,
        "required": False,
        "description": f"the {what}, in place of the one the attributes imply",
        "schema": {"type": "string"},
    }
    for name, what in (("model_id", "model"), ("model_version", "version"))
]


def cloudevents_router(
    auth: Authenticator,
    intake: Intake,
    registry: Registry,
    joins: CloudEventJoins,
    limiter: RateLimiter,
    max_bytes: int,
) -> APIRouter:
    r = APIRouter(
        prefix="/v1/events", tags=["events"], dependencies=[Depends(refuse_unstorable_request)]
    )
    ingest = Depends(auth.require("ingest"))

    @r.post(
        "/cloudevents",
        status_code=202,
        responses={
            code: {"model": CloudEventOut, "description": why, "content": PROBLEM_TOO}
            for code, why in [
                (
                    202,
                    "waiting for its mate, or joined: its events accepted (some may be "
                    "rejected, each with its reason)",
                ),
                (409, "joined, and every event was a duplicate event id"),
                (413, "joined, and every event was too large"),
                (422, "joined, and every event was rejected, each with its reason"),
            ]
        },
        openapi_extra=CLOUDEVENT_BODY,
    )
    async def cloudevent(request: Request, who: Principal = ingest) -> JSONResponse:
        body = await read_body(request, max_bytes)
        ce, data = _envelope(body, request.headers)
        for required in ("id", "type"):
            if not ce.get(required):
                raise HTTPException(400, f"missing CloudEvent attribute ce-{required}")
        kind = _kind(ce["type"])
        pair = ce.get("requestid") or ce["id"]  # Seldon: ce-requestid; KServe: ce-id
        query = request.query_params
        candidates = model_candidates(query.get("model_id"), ce)
        if not candidates:
            raise HTTPException(
                422,
                "no model: the CloudEvent has neither ce-modelid nor ce-inferenceservicename; "
                "add ?model_id= to the logger URL",
            )
        for name, value in (("ce-id", ce["id"]), ("ce-requestid", pair)):
            if why := identifier_problem(name, value):
                raise HTTPException(422, why)
        schema, model_id, implied = None, "", None
        for candidate, implies in candidates:
            if why := identifier_problem("model_id", candidate):
                raise HTTPException(422, why)
            schema = await registry.compiled_schema(who.tenant_id, candidate)
            if schema is not None:
                model_id, implied = candidate, implies
                break
        if schema is None:
            tried = ", ".join(repr(m) for m, _ in candidates)
            raise HTTPException(404, f"unknown model: none of {tried} is registered")
        half = orjson.dumps({"kind": kind, "data": data, "ce": ce, "model": model_id, "pair": pair})
        base = f"dl:ce:{who.tenant_id}:{model_id}:{pair}"
        other = "response" if kind == "request" else "request"
        found = await joins.offer(f"{base}:{kind}", f"{base}:{other}", half)
        if found is None:
            return JSONResponse(
                {"status": "waiting for the matching " + other, "ce_id": ce["id"], "pair_id": pair},
                202,
            )
        mate = orjson.loads(found)
        req, req_ce = (data, ce) if kind == "request" else (mate["data"], mate.get("ce", {}))
        resp, resp_ce = (data, ce) if kind == "response" else (mate["data"], mate.get("ce", {}))
        feats = request_features(req, [f.name for f in schema.schema.features])
        preds, probs, body_version = response_outputs(resp)
        if len(preds) != len(feats):
            raise HTTPException(422, f"{len(feats)} instances but {len(preds)} predictions")
        attrs = {**req_ce, **resp_ce}
        version = (
            query.get("model_version")
            or body_version
            or implied
            or attrs.get("endpoint")
            or attrs.get("component")
            or "default"
        )
        if why := identifier_problem("model_version", version):
            raise HTTPException(422, why)
        await enforce(limiter, who.key_id, len(feats))
        when = req_ce.get("time") or resp_ce.get("time")
        items = [
            {
                "event_id": str(uuid.uuid5(_NAMESPACE, f"{who.tenant_id}:{model_id}:{pair}:{i}")),
                "model_id": model_id,
                "model_version": version,
                "features": f,
                "prediction": p,
                "probabilities": pr,
                **({"timestamp": when} if when else {}),
            }
            for i, (f, p, pr) in enumerate(zip(feats, preds, probs, strict=True))
        ]
        result = await intake.predictions(
            who, items, scan=may_hold_control(body) or may_hold_control(found)
        )
        return JSONResponse(
            {"status": "joined", "ce_id": ce["id"], "pair_id": pair, **result.body()},
            result.status_code,
        )

    return r
