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
        ({"task": "binary_classification"}, "classification models need `classes`"),
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
