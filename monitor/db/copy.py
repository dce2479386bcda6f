"""COPY helpers: the only way rows reach the big tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson


def dumps(value: Any) -> str | None:
    """JSON text for a jsonb column (COPY's text format parses it server-side); None stays NULL."""
    return None if value is None else orjson.dumps(value).decode()


def copy_rows(raw: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``table`` on the psycopg connection ``raw``, inside its open transaction."""
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
