"""The compacted log's pure parts: the features' packing and the two-table subquery's shape."""

from __future__ import annotations

import json

import pytest

from monitor.db.log_blocks import pack_features, unpack_features
from monitor.db.log_rows import COLUMNS, at_time, in_window, log_rows

pytestmark = pytest.mark.unit


def test_features_come_back_exactly_as_packed() -> None:
    texts = [
        json.dumps({"a": 1.25, "note": "line\nbreak", "t": "tab\tand \\ backslash"}),  # \n escaped in JSON
        json.dumps({"city": "Zürich", "emoji": "🙂", "inf": "Infinity", "none": None}),
        "{}",
        json.dumps({"n": list(range(50))}),
    ]
    blob, size = pack_features(texts)
    assert unpack_features(blob, size) == texts
    assert size == len("\n".join(texts).encode()) and len(blob) < size


def test_a_query_reads_from_a_block_only_the_arrays_it_names() -> None:
    sql = log_rows(":m", "segments")
    block_arm = sql.split("UNION ALL")[1]
    assert "unnest(b.ts, b.segments)" in block_arm
    for column in set(COLUMNS) - {"ts", "segments"}:
        assert f"b.{column}" not in block_arm, column
    assert "ORDINALITY" not in sql and "features" not in sql
    with_features = log_rows(":m", "features", "prediction")
    assert "WITH ORDINALITY" in with_features and "b.id" in with_features
    assert with_features.count("model_id = :m") == 2  # each arm on the model's rows (one shard on Citus)


def test_an_unknown_column_is_refused() -> None:
    with pytest.raises(AssertionError, match="not a column"):
        log_rows(":m", "label")


def test_a_block_is_found_by_the_hour_it_lies_in() -> None:
    assert "p.first_ts > :s - interval '1 hour'" in in_window("p", ":s", ":e")
    assert "p.first_ts > k.ts - interval '1 hour'" in at_time("p", "k.ts") and "p.ts = k.ts" in at_time("p", "k.ts")
