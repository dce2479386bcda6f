"""KServe payloads into prediction records: V1 and Open Inference Protocol V2, lists and objects."""

from __future__ import annotations

import pytest

from monitor.domain.kserve import REQUEST, CloudEvent, KServeError, pair_to_records, request_rows, response_rows
from monitor.domain.schema import ModelSchema

BINARY = ModelSchema.model_validate(
    {
        "task": "binary_classification",
        "classes": ["stay", "leave"],
        "features": [{"name": "tenure", "type": "numerical"}, {"name": "plan", "type": "categorical"}],
    }
)
IRIS = ModelSchema.model_validate(
    {
        "task": "multiclass_classification",
        "classes": ["setosa", "versicolor", "virginica"],
        "features": [{"name": n, "type": "numerical"} for n in ("sl", "sw", "pl", "pw")],
    }
)


def test_v1_lists_take_the_schemas_feature_order_and_objects_their_names() -> None:
    doc = {"instances": [[12, "basic"], {"plan": "pro", "tenure": 3}]}
    assert request_rows(doc, BINARY) == [{"tenure": 12, "plan": "basic"}, {"plan": "pro", "tenure": 3}]
    (bad,) = request_rows({"instances": [[1, "a", 2]]}, BINARY)
    assert isinstance(bad, KServeError) and "instances[0]: 3 values for 2 features" in str(bad)


