"""Text Postgres cannot store: the NUL character (``\\u0000`` in JSON) in ``text`` and ``jsonb``,
and unpaired surrogates, which are not Unicode and cannot be encoded to UTF-8. Found here, with
where they are, so that a request holding one is refused with the field named instead of failing
in the database."""

from __future__ import annotations

from typing import Any

NUL_REASON = "contains a NUL character (\\u0000), which cannot be stored"
SURROGATE_REASON = "contains an unpaired surrogate, which is not valid Unicode"


def text_problem(s: str) -> str | None:
    if "\x00" in s:
        return NUL_REASON
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_REASON
    return None


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (or object key) in a decoded JSON value that cannot be stored, as
    (dotted path, reason); None when all can."""
    if isinstance(value, str):
        reason = text_problem(value)
        return (path, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (reason := text_problem(key)):
                return (path or "(key)", f"a key {reason}")
            found = find_unstorable(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_unstorable(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None
