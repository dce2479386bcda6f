"""The one-pass decoder may only speed things up: whatever it accepts, the Python validator
accepts with the same result; whatever needs converting or explaining, it hands back (None)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from monitor.domain.fast_batch import BatchDecoder, features_as_dict, peek_batch
from monitor.domain.records import RecordValidator
from monitor.domain.schema import ModelSchema
from monitor.errors import RecordError
from tests.unit.test_records import BINARY, BOUNDS, REGRESSION

SCHEMAS = {
    "binary": BINARY,
    "multiclass": ModelSchema.model_validate(
        {
            "task": "multiclass_classification",
            "classes": ["a", "b", "c"],
            "features": [{"name": "x", "type": "numerical"}],
        }
    ),
    "regression": REGRESSION,
    # scikit-learn's classes_: numbers
    "sklearn": ModelSchema.model_validate(
        {"task": "binary_classification", "classes": [0, 1], "features": [{"name": "x", "type": "numerical"}]}
    ),
}

BASE = {
    "binary": {"features": {"age": 41, "city": "Oslo", "vip": True}, "prediction": "yes"},
    "multiclass": {"features": {"x": 1.5}, "prediction": "b"},
    "regression": {"features": {"x": 1.5}, "prediction": 3.25},
    "sklearn": {"features": {"x": 1.5}, "prediction": 1},
}

ACCEPTED = [
    ("binary", {}),
    ("binary", {"prediction_id": "p-1", "timestamp": "2026-11-22T11:00:00Z", "latency_ms": 3}),
    ("binary", {"timestamp": "2026-11-22T11:00:00.123456+02:00", "latency_ms": 2.5}),
    ("binary", {"timestamp": "2026-11-22T11:30:00"}),
    ("binary", {"timestamp": "2026-11-22 11:00:00"}),
    ("binary", {"scores": 0.7}),
    ("binary", {"scores": 1}),
    ("binary", {"scores": {"no": 0.1, "yes": 0.9}}),
    ("binary", {"segments": {"channel": "web"}}),
    ("binary", {"segments": {"channel": None}, "model": "m"}),
    ("binary", {"features": {"age": None, "city": None, "vip": None}}),
    ("binary", {"features": {"age": 1.5, "city": "x", "vip": False, "note": "n"}}),
    ("binary", {"features": {"age": 2, "city": 'é\\t"quoted"', "vip": False}}),
    ("multiclass", {"scores": {"a": 0.2, "b": 0.5, "c": 0.3}}),
    ("regression", {"prediction": 3}),
    ("sklearn", {}),  # the class as the number a scikit-learn model predicts
    ("sklearn", {"prediction": "0", "scores": {"0": 0.6, "1": 0.4}}),
    ("sklearn", {"prediction": 0, "scores": 0.2}),
    ("regression", {"latency_ms": 0}),
    ("regression", {"features": {"x": 2**53}, "prediction": -(2**53), "latency_ms": 2**53}),  # the bound itself
    ("regression", {"features": {"x": -9.007e15}, "prediction": 9.007e15}),
    ("binary", {"attributions": {"age": 0.25, "city": -1, "vip": 0}}),
    ("binary", {"attributions": {"age": 0.25, "vip": None}}),  # one left out, one null: both missing
    ("binary", {"attributions": {"age": None}}),  # none given: as no attributions
    ("binary", {"attributions": {}}),
    ("binary", {"attributions": None}),
    ("regression", {"attributions": {"x": -(2**53)}}),
]

HANDED_BACK = [
    ("binary", {"features": {"age": 41, "city": 12, "vip": True}}),  # int category: converted
    ("binary", {"features": {"age": 41, "city": "x", "vip": 1}}),  # 0/1 boolean: converted
    ("binary", {"prediction": 1}),  # class given as a number
    ("binary", {"timestamp": 1_763_805_600}),  # epoch
    ("binary", {"timestamp": "2026-09-01T00:00:00Z"}),  # older than retention: an error
    ("binary", {"timestamp": "2026-11-23T00:00:00Z"}),  # too far ahead: an error
    ("binary", {"features": {"age": "41", "city": "x", "vip": True}}),
    ("binary", {"features": {"age": True, "city": "x", "vip": True}}),
    ("binary", {"features": {"age": 1, "city": "x"}}),
    ("binary", {"features": {"age": 1, "city": "x", "vip": True, "zip": 1}}),
    ("binary", {"features": {"age": 1, "city": "x" * 2000, "vip": True}}),
    ("binary", {"prediction": "maybe"}),
    ("binary", {"scores": 1.5}),
    ("binary", {"scores": {}}),
    ("binary", {"scores": {"maybe": 0.5}}),
    ("binary", {"latency_ms": -1}),
    ("binary", {"prediction_id": ""}),
    ("binary", {"prediction_id": 17}),
    ("binary", {"segments": {"device": "ios"}}),
    ("binary", {"segments": {"channel": 3}}),
    ("binary", {"colour": "red"}),
    ("binary", {"model": "other"}),
    ("binary", {"version": "2"}),
    ("regression", {"scores": {"a": 0.5}}),
    ("sklearn", {"prediction": 1.0}),  # an integral float: the full path takes it as class 1
    ("sklearn", {"prediction": 2}),  # not a class: an error
    ("sklearn", {"prediction": True}),
    ("regression", {"prediction": "high"}),
    # numbers past records.MAX_MAGNITUDE, which the full path refuses with the field named
    ("binary", {"features": {"age": 2**53 + 1, "city": "x", "vip": True}}),
    ("binary", {"features": {"age": 1e200, "city": "x", "vip": True}}),
    ("binary", {"features": {"age": -1e16, "city": "x", "vip": True}}),
    ("binary", {"latency_ms": 1e300}),
    ("regression", {"prediction": 1e17}),
    ("binary", {"attributions": {"zip": 0.5}}),  # not a feature
    ("binary", {"attributions": {"age": "0.5"}}),
    ("binary", {"attributions": {"age": True}}),
    ("binary", {"attributions": {"age": 1e300}}),
    ("binary", {"attributions": [0.5, 0.2, 0.1]}),
]


def fast(kind: str, records: list[dict[str, Any]], model: str = "m", version: str | None = None) -> Any:
    body = orjson.dumps({"model": model, "version": version, "records": records})
    peeked = peek_batch(body)
    assert peeked is not None
    return BatchDecoder(SCHEMAS[kind]).decode(peeked[2], peeked[0], peeked[1], BOUNDS)


@pytest.mark.parametrize(("kind", "overrides"), ACCEPTED)
def test_accepted_records_match_the_python_validator(kind: str, overrides: dict[str, Any]) -> None:
    rec = {**BASE[kind], **overrides}
    rows = fast(kind, [rec])
    assert rows is not None and len(rows) == 1
    errors: list[RecordError] = []
    expected = RecordValidator(SCHEMAS[kind]).prediction(0, rec, BOUNDS, errors)
    assert errors == [] and expected is not None
    got = rows[0]
    if "prediction_id" in rec:
        assert got.prediction_id == expected.prediction_id
    else:
        assert len(got.prediction_id) == 32
    assert got.ts == expected.ts and got.ts.tzinfo is not None
    assert features_as_dict(got.features) == expected.features
    assert got.prediction == expected.prediction
    assert got.scores == expected.scores
    assert got.latency_ms == expected.latency_ms
    assert got.segments == expected.segments
    assert got.attributions == expected.attributions


@pytest.mark.parametrize(("kind", "overrides"), HANDED_BACK)
def test_records_needing_conversion_or_explanation_are_handed_back(kind: str, overrides: dict[str, Any]) -> None:
    rec = {**BASE[kind], **overrides}
    # alone, and hidden in the middle of good records
    assert fast(kind, [rec]) is None
    assert fast(kind, [BASE[kind], rec, BASE[kind]]) is None


def test_peek_batch_only_takes_the_batch_shape() -> None:
    assert peek_batch(b'[{"model": "m"}]') is None
    assert peek_batch(b'{"model": "m", "features": {}}') is None
    assert peek_batch(b'{"records": []}') is None
    assert peek_batch(b"{nope") is None
    model, version, raw = peek_batch(b'{"model": "m", "version": "2", "records": [1, 2]}')
    assert (model, version, bytes(raw)) == ("m", "2", b"[1, 2]")


@pytest.mark.parametrize(
    ("field", "record"),
    [
        ("features.x", b'{"features": {"x": 1%s}, "prediction": 1}' % (b"0" * 400)),
        ("features.x", b'{"features": {"x": -1e200}, "prediction": 1}'),
        ("prediction", b'{"features": {"x": 1}, "prediction": 1%s}' % (b"0" * 400)),
        ("latency_ms", b'{"features": {"x": 1}, "prediction": 1, "latency_ms": 1%s}' % (b"0" * 400)),
        ("latency_ms", b'{"features": {"x": 1}, "prediction": 1, "latency_ms": 1e300}'),
    ],
)
def test_numbers_past_the_bound_take_the_full_path_and_are_refused_there(field: str, record: bytes) -> None:
    body = b'{"model": "m", "records": [' + record + b"]}"
    peeked = peek_batch(body)
    assert peeked is not None
    assert BatchDecoder(REGRESSION).decode(peeked[2], "m", None, BOUNDS) is None
    errors: list[RecordError] = []
    rec = json.loads(record)  # the standard library reads a 400-digit integer exactly
    assert RecordValidator(REGRESSION).prediction(0, rec, BOUNDS, errors) is None
    assert [e.field for e in errors] == [field] and "2^53" in errors[0].reason


def test_json_nested_past_any_depth_is_handed_back_not_raised() -> None:
    deep = b'{"model": "m", "records": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert peek_batch(deep) is None
    inner = b'[{"features": {"x": ' + b"[" * 5000 + b"]" * 5000 + b'}, "prediction": 1}]'
    assert BatchDecoder(REGRESSION).decode(inner, "m", None, BOUNDS) is None
