"""Reference profiles: exact moments and counts, sketch quantiles within their error bound,
histogram edges on the data's own quantiles, chunking does not change the result."""

from __future__ import annotations

import numpy as np
import pytest

from driftline_stats import ProfileBuilder, Reservoir

KINDS = {
    "age": "numeric",
    "region": "categorical",
    "vip": "boolean",
    "note": "text",
    "emb": "embedding",
}


def data(n: int, seed: int = 1) -> dict[str, list[object]]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    age[::50] = np.nan
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]).astype(object)
    region[::100] = None
    return {
        "age": age.tolist(),
        "region": region.tolist(),
        "vip": (rng.random(n) < 0.1).tolist(),
        "note": ["x" * int(k) for k in rng.integers(1, 20, n)],
        "emb": [[3.0, 4.0]] * n,
    }


def build(cols: dict[str, list[object]], chunk: int) -> dict[str, object]:
    b = ProfileBuilder(KINDS, bins=10, sample_size=500)  # type: ignore[arg-type]
    n = len(cols["age"])
    for i in range(0, n, chunk):
        b.update({k: v[i : i + chunk] for k, v in cols.items()})
    return b.finish()


def test_numeric_profile_is_exact_where_it_can_be_and_close_where_it_sketches():
    cols = data(20_000)
    p = build(cols, chunk=3_000)
    age = p["features"]["age"]  # type: ignore[index]
    x = np.asarray(cols["age"], dtype=float)
    x = x[~np.isnan(x)]
    assert p["rows"] == 20_000
    assert (age["count"], age["missing"]) == (x.size, 400)
    assert age["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert age["std"] == pytest.approx(x.std(), rel=1e-9)
    assert age["min"] == x.min()
    assert age["max"] == x.max()
    # KLL k=200: normalised rank error ~1.3%; check ranks, not values
    for q, v in age["quantiles"].items():
        assert abs((x <= v).mean() - float(q)) < 0.02
    edges, counts = age["histogram"]["edges"], age["histogram"]["counts"]
    assert len(edges) == 9
    assert sum(counts) == pytest.approx(x.size, abs=5)
    assert all(abs(c - x.size / 10) < 0.03 * x.size for c in counts)
    assert len(age["sample"]) == 500
    assert set(age["sample"]) <= set(x.tolist())


def test_categorical_boolean_text_and_embedding_profiles():
    cols = data(10_000)
    f = build(cols, chunk=10_000)["features"]  # type: ignore[index]
    region = f["region"]
    assert region["missing"] == 100
    assert sum(region["categories"].values()) == 9_900
    assert set(region["categories"]) == {"north", "south", "east"}
    assert f["vip"]["categories"]["true"] == sum(cols["vip"])  # type: ignore[arg-type]
    assert f["note"]["of"] == "length"
    assert 1 <= f["note"]["min"] <= f["note"]["max"] <= 19
    assert (f["emb"]["dimension"], f["emb"]["mean"]) == (2, 5.0)


def test_chunk_size_does_not_change_exact_figures():
    cols = data(5_000, seed=7)
    a, b = build(cols, chunk=5_000), build(cols, chunk=333)
    fa, fb = a["features"], b["features"]  # type: ignore[index]
    assert fa["region"] == fb["region"]
    assert fa["age"]["mean"] == pytest.approx(fb["age"]["mean"], rel=1e-12)
    assert fa["age"]["count"] == fb["age"]["count"]


def test_reservoir_is_bounded_uniform_and_mergeable():
    r1, r2 = Reservoir(1000, seed=1), Reservoir(1000, seed=2)
    r1.update(np.zeros(50_000))
    r2.update(np.ones(50_000))
    r1.merge(r2)
    assert r1.values.size == 1000
    assert 0.4 < r1.values.mean() < 0.6  # half from each side of the union
