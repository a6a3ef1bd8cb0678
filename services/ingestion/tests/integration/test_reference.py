"""Reference profiles from CSV, Parquet and JSON-lines uploads and from served events."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def frame(n: int, seed: int = 3) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {
        "age": rng.normal(45, 12, n).round(1).tolist(),
        "income": rng.lognormal(10, 0.5, n).round(2).tolist(),
        "region": rng.choice(["north", "south"], n).tolist(),
        "vip": (rng.random(n) < 0.2).tolist(),
        "ssn": ["000-00-0000"] * n,
    }


def csv_bytes(cols: dict[str, list]) -> bytes:
    out = io.StringIO()
    out.write(",".join(cols) + "\n")
    for row in zip(*cols.values(), strict=True):
        out.write(",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in row) + "\n")
    return out.getvalue().encode()


async def test_csv_upload_profiles_every_non_sensitive_feature(tenant):
    cols = frame(30_000)
    cols["label_out"] = ["1" if a > 50 else "0" for a in cols["age"]]  # the model's output
    r = await tenant.admin.post(
        "/v1/models/credit/reference?prediction_column=label_out",
        content=csv_bytes(cols),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["rows"]) == (1, 30_000)
    profile = (await tenant.admin.get("/v1/models/credit/reference")).json()["profile"]
    f = profile["features"]
    assert "ssn" not in f  # sensitive features are never profiled in the clear
    assert f["age"]["count"] == 30_000
    assert abs(f["age"]["mean"] - float(np.mean(cols["age"]))) < 1e-9
    assert len(f["age"]["histogram"]["edges"]) == 9
    assert f["region"]["categories"] == {k: cols["region"].count(k) for k in ("north", "south")}
    assert f["vip"]["categories"]["true"] == sum(cols["vip"])
    # the classifier's output is profiled as the prediction's reference (class mix)
    assert f["__prediction__"]["categories"] == {k: cols["label_out"].count(k) for k in ("0", "1")}
    # and the numeric features' joint behaviour, for PCA multivariate drift
    pca = profile["multivariate"]
    assert pca["method"] == "pca_reconstruction_error"
    assert pca["features"] == ["age", "income"]
    assert pca["error_mean"] > 0


async def test_parquet_and_jsonl_uploads_are_versioned(tenant):
    cols = frame(5_000, seed=4)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    r = await tenant.admin.post(
        "/v1/models/credit/reference?filename=ref.parquet",
        content=buf.getvalue(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert (r.status_code, r.json()["version"], r.json()["rows"]) == (201, 1, 5_000)
    import orjson

    lines = b"\n".join(orjson.dumps({k: v[i] for k, v in cols.items()}) for i in range(1000))
    r = await tenant.admin.post(
        "/v1/models/credit/reference",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert (r.status_code, r.json()["version"], r.json()["rows"]) == (201, 2, 1000)
    first = (await tenant.admin.get("/v1/models/credit/reference?version=1")).json()
    assert first["source"]["format"] == "parquet"


async def test_unreadable_uploads_are_refused_with_the_reason(tenant):
    r = await tenant.admin.post(
        "/v1/models/credit/reference",
        content=b"whatever",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 400
    assert "cannot tell the format" in r.json()["detail"]
    r = await tenant.admin.post(
        "/v1/models/credit/reference",
        content=b"{not json\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 400
    assert "line 1 is not JSON" in r.json()["detail"]


async def test_a_profile_from_served_events_covers_that_time_range(tenant):
    start = datetime.now(UTC) - timedelta(seconds=1)
    events = [
        tenant.event(features={"age": 20 + i % 50, "income": 1000.0 + i, "region": "south"})
        for i in range(300)
    ]
    assert (await tenant.ingest.post("/v1/events/predictions", json=events)).status_code == 202
    end = datetime.now(UTC) + timedelta(seconds=1)
    r = await tenant.admin.post(
        "/v1/models/credit/reference/from-events",
        json={"start": start.isoformat(), "end": end.isoformat()},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 300
    f = (await tenant.admin.get("/v1/models/credit/reference")).json()["profile"]["features"]
    assert f["region"]["categories"] == {"south": 300}
    assert f["income"]["min"] == 1000.0
    assert f["income"]["max"] == 1299.0
