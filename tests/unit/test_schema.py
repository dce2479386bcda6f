from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.domain.schema import ModelSpec, Task

FEATURES = [{"name": "x", "type": "numerical"}, {"name": "c", "type": "categorical"}]


def spec(**kw: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "features": FEATURES, **kw})


def test_binary_defaults_positive_class_to_second_class() -> None:
    s = spec(task="binary_classification", classes=["no", "yes"])
    assert s.positive_class == "yes"
    assert s.task is Task.binary_classification
    assert s.schema_only().model_dump()["positive_class"] == "yes"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"task": "multiclass_classification"}, "classification models need `classes`"),
        ({"task": "binary_classification", "classes": ["a", "b", "c"]}, "exactly two classes"),
        ({"task": "multiclass_classification", "classes": ["a", "a"]}, "duplicate class labels"),
        ({"task": "binary_classification", "classes": ["a", "b"], "positive_class": "z"}, "not one of the classes"),
        ({"task": "regression", "classes": ["a", "b"]}, "regression models take no classes"),
        ({"task": "regression", "segments": ["x"]}, "numerical features cannot be segment columns"),
        ({"task": "regression", "segments": ["s", "s"]}, "duplicate segment names"),
        ({"task": "regression", "features": [*FEATURES, {"name": "x", "type": "boolean"}]}, "duplicate feature names"),
        ({"task": "regression", "features": []}, "at least 1 item"),
        ({"task": "ranking"}, "Input should be"),
        ({"task": "regression", "name": "bad name!"}, "String should match pattern"),
        ({"task": "regression", "features": [{"name": "x", "type": "text"}]}, "Input should be"),
    ],
)
def test_invalid_specs_are_refused_with_the_reason(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**kw)


def test_classes_as_scikit_learn_gives_them() -> None:
    """classes_ of a scikit-learn classifier are often numbers: [0, 1], or booleans; a binary
    model without classes is [0, 1]. They are kept as text, so 1, 1.0 and '1' are one class."""
    assert spec(task="binary_classification").classes == ["0", "1"]
    assert spec(task="binary_classification").positive_class == "1"
    assert spec(task="multiclass_classification", classes=[0, 1, 2]).classes == ["0", "1", "2"]
    assert spec(task="binary_classification", classes=[False, True]).classes == ["False", "True"]
    assert spec(task="binary_classification", classes=[0.0, 1.0], positive_class=1).positive_class == "1"
    with pytest.raises(ValidationError, match="a class is text, an integer or a boolean"):
        spec(task="binary_classification", classes=[0.5, 1])
