"""The demo model: the schema it registers accepts what it generates, and each scheduled
drift really changes its feature."""

from __future__ import annotations

import numpy as np

from driftline.demo.credit import MODEL, generate, reference_rows
from driftline_core.events.features import FeatureSchema


def test_the_registered_schema_has_twenty_features_and_accepts_the_reference():
    schema = FeatureSchema.model_validate(MODEL["feature_schema"])
    assert len(schema.features) == 20
    from driftline_ingestion.validation import CompiledSchema

    compiled = CompiledSchema(schema)
    for row in reference_rows(2000):
        _features, reason = compiled.check(row)
        assert reason is None, reason


def test_scheduled_drifts_move_their_features():
    rng = np.random.default_rng(1)
    before, _ = generate(4000, 0.0, rng)
    after, _p_after = generate(4000, 0.99, rng)

    def col(evs, name):
        return [e["features"][name] for e in evs]

    assert np.mean(col(after, "income")) < 0.7 * np.mean(col(before, "income"))
    assert np.mean(col(after, "credit_score")) < np.mean(col(before, "credit_score")) - 50
    assert "offshore" in col(after, "region")
    assert "offshore" not in col(before, "region")
    assert col(after, "employment_years").count(None) > 1000
    assert col(before, "employment_years").count(None) == 0
    assert all(set(e["probabilities"]) == {"0", "1"} for e in after)
    assert all(abs(sum(e["probabilities"].values()) - 1) <= 1e-9 for e in after)
    assert all(e["prediction"] == int(e["probabilities"]["1"] > 0.5) for e in after)
