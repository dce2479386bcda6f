"""What the light client sends, encoded with the standard library alone: NaN and infinities as
JSON can carry them, NumPy values (a scikit-learn model's) as plain numbers."""

from __future__ import annotations

import json
import math

import numpy as np
from monitor_client.client import _features, dumps


def test_non_finite_numbers_go_as_null_outside_features_and_as_strings_in_them() -> None:
    assert json.loads(dumps({"scores": {"a": math.nan, "b": 0.5}, "x": [math.inf]})) == {
        "scores": {"a": None, "b": 0.5},
        "x": [None],
    }
    assert _features({"a": math.inf, "b": -math.inf, "c": math.nan, "d": 1.5}) == {
        "a": "Infinity",
        "b": "-Infinity",
        "c": None,
        "d": 1.5,
    }


def test_numpy_values_go_as_the_numbers_they_hold() -> None:
    features = _features({"age": np.int64(41), "income": np.float32(52000.5), "risk": np.float64(np.inf)})
    assert features == {"age": 41, "income": 52000.5, "risk": "Infinity"}
    assert type(features["age"]) is int
    body = {"features": features, "scores": np.array([0.25, np.nan]), "prediction": np.bool_(True)}
    assert json.loads(dumps(body)) == {"features": features, "scores": [0.25, None], "prediction": True}


def test_a_column_mapping_goes_as_the_uploads_query() -> None:
    from monitor_client.client import _mapping_params

    assert _mapping_params(
        {"prediction": "y_pred", "scores": {"leave": "p1"}, "features": {"tenure": "months"}, "ignore": ["a", "b"]}
        | {"ignore_unknown": True}
    ) == [
        ("prediction", "y_pred"),
        ("scores", "leave:p1"),
        ("feature", "tenure:months"),
        ("ignore", "a"),
        ("ignore", "b"),
        ("ignore_unknown", "true"),
    ]
