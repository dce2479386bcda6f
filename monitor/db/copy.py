"""COPY helpers: the only way rows reach the big tables.

Rows are formatted into COPY's text format here rather than through ``Copy.write_row``: one
joined string per chunk is several times cheaper in Python than a call per row, and the
prediction log is written on the ingestion hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import orjson

NULL = "\\N"
_encode = msgspec.json.Encoder().encode
_CHUNK_ROWS = 256


def dumps(value: Any) -> str | None:
    """JSON text for a jsonb column; None stays NULL."""
    return None if value is None else orjson.dumps(value).decode()


def text_field(value: str) -> str:
    """Escape a string for COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def json_field(value: Any) -> str:
    """A jsonb value in COPY's text format: plain values or decoded msgspec structs. The JSON
    encoder escapes control characters, so only backslashes need escaping for COPY."""
    if value is None:
        return NULL
    s = _encode(value).decode()
    return s.replace("\\", "\\\\") if "\\" in s else s


def field(value: Any) -> str:
    """Any scalar in COPY's text format."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return text_field(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def copy_lines(raw: Any, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """COPY pre-formatted lines (each ending in a newline) on the psycopg connection ``raw``."""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= _CHUNK_ROWS:
                copy.write("".join(chunk).encode())
                chunk.clear()
        if chunk:
            copy.write("".join(chunk).encode())


def copy_rows(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows of plain values (strings, numbers, datetimes, JSON text, None)."""
    copy_lines(raw, table, columns, ("\t".join(map(field, row)) + "\n" for row in rows))
