"""Silences: matchers over alert labels for a time range. A silenced alert still shows as
firing, but notifies nobody (Alertmanager's semantics and matcher operators).

Regular expressions run on RE2, as Alertmanager's do on Go's regexp: time linear in the label's
length, whatever the pattern. Python's backtracking engine would let an admin's ``(a+)+$`` take
seconds per alert listing and notification; what RE2 cannot run in linear time (backreferences,
lookaround) is refused when the silence is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

import re2
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

MatchOp = Literal["=", "!=", "=~", "!~"]
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the caller, not to stderr
MAX_PATTERN_CHARS = 1024


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> re2._Regexp:
    """The pattern anchored at both ends (Alertmanager's semantics); ``ValueError`` saying why RE2
    refuses it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"a regular expression may hold at most {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(f"^(?:{pattern})$", options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"invalid regular expression (RE2 syntax: no backreferences or lookaround): {reason}"
        ) from None


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: str
    op: MatchOp = "="

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                compile_regex(self.value)
            except ValueError as exc:
                raise ValueError(f"matcher {self.name}: {exc}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = compile_regex(self.value).search(v) is not None  # anchored, as in Alertmanager
        return hit if self.op == "=~" else not hit


class SilenceSpec(BaseModel):
    """What an API caller sends to create a silence."""

    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher]
    starts_at: datetime | None = None  # default: now
    ends_at: datetime
    created_by: str
    comment: str

    @field_validator("matchers")
    @classmethod
    def _some(cls, v: list[Matcher]) -> list[Matcher]:
        if not v:
            raise ValueError("a silence needs at least one matcher")
        if all(m.op in ("!=", "!~") or (m.op == "=~" and compile_regex(m.value).search("")) for m in v):
            raise ValueError("a silence needs a matcher that does not match every alert")
        return v


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def silences(self, labels: dict[str, str], now: datetime) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)


def silenced_by(labels: dict[str, str], silences: list[Silence], now: datetime) -> list[str]:
    return [s.id for s in silences if s.silences(labels, now)]
