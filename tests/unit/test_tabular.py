from __future__ import annotations

import io

import orjson
import pandas as pd
import pytest

from monitor.domain.records import RecordValidator
from monitor.domain.schema import ModelSchema
from monitor.domain.tabular import TableFormat, UnreadableTable, format_from, read_reference

SCHEMA = ModelSchema.model_validate(
    {
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "features": [{"name": "x", "type": "numerical"}, {"name": "c", "type": "categorical"}],
        "segments": ["c", "channel"],
    }
)
FRAME = pd.DataFrame(
    {
        "x": [1.0, None],
        "c": ["a", "b"],
        "prediction": ["yes", "no"],
        "target": ["no", "no"],
        "score": [0.7, 0.1],
        "channel": ["web", "app"],
    }
)


def _bytes(fmt: TableFormat, df: pd.DataFrame = FRAME) -> bytes:
    if fmt is TableFormat.csv:
        return df.to_csv(index=False).encode()
    if fmt is TableFormat.parquet:
        buf = io.BytesIO()
        df.to_parquet(buf)
        return buf.getvalue()
    return df.to_json(orient="records").encode()


@pytest.mark.parametrize("fmt", list(TableFormat))
def test_flat_tables_become_nested_records(fmt: TableFormat) -> None:
    records, errors = read_reference(_bytes(fmt), fmt, SCHEMA)
    assert errors == []
    assert records[0] == {
        "features": {"x": 1.0, "c": "a"},
        "prediction": "yes",
        "label": "no",
        "scores": {"yes": 0.7},
        "segments": {"channel": "web"},
    }
    x = records[1]["features"]["x"]
    assert x is None or x != x  # a missing cell: NaN from tables, null from JSON


def test_nested_json_records_pass_through() -> None:
    doc = {"records": [{"features": {"x": 1, "c": "a"}, "label": "yes"}]}
    records, errors = read_reference(orjson.dumps(doc), TableFormat.json, SCHEMA)
    assert errors == [] and records == doc["records"]


def test_column_problems_are_reported_by_column() -> None:
    df = FRAME.drop(columns=["x"]).assign(colour="red", label="no")
    records, errors = read_reference(_bytes(TableFormat.csv, df), TableFormat.csv, SCHEMA)
    assert records == []
    assert {(e.index, e.field) for e in errors} == {(None, "colour"), (None, "x"), (None, "target")}


@pytest.mark.parametrize(
    ("fmt", "data"),
    [(TableFormat.json, b"{nope"), (TableFormat.parquet, b"not parquet"), (TableFormat.json, b'"a string"')],
)
def test_unreadable_files(fmt: TableFormat, data: bytes) -> None:
    with pytest.raises(UnreadableTable):
        read_reference(data, fmt, SCHEMA)


def test_format_detection() -> None:
    assert format_from("text/csv; charset=utf-8") is TableFormat.csv
    assert format_from("application/octet-stream", "ref.parquet") is TableFormat.parquet
    assert format_from(None, "ref.pq") is TableFormat.parquet
    assert format_from("application/octet-stream") is None


CODED = ModelSchema.model_validate(
    {
        "task": "binary_classification",
        "classes": ["0", "1"],
        "features": [{"name": "x", "type": "numerical"}, {"name": "plan", "type": "categorical"}],
        "segments": ["region"],
    }
)


@pytest.mark.parametrize("fmt", list(TableFormat))
def test_categories_typed_as_numbers_with_empty_cells_are_categories(fmt: TableFormat) -> None:
    """Integer codes with a gap: pandas and Parquet read them as floats (1.0, NaN). They are read
    back as the codes they were, and the empty cell as missing, whatever the file format."""
    df = pd.DataFrame(
        {
            "x": [0.5, 1.5, 2.5],
            "plan": [1, None, 3],
            "region": [7, 8, None],
            "prediction": [0, 1, 1],
            "label": [1, None, 0],
        }
    )
    records, errors = read_reference(_bytes(fmt, df), fmt, CODED)
    assert errors == []
    validator = RecordValidator(CODED)
    rows, row_errors = [], []
    for i, rec in enumerate(records):
        rows.append(validator.reference(i, rec, row_errors))
    assert row_errors == []
    assert [r.features["plan"] for r in rows] == ["1", None, "3"]
    assert [r.segments["region"] if r.segments else None for r in rows] == ["7", "8", None]
    assert [r.label for r in rows] == ["1", None, "0"] and [r.prediction for r in rows] == ["0", "1", "1"]


def test_a_category_written_with_leading_zeros_keeps_them() -> None:
    records, _ = read_reference(b"x,plan\n1.0,007\n2.0,010\n", TableFormat.csv, CODED)
    assert [r["features"]["plan"] for r in records] == ["007", "010"]


def test_a_fraction_in_a_category_column_is_still_refused_by_row_and_field() -> None:
    buf = io.BytesIO()
    pd.DataFrame({"x": [1.0, 2.0], "plan": [1.0, 2.5]}).to_parquet(buf)
    records, _ = read_reference(buf.getvalue(), TableFormat.parquet, CODED)
    errors: list = []
    RecordValidator(CODED).reference(1, records[1], errors)
    assert [(e.index, e.field) for e in errors] == [(1, "features.plan")]


def test_a_file_of_thousands_of_unknown_columns_is_refused_from_its_header() -> None:
    """100,000 columns none of the model's: refused naming the first hundred, in well under a
    second, without parsing the file (pandas took minutes of CPU over the header alone); with
    ignore_unknown, only the model's columns are parsed."""
    import time

    from monitor.domain.tabular import MAX_UNKNOWN_COLUMNS, ColumnMapping, TableFormat, read_reference

    schema = ModelSchema.model_validate({"task": "regression", "features": [{"name": "x", "type": "numerical"}]})
    header = ",".join(["x", "prediction", *(f"c{i}" for i in range(100_000))])
    data = f"{header}\n1.0,2.0{',' * 100_000}\n".encode()
    started = time.perf_counter()
    records, errors = read_reference(data, TableFormat.csv, schema)
    assert time.perf_counter() - started < 5
    assert not records and len(errors) == MAX_UNKNOWN_COLUMNS + 1
    assert errors[0].field == "c0" and "unknown column" in errors[0].reason
    assert errors[-1].field == "columns" and "100,000 columns" in errors[-1].reason
    records, errors = read_reference(data, TableFormat.csv, schema, ColumnMapping(ignore_unknown=True))
    assert not errors and records[0]["features"] == {"x": 1.0} and records[0]["prediction"] == 2.0
