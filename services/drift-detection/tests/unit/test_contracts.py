"""The tests a model's monitoring config may name are the ones the detector implements
(driftline-stats stays free of driftline-core, so the two lists are kept in step here)."""

from __future__ import annotations

from typing import get_args

from driftline_core.events.features import FeatureTest
from driftline_stats.detector import Test


def test_monitoring_config_tests_match_the_detectors():
    assert set(get_args(FeatureTest.model_fields["test"].annotation)) == set(get_args(Test))
