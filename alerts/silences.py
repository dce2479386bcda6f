"""Silences: matchers over alert labels for a time range. A silenced alert still shows as
firing, but notifies nobody (Alertmanager's semantics and matcher operators)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

MatchOp = Literal["=", "!=", "=~", "!~"]


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    value: str
    op: MatchOp = "="

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name}: invalid regular expression: {exc}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = re.fullmatch(self.value, v) is not None  # anchored, as in Alertmanager
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
        if all(m.op in ("!=", "!~") or (m.op == "=~" and re.fullmatch(m.value, "")) for m in v):
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
