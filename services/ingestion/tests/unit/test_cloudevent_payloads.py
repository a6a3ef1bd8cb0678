"""Payload shapes of the inference loggers (cloudevents.py), without a server: which model
a CloudEvent names, V1, Open Inference Protocol and SeldonMessage payloads to rows, and the
refusals that name what does not add up."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from driftline_ingestion.cloudevents import (
    join_rows,
    model_candidates,
    request_features,
    response_outputs,
)

ORDER = ["a", "b", "c"]


def test_the_model_comes_from_the_url_else_seldon_s_model_id_else_the_service_name():
    assert model_candidates("m", {"modelid": "x", "inferenceservicename": "y"}) == [("m", None)]
    assert model_candidates(None, {"modelid": "iris_3", "inferenceservicename": "mlserver"}) == [
        ("iris_3", None),
        ("iris", "3"),  # Seldon Core 2 names a model's replica <model>_<version>
        ("mlserver", None),
    ]
    assert model_candidates(None, {"inferenceservicename": "credit"}) == [("credit", None)]
    assert model_candidates(None, {}) == []


def test_oip_tensors_flat_nested_and_per_feature():
    flat = {"inputs": [{"name": "x", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}
    nested = {"inputs": [{"name": "x", "shape": [2, 3], "data": [[1, 2, 3], [4, 5, 6]]}]}
    want = [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}]
    assert request_features(flat, ORDER) == want
    assert request_features(nested, ORDER) == want
    columns = {
        "inputs": [
            {"name": "b", "shape": [2, 1], "data": [[7], [8]]},
            {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["u", "v"]},
        ]
    }
    assert request_features(columns, ORDER) == [{"b": 7, "c": "u"}, {"b": 8, "c": "v"}]
    one = {"inputs": [{"name": "a", "shape": [3], "data": [1, 2, 3]}]}
    assert request_features(one, ORDER) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_oip_outputs_labels_probabilities_and_version():
    preds, probs, version = response_outputs(
        {
            "model_version": "4",
            "outputs": [
                {"name": "predict_proba", "shape": [2, 2], "data": [0.3, 0.7, 0.6, 0.4]},
                {"name": "predict", "shape": [2, 1], "data": [[1], [0]]},
            ],
        }
    )
    assert (preds, version) == ([1, 0], "4")
    assert probs == [{"0": 0.3, "1": 0.7}, {"0": 0.6, "1": 0.4}]
    # a probability vector as the only output: its argmax
    preds, probs, _ = response_outputs(
        {"outputs": [{"name": "output-0", "shape": [1, 3], "data": [0.1, 0.7, 0.2]}]}
    )
    assert preds == ["1"]
    assert probs == [{"0": 0.1, "1": 0.7, "2": 0.2}]


def test_seldon_messages_ndarray_tensor_and_named_classes():
    req = {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}
    assert request_features(req, ORDER) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    # one instance as a flat row of named features; one feature per row of a batch
    assert request_features({"data": {"names": ["a", "b"], "ndarray": [5, 6]}}, ORDER) == [
        {"a": 5, "b": 6}
    ]
    assert request_features({"data": {"names": ["c"], "ndarray": ["x", "y"]}}, ORDER) == [
        {"c": "x"},
        {"c": "y"},
    ]
    tensor = {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}
    assert request_features(tensor, ORDER) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert request_features({"strData": "hello"}, ORDER) == [{"a": "hello"}]
    preds, probs, _ = response_outputs(
        {"data": {"names": ["no", "yes"], "ndarray": [[0.9, 0.1], [0.2, 0.8]]}}
    )
    assert preds == ["no", "yes"]
    assert probs == [{"no": 0.9, "yes": 0.1}, {"no": 0.2, "yes": 0.8}]
    preds, _, _ = response_outputs({"data": {"names": ["t:0", "t:1"], "ndarray": [[0.4, 0.6]]}})
    assert preds == ["1"]  # Seldon's default names are the classes' places
    assert response_outputs({"strData": "spam"})[0] == ["spam"]


SHORT = {"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}
UNEVEN = {"inputs": [{"name": "a", "data": [1, 2]}, {"name": "b", "data": [1]}]}
REFUSED = [
    (SHORT, {"predictions": [1, 2]}, "holds 4 values"),
    ({"instances": [[1], [2]]}, {"predictions": [1]}, "2 instances but 1 predictions"),
    ({"data": {"names": ["a"], "tftensor": {}}}, {"predictions": [1]}, "needs ndarray or tensor"),
    (UNEVEN, {"predictions": [1]}, "different lengths"),
    ({"instances": [[1]]}, {"outputs": "x"}, "expected a list of tensors"),
    ({"instances": [[1]]}, {"data": {"ndarray": [["a", "b"]]}}, "must be numbers"),
    ({"jsonData": [1, 2]}, {"predictions": [1, 2]}, "jsonData: expected an object"),
]


@pytest.mark.parametrize(("request_", "response", "why"), REFUSED)
def test_payloads_that_do_not_add_up_are_refused_naming_why(request_, response, why):
    with pytest.raises(HTTPException) as e:
        join_rows(request_, response, ORDER)
    assert e.value.status_code == 422
    assert why in str(e.value.detail)
