"""Record validation: every kind of bad field is reported with index, field and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.domain.records import RecordValidator, parse_timestamp, time_bounds
from monitor.domain.schema import ModelSchema
from monitor.errors import RecordError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BOUNDS = time_bounds(NOW, retention_days=30, skew_seconds=3600)

BINARY = ModelSchema.model_validate(
    {
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "features": [
            {"name": "age", "type": "numerical"},
            {"name": "city", "type": "categorical"},
            {"name": "vip", "type": "boolean"},
            {"name": "note", "type": "categorical", "required": False},
        ],
        "segments": ["city", "channel"],
    }
)
REGRESSION = ModelSchema.model_validate({"task": "regression", "features": [{"name": "x", "type": "numerical"}]})


def good(**overrides: Any) -> dict[str, Any]:
    rec = {
        "prediction_id": "p1",
        "timestamp": "2026-11-22T11:00:00Z",
        "features": {"age": 41, "city": "Oslo", "vip": True},
        "prediction": "yes",
        "scores": {"no": 0.2, "yes": 0.8},
        "latency_ms": 12,
        "segments": {"channel": "web"},
    }
    rec.update(overrides)
    return rec


def validate(raw: Any, schema: ModelSchema = BINARY) -> tuple[Any, list[RecordError]]:
    errors: list[RecordError] = []
    row = RecordValidator(schema).prediction(7, raw, BOUNDS, errors)
    return row, errors


def test_a_good_record_is_normalised() -> None:
    row, errors = validate(good())
    assert errors == []
    assert row.prediction_id == "p1"
    assert row.ts == datetime(2026, 11, 22, 11, tzinfo=UTC)
    assert row.features == {"age": 41, "city": "Oslo", "vip": True}
    assert row.segments == {"city": "Oslo", "channel": "web"}
    assert row.latency_ms == 12.0


def test_defaults_generated_id_and_now() -> None:
    rec = good()
    del rec["prediction_id"], rec["timestamp"]
    row, errors = validate(rec)
    assert errors == []
    assert len(row.prediction_id) == 32
    assert row.ts == NOW


def test_binary_single_score_means_positive_class_and_int_category_becomes_string() -> None:
    row, errors = validate(good(scores=0.9, features={"age": 1.5, "city": 12, "vip": 0}, prediction="no"))
    assert errors == []
    assert row.scores == {"yes": 0.9}
    assert row.features == {"age": 1.5, "city": "12", "vip": False}


def test_null_feature_is_a_missing_value_not_an_error() -> None:
    row, errors = validate(good(features={"age": None, "city": None, "vip": None}))
    assert errors == []
    assert row.features == {"age": None, "city": None, "vip": None}
    assert row.segments == {"city": None, "channel": "web"}


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"features": {"age": "41", "city": "Oslo", "vip": True}}, "features.age", "expected a number, got string"),
        ({"features": {"age": True, "city": "Oslo", "vip": True}}, "features.age", "expected a number, got boolean"),
        ({"features": {"city": "Oslo", "vip": True}}, "features.age", "required feature is missing"),
        ({"features": {"age": 1, "city": "Oslo", "vip": True, "zip": 1}}, "features.zip", "unknown feature"),
        ({"features": {"age": 1, "city": 1.5, "vip": True}}, "features.city", "expected a string category"),
        ({"features": {"age": 1, "city": "x", "vip": "yes"}}, "features.vip", "expected a boolean"),
        ({"features": [1, 2]}, "features", "expected an object, got array"),
        ({"prediction": "maybe"}, "prediction", "is not one of the model's classes"),
        ({"prediction": None}, "prediction", "is required"),
        ({"scores": {"yes": 1.5}}, "scores.yes", "probability between 0 and 1"),
        ({"scores": {"perhaps": 0.5}}, "scores.perhaps", "not one of the model's classes"),
        ({"scores": "high"}, "scores", "expected an object of class probabilities"),
        ({"latency_ms": -1}, "latency_ms", "non-negative number"),
        ({"timestamp": "yesterday"}, "timestamp", "unparseable timestamp"),
        ({"timestamp": "2026-09-01T00:00:00Z"}, "timestamp", "older than the retention period (30 days)"),
        ({"timestamp": "2026-11-23T00:00:00Z"}, "timestamp", "more than 3600 s in the future"),
        ({"prediction_id": ""}, "prediction_id", "must be 1 to 256 characters"),
        ({"prediction_id": ["a"]}, "prediction_id", "expected a string"),
        ({"segments": {"device": "ios"}}, "segments.device", "unknown segment column"),
        ({"segments": {"channel": {"a": 1}}}, "segments.channel", "expected a string"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"attributions": {"zip": 0.5}}, "attributions.zip", "unknown feature"),
        ({"attributions": {"age": "0.5"}}, "attributions.age", "expected a number, got string"),
        ({"attributions": {"age": True}}, "attributions.age", "expected a number, got boolean"),
        ({"attributions": {"age": float("inf")}}, "attributions.age", "finite number"),
        ({"attributions": {"age": "Infinity"}}, "attributions.age", "expected a number, got string"),
        ({"attributions": {"age": 1e200}}, "attributions.age", "magnitude at most 2^53"),
        ({"attributions": {"age": 10**400}}, "attributions.age", "magnitude at most 2^53"),
        ({"attributions": [0.5]}, "attributions", "expected an object, got array"),
    ],
)
def test_each_bad_field_is_reported(overrides: dict[str, Any], field: str, reason: str) -> None:
    row, errors = validate(good(**overrides))
    assert row is None
    assert [(e.index, e.field) for e in errors] == [(7, field)]
    assert reason in errors[0].reason


def test_attributions_are_numbers_by_feature_and_null_is_missing_not_zero() -> None:
    row, errors = validate(good(attributions={"age": 1, "city": -0.5, "vip": None}))
    assert errors == [] and row is not None
    assert row.attributions == {"age": 1, "city": -0.5}
    for nothing in ({}, {"vip": None}, None, float("nan")):
        row, errors = validate(good(attributions=nothing))
        assert errors == [] and row is not None and row.attributions is None


def test_a_reference_row_takes_attributions_as_a_prediction_does() -> None:
    errors: list[RecordError] = []
    raw = {"features": {"age": 1, "city": "x", "vip": True}, "attributions": {"age": 2, "zip": 1}}
    assert RecordValidator(BINARY).reference(3, raw, errors) is None
    assert [(e.index, e.field) for e in errors] == [(3, "attributions.zip")]
    raw["attributions"] = {"age": 2}
    row = RecordValidator(BINARY).reference(3, raw, errors := [])
    assert row is not None and row.attributions == {"age": 2.0}


def test_every_problem_of_a_record_is_listed() -> None:
    row, errors = validate({"features": {"age": "x"}, "prediction": "z", "extra": 1})
    assert row is None
    assert {e.field for e in errors} == {"extra", "features.age", "features.city", "features.vip", "prediction"}


def test_not_an_object() -> None:
    row, errors = validate([1, 2, 3])
    assert row is None and errors[0].field == "" and "expected a JSON object" in errors[0].reason


def test_regression_prediction_and_label_must_be_numbers() -> None:
    v = RecordValidator(REGRESSION)
    errors: list[RecordError] = []
    assert v.prediction(0, {"features": {"x": 1}, "prediction": 2.5}, BOUNDS, errors) is not None
    assert v.prediction(1, {"features": {"x": 1}, "prediction": "high"}, BOUNDS, errors) is None
    assert v.prediction(2, {"features": {"x": 1}, "prediction": 1, "scores": {"a": 1}}, BOUNDS, errors) is None
    assert v.label(3, {"prediction_id": "a", "label": "x"}, BOUNDS, errors) is None
    assert [(e.index, e.field) for e in errors] == [(1, "prediction"), (2, "scores"), (3, "label")]


def test_labels() -> None:
    v = RecordValidator(BINARY)
    errors: list[RecordError] = []
    row = v.label(0, {"prediction_id": 17, "label": "yes", "timestamp": 1_700_000_000}, BOUNDS, errors)
    assert row is not None and row.prediction_id == "17" and row.label == "yes"
    assert row.ts == datetime.fromtimestamp(1_700_000_000, UTC)
    assert v.label(1, {"label": "yes"}, BOUNDS, errors) is None
    assert v.label(2, {"prediction_id": "a", "label": "maybe"}, BOUNDS, errors) is None
    assert v.label(3, {"prediction_id": "a", "label": "no", "source": "x"}, BOUNDS, errors) is None
    assert [(e.index, e.field) for e in errors] == [(1, "prediction_id"), (2, "label"), (3, "source")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:00:00Z", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        ("2026-11-22T10:00:00+02:00", datetime(2026, 11, 22, 8, tzinfo=UTC)),
        ("2026-11-22 10:00:00", datetime(2026, 11, 22, 10, tzinfo=UTC)),
        (1_763_805_600, datetime(2025, 11, 22, 10, tzinfo=UTC)),
        (1_763_805_600_000, datetime(2025, 11, 22, 10, tzinfo=UTC)),
        (1_763_805_600.5, datetime(2025, 11, 22, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(raw: Any, expected: datetime) -> None:
    assert parse_timestamp(raw) == expected


def test_time_bounds() -> None:
    assert BOUNDS.earliest == NOW - timedelta(days=30)
    assert BOUNDS.latest == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("features", "field", "reason"),
    [
        ({"age": 1e200, "city": "Oslo", "vip": True}, "features.age", "finite"),
        ({"age": "inf", "city": "Oslo", "vip": True}, "features.age", "expected a number, got string"),
        ({"age": 1, "city": "x" * 2000, "vip": True}, "features.city", "longer than 1024"),
        ({"age": 1, "town": "Oslo", "vip": True}, "features.town", "unknown feature"),
        ({"age": 1, "city": "Oslo", "vip": 1.0}, "features.vip", "expected a boolean"),
        ({"age": [1], "city": "Oslo", "vip": True}, "features.age", "expected a number, got array"),
    ],
)
def test_values_the_fast_path_must_not_wave_through(features: dict[str, Any], field: str, reason: str) -> None:
    row, errors = validate(good(features=features))
    assert row is None
    assert field in [e.field for e in errors]
    assert any(reason in e.reason for e in errors)


def test_nan_from_a_table_is_a_missing_value() -> None:
    errors: list[RecordError] = []
    row = RecordValidator(BINARY).reference(0, {"features": {"age": float("nan"), "city": "a", "vip": False}}, errors)
    assert errors == [] and row is not None and row.features["age"] is None


def test_a_record_whose_every_category_is_missing_is_valid() -> None:
    """The one categorical feature null (and not a segment): the grouped type check once took the
    longest of no categories and failed (a 500 at the API), instead of letting it through."""
    schema = ModelSchema.model_validate(
        {
            "task": "regression",
            "features": [{"name": "plan", "type": "categorical"}, {"name": "x", "type": "numerical"}],
        }
    )
    row, errors = validate({"features": {"plan": None, "x": 1.0}, "prediction": 2.0}, schema)
    assert errors == [] and row.features == {"plan": None, "x": 1.0}


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ("Infinity", "Infinity"),  # protobuf's JSON mapping
        ("-Infinity", "-Infinity"),
        ("NaN", None),  # missing, as a NaN number is
        (float("nan"), None),
    ],
)
def test_infinity_in_a_numerical_feature_is_kept_as_data(value: Any, stored: str | None) -> None:
    row, errors = validate(good(features={"age": value, "city": "Oslo", "vip": True}))
    assert errors == [] and row.features["age"] == stored


@pytest.mark.parametrize(
    "record",
    [
        {"prediction_id": "p", "features": {"x": 1.0}, "prediction": float("inf")},
        {"prediction_id": "p", "features": {"x": 1.0}, "prediction": "Infinity"},
        {"prediction_id": "p", "features": {"x": 1.0}, "prediction": 1.0, "latency_ms": float("inf")},
    ],
)
def test_infinity_is_still_refused_where_it_is_not_a_feature(record: dict[str, Any]) -> None:
    """A regression prediction, a label or a latency of ±inf cannot be measured: refused, named."""
    row, errors = validate(record, REGRESSION)
    assert row is None and errors and errors[0].field in ("prediction", "latency_ms")


def test_numeric_classes_take_labels_as_numbers_floats_and_text() -> None:
    schema = ModelSchema.model_validate(
        {"task": "binary_classification", "classes": [0, 1], "features": [{"name": "x", "type": "numerical"}]}
    )
    v = RecordValidator(schema)
    for raw, expected in [(1, "1"), (1.0, "1"), ("0", "0"), (0.0, "0")]:
        errors: list[RecordError] = []
        row = v.label(0, {"prediction_id": "p", "label": raw}, BOUNDS, errors)
        assert errors == [] and row is not None and row.label == expected, raw
    for raw in (0.5, True, 2, "1.0"):
        errors = []
        assert v.label(0, {"prediction_id": "p", "label": raw}, BOUNDS, errors) is None, raw
        assert errors[0].field == "label" and "not one of the model's classes" in errors[0].reason
