"""COPY helpers: the only way rows reach the big tables.

Rows are formatted here rather than through ``Copy.write_row``: one joined string per chunk is
cheaper in Python than a call per row, and the prediction log is written on the ingestion hot
path. The log and its keys are written in COPY's binary format (``BinaryRows``): Postgres then
parses no time, integer, float or escaped text (the keys' COPY took 3.2 µs of Postgres a row
against 4.3 in text, and 1.3 µs of Python against 2.2; the log's 6.8 against 7.8 µs, where the
text of its ``jsonb`` values is still parsed, in either format: ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from struct import Struct
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


# COPY's binary format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4):
# a signature, flags and header extension length; then each row's field count and each field's
# byte length (-1: null) and value, big-endian; a field count of -1 ends the data.
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
BINARY_TRAILER = b"\xff\xff"
BINARY_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # a timestamptz is microseconds since
_MICROSECOND = timedelta(microseconds=1)
_LENGTH = Struct(">i")
_TIMESTAMP = Struct(">iq")
_FLOAT8 = Struct(">id")
_INT4 = Struct(">ii")


class BinaryRows:
    """Fields in COPY's binary format, each as its bytes with their length before them."""

    @staticmethod
    def row(n_fields: int) -> bytes:
        return n_fields.to_bytes(2, "big")

    @staticmethod
    def int4(value: int) -> bytes:
        return _INT4.pack(4, value)

    @staticmethod
    def text(value: str | None) -> bytes:
        if value is None:
            return BINARY_NULL
        data = value.encode()
        return _LENGTH.pack(len(data)) + data

    @staticmethod
    def raw(value: bytes | None) -> bytes:
        """``bytea``, and a ``uuid`` as its 16 bytes."""
        return BINARY_NULL if value is None else _LENGTH.pack(len(value)) + value

    @staticmethod
    def timestamptz(value: datetime) -> bytes:
        """An aware time (naive ones are refused by the subtraction)."""
        return _TIMESTAMP.pack(8, (value - _PG_EPOCH) // _MICROSECOND)

    @staticmethod
    def float8(value: float | None) -> bytes:
        return BINARY_NULL if value is None else _FLOAT8.pack(8, value)

    @staticmethod
    def jsonb(value: Any) -> bytes:
        """A value (plain, or decoded msgspec structs) as ``jsonb``: its format's version, 1, then
        the JSON text, which Postgres parses as it would in text format."""
        if value is None:
            return BINARY_NULL
        data = _encode(value)
        return _LENGTH.pack(len(data) + 1) + b"\x01" + data


def copy_binary(raw: Any, table: str, columns: Sequence[str], rows: Iterable[bytes]) -> None:
    """COPY rows already in binary format (``BinaryRows``) on the psycopg connection ``raw``."""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        chunk: list[bytes] = [BINARY_HEADER]
        for row in rows:
            chunk.append(row)
            if len(chunk) >= _CHUNK_ROWS:
                copy.write(b"".join(chunk))
                chunk.clear()
        chunk.append(BINARY_TRAILER)
        copy.write(b"".join(chunk))
