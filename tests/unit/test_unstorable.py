"""Text Postgres cannot store, found with its path."""

from __future__ import annotations

import pytest

from monitor.domain.unstorable import NUL_REASON, SURROGATE_REASON, find_unstorable, text_problem


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"a": "fine", "b": [1, 2.5, None, True]}, None),
        ("é ü 漢字 🙂", None),
        ({"features": {"plan": "ba\x00sic"}}, ("features.plan", NUL_REASON)),
        ({"matchers": [{"name": "ok"}, {"name": "x\ud800"}]}, ("matchers.1.name", SURROGATE_REASON)),
        ({"features": {"pl\x00an": 1}}, ("features", f"a key {NUL_REASON}")),
        (["\x00"], ("0", NUL_REASON)),
    ],
)
def test_find_unstorable(value: object, found: tuple[str, str] | None) -> None:
    assert find_unstorable(value) == found


def test_text_problem() -> None:
    assert text_problem("plain") is None and text_problem("\x00") == NUL_REASON
    assert text_problem("\udc00") == SURROGATE_REASON
