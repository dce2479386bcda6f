"""The personal-data policies applied to records, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from monitor.domain.personal_data import PersonalData, hash_value
from monitor.domain.records import LabelRow, PredictionRow, ReferenceRow
from monitor.domain.row_sample import in_sample, sample_threshold
from monitor.domain.schema import ModelSchema, schema_from_json

pytestmark = pytest.mark.unit


def fake_hash(value: str) -> str:
    return f"h:{value[::-1]}"


SCHEMA: dict[str, Any] = {
    "task": "regression",
    "features": [
        {"name": "age", "type": "numerical"},
        {"name": "zip", "type": "categorical", "personal_data": "hash"},
        {"name": "note", "type": "categorical", "required": False, "personal_data": "drop"},
    ],
    "segments": ["zip", "region", "tier"],
    "personal_data": {"prediction_id": "hash", "segments": {"region": "hash"}},
}


def test_a_row_keeps_hashes_of_what_is_hashed_and_nothing_of_what_is_dropped() -> None:
    policy = PersonalData.of(ModelSchema.model_validate(SCHEMA))
    row = PredictionRow(
        "id-1",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"age": 40, "zip": "75001", "note": "x"},
        1.5,
        None,
        None,
        {"zip": "75001", "region": "north", "tier": "gold"},
    )
    stored = policy.prediction(row, fake_hash)
    assert stored.prediction_id == "h:1-di"
    assert stored.features == {"age": 40, "zip": "h:10057"}
    assert stored.segments == {"zip": "h:10057", "region": "h:htron", "tier": "gold"}
    assert row.features["zip"] == "75001"  # the row as validated is left as it was
    assert policy.label(LabelRow("id-1", 2.0, row.ts), fake_hash).prediction_id == "h:1-di"
    ref = policy.reference(ReferenceRow({"age": 3, "zip": 75001, "note": None}, 1.0, None, 1.0, None), fake_hash)
    assert ref.features == {"age": 3, "zip": "h:10057"}


def test_attributions_to_a_dropped_feature_are_dropped_with_it() -> None:
    """An attribution says how the feature's value moved the prediction: none is kept of a
    feature the log does not keep (a hashed one's are numbers that name nobody: kept)."""
    policy = PersonalData.of(ModelSchema.model_validate(SCHEMA))
    row = PredictionRow(
        "id-1",
        datetime(2026, 1, 1, tzinfo=UTC),
        {"age": 40, "zip": "1", "note": "x"},
        1.5,
        None,
        None,
        None,
        attributions={"age": 0.5, "zip": -0.25, "note": 2.0},
    )
    assert policy.prediction(row, fake_hash).attributions == {"age": 0.5, "zip": -0.25}
    only_note = PredictionRow("id-2", row.ts, {"age": 1}, 1.0, None, None, None, attributions={"note": 1.0})
    assert policy.prediction(only_note, fake_hash).attributions is None
    ref = ReferenceRow({"age": 3}, 1.0, None, 1.0, None, attributions={"note": 1.0, "age": 2.0})
    assert policy.reference(ref, fake_hash).attributions == {"age": 2.0}


@pytest.mark.parametrize(("value", "hashed"), [(None, None), ("a", "h:a"), (12, "h:21"), (True, "h:eurt")])
def test_a_category_is_hashed_as_summaries_key_it(value: Any, hashed: Any) -> None:
    assert hash_value(value, fake_hash) == hashed


def test_a_schema_keeping_everything_leaves_rows_untouched() -> None:
    policy = PersonalData.of(
        ModelSchema.model_validate({**SCHEMA, "features": SCHEMA["features"][:1], "segments": [], "personal_data": {}})
    )
    row = PredictionRow("id", datetime(2026, 1, 1, tzinfo=UTC), {"age": 1}, 1.0, None, None, None)
    assert policy.keeps_everything and policy.prediction(row, fake_hash) is row


def test_monitoring_sees_no_dropped_feature_and_validation_every_one() -> None:
    assert [f.name for f in schema_from_json(SCHEMA).features] == ["age", "zip"]
    assert [f.name for f in ModelSchema.model_validate(SCHEMA).features] == ["age", "zip", "note"]


@pytest.mark.parametrize(
    "change",
    [
        {"features": [{"name": "age", "type": "numerical", "personal_data": "hash"}], "segments": []},
        {"features": [{"name": "vip", "type": "boolean", "personal_data": "hash"}], "segments": []},
        {"personal_data": {"prediction_id": "drop"}},
        {"personal_data": {"segments": {"zip": "hash"}}},
        {"personal_data": {"segments": {"region": "drop"}}},
        {"personal_data": {"segments": {"elsewhere": "hash"}}},
        {"features": [{"name": "zip", "type": "categorical", "personal_data": "drop"}]},
        {"features": [{"name": "zip", "type": "categorical", "personal_data": "summarise_only"}]},
        {"personal_data": {"prediction_id": "summarise_only"}},
        {"personal_data": {"segments": {"region": "summarise_only"}}},
        {"personal_data": {"sample_rate": 0.1}},  # a sample of rows that are all kept
        {"personal_data": {"label_wait_hours": 24}},
        {"personal_data": {"rows": "summaries_only", "sample_rate": 1.5}},
        {"personal_data": {"rows": "summaries_only", "label_wait_hours": 0}},
        {"personal_data": {"rows": "only_some"}},
    ],
)
def test_a_policy_that_cannot_work_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelSchema.model_validate({**SCHEMA, **change})


def test_a_feature_only_summarised_is_summarised_and_not_stored() -> None:
    schema = ModelSchema.model_validate(
        {
            **SCHEMA,
            "features": [
                *SCHEMA["features"],
                {"name": "income", "type": "numerical", "personal_data": "summarise_only"},
            ],
        }
    )
    policy = PersonalData.of(schema)
    row = PredictionRow(
        "id", datetime(2026, 1, 1, tzinfo=UTC), {"age": 1, "zip": "a", "income": 9.5}, 1.0, None, None, None
    )
    row.attributions = {"age": 0.5, "income": 1.5}
    summarised = policy.prediction(row, fake_hash)
    assert summarised.features == {"age": 1, "zip": "h:a", "income": 9.5}
    assert summarised.attributions == {"age": 0.5, "income": 1.5}  # summarised whole
    assert policy.stored(summarised).features == {"age": 1, "zip": "h:a"}
    assert policy.stored(summarised).attributions == {"age": 0.5}  # stored without the feature's
    ref = ReferenceRow({"age": 1, "income": 2.0}, 1.0, None, None, None, attributions={"age": 1.0, "income": 3.0})
    assert policy.stored_reference(ref).attributions == {"age": 1.0}
    assert [f.name for f in schema.stored().features] == ["age", "zip"]
    assert [f.name for f in schema_from_json(schema.model_dump(mode="json")).features] == ["age", "zip", "income"]


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.5, 1.0])
def test_a_model_keeping_summaries_only_stores_features_only_in_its_sample(rate: float) -> None:
    schema = ModelSchema.model_validate(
        {**SCHEMA, "personal_data": {"rows": "summaries_only", "sample_rate": rate, "label_wait_hours": 24}}
    )
    assert schema.summaries_only and schema.carried_features() == {"age", "zip"}  # the dropped one is not
    assert schema_from_json(schema.model_dump(mode="json")).personal_data == schema.personal_data  # read back
    policy = PersonalData.of(schema)
    kept = 0
    for i in range(4000):
        row = PredictionRow(
            f"p{i}",
            datetime(2026, 1, 1, tzinfo=UTC),
            {"age": 1, "zip": "a"},
            1.0,
            None,
            3.0,
            {"region": "eu"},
            attributions={"age": 0.5},
        )
        stored = policy.stored(row)
        assert (stored.prediction, stored.latency_ms, stored.segments) == (1.0, 3.0, {"region": "eu"})
        assert stored.features in ({}, {"age": 1, "zip": "a"})
        assert bool(stored.features) == in_sample(row.prediction_id, sample_threshold(rate))
        assert stored.attributions == ({"age": 0.5} if stored.features else None)
        kept += bool(stored.features)
    assert abs(kept / 4000 - rate) < 0.02


def test_the_sample_threshold_spans_nothing_to_everything() -> None:
    assert sample_threshold(0.0) == bytes(8) and not in_sample("x", sample_threshold(0.0))
    assert sample_threshold(1.0) is None and in_sample("x", None)
    assert sample_threshold(0.5) == bytes([0x80, 0, 0, 0, 0, 0, 0, 0])
    assert ModelSchema.model_validate(SCHEMA).carried_features() == frozenset()