def test_v2_one_matrix_or_one_tensor_per_feature() -> None:
    matrix = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8]}]}
    assert request_rows(matrix, IRIS)[1] == {"sl": 5, "sw": 6, "pl": 7, "pw": 8}
    columns = {
        "inputs": [
            {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [1, 2]},
            {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]},
        ]
    }
    assert request_rows(columns, BINARY) == [{"tenure": 1, "plan": "a"}, {"tenure": 2, "plan": "b"}]
    with pytest.raises(KServeError, match="does not hold 4 features"):
        request_rows({"inputs": [{"name": "x", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}]}, IRIS)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"predictions": [1, 0]}, [("versicolor", None), ("setosa", None)]),  # class indices
        ({"predictions": ["virginica"]}, [("virginica", None)]),
        (
            {"predictions": [[0.1, 0.7, 0.2]]},
            [("versicolor", {"setosa": 0.1, "versicolor": 0.7, "virginica": 0.2})],
        ),
        (
            {"outputs": [{"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.6, 0.3, 0.1]}]},
            [("setosa", {"setosa": 0.6, "versicolor": 0.3, "virginica": 0.1})],
        ),
    ],
)
def test_responses(response: dict, expected: list) -> None:
    assert response_rows(response, IRIS) == expected


def test_binary_probability_of_the_positive_class() -> None:
    assert response_rows({"predictions": [0.8, 0.2]}, BINARY) == [("leave", {"leave": 0.8}), ("stay", {"leave": 0.2})]


def test_a_pair_becomes_one_record_per_instance() -> None:
    records, errors = pair_to_records(
        "ev1", {"instances": [[12, "basic"], [3, "pro"]]}, {"predictions": [0.9, 0.1]}, BINARY, "2026-11-22T10:00:00Z"
    )
    assert errors == []
    assert [r["prediction_id"] for r in records] == ["ev1-0", "ev1-1"]
    assert records[0] == {
        "prediction_id": "ev1-0",
        "request_id": "ev1-0",
        "features": {"tenure": 12, "plan": "basic"},
        "prediction": "leave",
        "scores": {"leave": 0.9},
        "timestamp": "2026-11-22T10:00:00Z",
    }
    # a named version's (a canary's or a shadow's): its own prediction ids, the request's id
    canary, _ = pair_to_records("ev1", {"instances": [[12, "basic"]]}, {"predictions": [0.9]}, BINARY, None, "2")
    assert (canary[0]["prediction_id"], canary[0]["request_id"]) == ("ev1-0@2", "ev1-0")
    with pytest.raises(KServeError, match="2 instances in the request but 1 in the response"):
        pair_to_records("ev", {"instances": [[1, "a"], [2, "b"]]}, {"predictions": [0.5]}, BINARY, None)


def test_cloud_event_headers() -> None:
    e = CloudEvent.from_headers({"Ce-Id": "x", "Ce-Type": REQUEST, "Ce-Inferenceservicename": "churn"}, b"{}")
    assert (e.id, e.model, e.time) == ("x", "churn", None)
    with pytest.raises(KServeError, match="missing CloudEvent header"):
        CloudEvent.from_headers({"Ce-Type": REQUEST}, b"{}")
    with pytest.raises(KServeError, match="neither"):
        CloudEvent.from_headers({"Ce-Id": "x", "Ce-Type": "other", "Ce-Inferenceservicename": "m"}, b"{}")


GOOD_REQUEST = {"instances": [[12, "basic"]]}
GOOD_RESPONSE = {"predictions": [0.9]}


@pytest.mark.parametrize(
    ("request_doc", "response_doc"),
    [
        (GOOD_REQUEST, {"predictions": 5}),
        (GOOD_REQUEST, {"predictions": "leave"}),
        (GOOD_REQUEST, {"outputs": [5]}),
        (GOOD_REQUEST, {"outputs": [{"name": "o", "shape": [1, 2], "data": [1]}]}),
        (GOOD_REQUEST, {"outputs": [{"name": "o", "shape": ["a"], "data": [1]}]}),
        (GOOD_REQUEST, [1, 2]),
        ({"instances": 5}, GOOD_RESPONSE),
        ({"instances": "abc"}, GOOD_RESPONSE),
        ({"inputs": [5]}, GOOD_RESPONSE),
        ({"inputs": 5}, GOOD_RESPONSE),
        ({"inputs": [{"name": "x", "shape": [1, 2], "data": [[1, 2]]}, 7]}, GOOD_RESPONSE),
        ({"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]}, GOOD_RESPONSE),
        ("text", GOOD_RESPONSE),
        (None, None),
    ],
)
def test_bodies_of_unreadable_shapes_are_a_kserve_error(request_doc: object, response_doc: object) -> None:
    with pytest.raises(KServeError):
        pair_to_records("ev", request_doc, response_doc, BINARY, None)


@pytest.mark.parametrize(
    ("request_doc", "response_doc", "field"),
    [
        ({"instances": [[12, "basic"], [1, 2, 3]]}, {"predictions": [0.9, 0.2]}, "instances"),
        ({"instances": [[12, "basic"], 5]}, {"predictions": [0.9, 0.2]}, "instances"),
        ({"instances": [[12, "basic"], [3, "pro"]]}, {"predictions": [0.9, ["x", "y"]]}, "predictions"),
        ({"instances": [[12, "basic"], [3, "pro"]]}, {"predictions": [0.9, [None, 0.5]]}, "predictions"),
        ({"instances": [[12, "basic"], [3, "pro"]]}, {"predictions": [0.9, {"a": 1}]}, "predictions"),
        ({"instances": [[12, "basic"], [3, "pro"]]}, {"predictions": [0.9, 7]}, "predictions"),  # no class 7
    ],
)
def test_an_instance_that_cannot_be_read_is_refused_alone(request_doc: dict, response_doc: dict, field: str) -> None:
    records, errors = pair_to_records("ev", request_doc, response_doc, BINARY, None)
    assert [r["prediction_id"] for r in records] == ["ev-0"]
    assert [(e.index, e.field) for e in errors] == [(1, field)]


def test_integral_floats_of_a_v2_tensor_are_class_indices() -> None:
    doc = {"outputs": [{"name": "o", "shape": [3], "datatype": "FP32", "data": [0.0, 2.0, 1.0]}]}
    assert [p for p, _ in response_rows(doc, IRIS)] == ["setosa", "virginica", "versicolor"]


def test_a_model_whose_classes_are_numbers_predicts_the_classes_not_their_indices() -> None:
    """A scikit-learn server returns ``predict``'s labels: with classes_ [1, 2, 3] an output of
    2 is class 2, not the class at index 2; an integral float (a V2 FP64 tensor) too."""
    ratings = ModelSchema.model_validate(
        {"task": "multiclass_classification", "classes": [1, 2, 3], "features": [{"name": "x", "type": "numerical"}]}
    )
    assert response_rows({"predictions": [2, 3.0, 1]}, ratings) == [("2", None), ("3", None), ("1", None)]
    assert response_rows({"predictions": [0]}, IRIS) == [(IRIS.classes[0], None)]  # text classes: an index


def _out(name: str, shape: list[int], data: list) -> dict:  # type: ignore[type-arg]
    return {"name": name, "shape": shape, "datatype": "FP32", "data": data}


@pytest.mark.parametrize("order", ["label first", "probabilities first"])
def test_a_v2_response_with_labels_and_probabilities_uses_each_by_name(order: str) -> None:
    """KServe's scikit-learn server asked for both returns `predict` and `predict_proba`: the
    label is the prediction served, the probabilities its scores, whichever comes first (the first
    output alone was read: the probabilities dropped, or a disagreeing label ignored)."""
    label = _out("predict", [2], [2, 0])
    probabilities = _out("predict_proba", [2, 3], [0.1, 0.5, 0.4, 0.7, 0.2, 0.1])  # row 0 disagrees: argmax 1
    outputs = [label, probabilities] if order == "label first" else [probabilities, label]
    assert response_rows({"outputs": outputs}, IRIS) == [
        ("virginica", {"setosa": 0.1, "versicolor": 0.5, "virginica": 0.4}),
        ("setosa", {"setosa": 0.7, "versicolor": 0.2, "virginica": 0.1}),
    ]


def test_a_multiclass_output_of_shape_n_by_1_holds_class_indices() -> None:
    doc = {"outputs": [_out("predict", [3, 1], [[2], [0], [1]])]}
    assert [p for p, _ in response_rows(doc, IRIS)] == ["virginica", "setosa", "versicolor"]


def test_a_ragged_v2_input_loses_only_its_short_rows() -> None:
    request = {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP32", "data": [[1, "a"], [2], [3, "c"]]}]}
    response = {"outputs": [_out("predict", [3], [0.9, 0.1, 0.2])]}
    records, errors = pair_to_records("ev", request, response, BINARY, None)
    assert [r["prediction_id"] for r in records] == ["ev-0", "ev-2"]
    assert [(e.index, e.field) for e in errors] == [(1, "instances")]
