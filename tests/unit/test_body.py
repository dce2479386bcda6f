from __future__ import annotations

import math

import pytest

from monitor.domain.payloads import parse_records
from monitor.errors import MalformedBody, MonitorError


def test_batch_object() -> None:
    records, model, version = parse_records(b'{"model": "m", "version": 2, "records": [{"a": 1}]}', "application/json")
    assert (records, model, version) == ([{"a": 1}], "m", "2")


def test_single_record_and_array() -> None:
    assert parse_records(b'{"model": "m", "features": {}}', "application/json")[0] == [{"model": "m", "features": {}}]
    assert parse_records(b"[{}, {}]", "application/json")[0] == [{}, {}]


def test_ndjson_skips_blank_lines_and_names_the_bad_line() -> None:
    records, _, _ = parse_records(b'{"a": 1}\n\n{"a": 2}\n', "application/x-ndjson")
    assert records == [{"a": 1}, {"a": 2}]
    with pytest.raises(MalformedBody, match="NDJSON line 2"):
        parse_records(b'{"a": 1}\n{"a": \n', "application/x-ndjson")


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        (b"", MalformedBody, "empty"),
        (b"{nope", MalformedBody, "not valid JSON"),
        (b"42", MalformedBody, "expected a JSON object or array"),
        (b'{"model": "m", "records": {}}', MalformedBody, "must be a JSON array"),
        (b'{"model": "m", "records": [], "extra": 1}', MonitorError, "unknown batch fields: extra"),
        (b'{"model": 5, "records": []}', MonitorError, "`model` must be a string"),
    ],
)
def test_bad_bodies(body: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_records(body, "application/json")


def test_pythons_non_standard_literals_are_read_as_json_dumps_writes_them() -> None:
    """``json.dumps`` writes Infinity, -Infinity and NaN for a float feature; orjson refuses them,
    the body is read again by the standard library so the validator can judge each value."""
    body = b'{"model": "m", "records": [{"features": {"a": Infinity, "b": -Infinity, "c": NaN, "d": 1e400}}]}'
    (record,), _, _ = parse_records(body, "application/json")
    f = record["features"]
    assert f["a"] == math.inf and f["b"] == -math.inf and math.isnan(f["c"]) and f["d"] == math.inf
    with pytest.raises(MalformedBody, match="not valid JSON: unexpected character"):
        parse_records(b'{"a": Infinityx}', "application/json")  # still orjson's message
