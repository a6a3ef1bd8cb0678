"""The class contract (declared classes, positive class, spelling map) and the monitoring
configs the detector can run, as ingestion and drift detection both check them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline_core.events.features import MonitoringConfig, WindowConfig, monitoring_problems
from driftline_core.events.registry import ClassContract, class_label
from driftline_stats.performance import label


def demo_contract() -> ClassContract:
    return ClassContract(classes=[0, 1], positive_class=1, mapping={"default": 1, "repaid": 0})


def test_a_binary_contract_needs_its_positive_class() -> None:
    with pytest.raises(ValidationError, match="positive_class"):
        ClassContract(classes=["default", "repaid"])
    with pytest.raises(ValidationError, match="not one of the classes"):
        ClassContract(classes=["a", "b"], positive_class="c")
    with pytest.raises(ValidationError, match="duplicate"):
        ClassContract(classes=[1, 1.0, 2])
    with pytest.raises(ValidationError, match="mapping targets"):
        ClassContract(classes=["a", "b", "c"], mapping={"x": "z"})


def test_predictions_and_probabilities_are_spelt_as_classes_through_the_mapping() -> None:
    c = demo_contract()
    assert c.check_prediction(1, {"default": 0.81, "repaid": 0.19}) == (
        "1",
        {"1": 0.81, "0": 0.19},
        None,
    )
    assert c.check_prediction("default", None) == ("1", None, None)
    assert c.check_prediction(1.0, {"1": 0.3}) == ("1", {"1": 0.3, "0": 0.7}, None)
    assert c.check_label("repaid") == ("0", None)


@pytest.mark.parametrize(
    ("prediction", "probabilities", "reason"),
    [
        (2, None, "prediction 2 is not one of the classes"),
        (True, None, "prediction True is not one of the classes"),
        (0.7, None, "prediction 0.7 is not one of the classes"),
        (1, {"yes": 0.5, "no": 0.5}, "'yes' is not one of the classes"),
        (1, {"1": 0.8, "0": 0.3}, "sum to 1.1"),
        (1, {"1": 1.2}, "not a probability"),
        (1, {"default": 0.5, "1": 0.5}, "given twice"),
    ],
)
def test_outputs_outside_the_contract_are_refused(prediction, probabilities, reason) -> None:
    _cls, _probs, why = demo_contract().check_prediction(prediction, probabilities)
    assert why is not None
    assert reason in why


def test_probability_tolerance_is_the_contracts() -> None:
    c = ClassContract(classes=["a", "b", "c"], probability_tolerance=1e-3)
    assert c.check_prediction("a", {"a": 0.5, "b": 0.3, "c": 0.2005})[2] is None
    assert "sum to" in (c.check_prediction("a", {"a": 0.5, "b": 0.3, "c": 0.202})[2] or "")
    assert "sum to" in (c.check_prediction("a", {"a": 0.5})[2] or "")  # multiclass: all of them


def test_labels_outside_the_contract_are_refused() -> None:
    assert "not one of the classes" in (demo_contract().check_label("maybe")[1] or "")


@pytest.mark.parametrize("v", [True, False, 1, 1.0, 2.5, "x", 0, -3.0])
def test_class_spelling_is_the_stats_librarys(v: object) -> None:
    assert class_label(v) == label(v)


@pytest.mark.parametrize(
    ("kind", "test", "ok"),
    [
        ("numeric", "ks", True),
        ("numeric", "chi_squared", False),
        ("categorical", "ks", False),
        ("categorical", "wasserstein", False),
        ("categorical", "chi_squared", True),
        ("boolean", "z", True),
        ("numeric", "psi", True),
        ("categorical", "psi", True),
        ("text", "psi", False),
    ],
)
def test_a_test_must_suit_the_features_kind(kind: str, test: str, ok: bool) -> None:
    cfg = MonitoringConfig.model_validate({"features": {"f": {"test": test}}})
    problems = monitoring_problems(cfg, {"f": kind}, "classification")
    assert (problems == []) is ok
    if not ok:
        assert problems[0][0] == "monitoring.features.f.test"


def test_a_test_on_a_feature_the_schema_lacks_is_refused() -> None:
    cfg = MonitoringConfig.model_validate({"features": {"nope": {"test": "ks"}}})
    assert monitoring_problems(cfg, {"f": "numeric"}, None)[0][0] == "monitoring.features.nope"
    assert monitoring_problems(cfg, {"f": "numeric"}, None, complete=False) == []


def test_prediction_tests_suit_the_task() -> None:
    ks = MonitoringConfig.model_validate({"prediction": {"test": "ks"}})
    chi = MonitoringConfig.model_validate({"prediction": {"test": "chi_squared"}})
    assert monitoring_problems(ks, {}, "classification")[0][0] == "monitoring.prediction.test"
    assert monitoring_problems(chi, {}, "regression")[0][0] == "monitoring.prediction.test"
    assert monitoring_problems(ks, {}, "regression") == []


def test_count_windows_are_refused_not_run_as_time_windows() -> None:
    with pytest.raises(ValidationError, match="count windows are not supported"):
        WindowConfig.model_validate({"kind": "count", "size": 1000})
    with pytest.raises(ValidationError, match="greater than or equal to 10"):
        WindowConfig.model_validate({"seconds": 1})
