"""jsonb is read with orjson for speed, and must read exactly what the standard library reads."""

from __future__ import annotations

import json

import pytest

from monitor.db.engine import json_loads

DOCUMENTS = [
    '{"edges": [0.1, 0.30000000000000004, 1e-300, -2.5e+300, 12345678901234567], "n": 9223372036854775807}',
    '{"label": 123456789012345678901234567890}',  # beyond 64 bits: orjson alone would give a float
    '[-18446744073709551616, 1.0, 0, "12345678901234567890123"]',
    '"caf\\u00e9 \\ud83d\\ude00"',
    "null",
]


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_reads_exactly_what_the_standard_library_reads(doc: str, as_bytes: bool) -> None:
    got = json_loads(doc.encode() if as_bytes else doc)
    expected = json.loads(doc)
    assert got == expected and repr(got) == repr(expected)
