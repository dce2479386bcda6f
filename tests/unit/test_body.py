from __future__ import annotations

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
