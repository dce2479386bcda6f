"""Inhibition, as Alertmanager's: while an alert matching a rule's source matchers fires, alerts
matching its target matchers that carry the same values of the ``equal`` labels are muted. The
usual use: a model's dataset drift mutes the per-feature drift alerts of the same model and
window, so on-call reads one message about the incident, not one per feature.

Like a silence, an inhibited alert still shows as firing (with ``inhibited_by``: the source
alerts' fingerprints) and notifies nobody. An alert that matches both sides of a rule is not
muted by another that also matches both (nor by itself): two alerts of one kind never mute each
other. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.rules import Name
from alerts.silences import Matcher
from alerts.state import Alert, State

MAX_MATCHERS = 20


class InhibitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Name
    source_matchers: list[Matcher] = Field(description="the alerts that mute, when firing")
    target_matchers: list[Matcher] = Field(description="the alerts that are muted")
    equal: list[str] = Field(
        default_factory=list, description="labels whose values source and target must share (a missing label is '')"
    )

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _some(cls, v: list[Matcher]) -> list[Matcher]:
        if not v:
            raise ValueError("at least one matcher")
        if len(v) > MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} matchers")
        return v

    @field_validator("equal")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_MATCHERS:
            raise ValueError(f"at most {MAX_MATCHERS} labels")
        return v

    def to_doc(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def _all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def inhibitions(alerts: Iterable[Alert], rules: list[InhibitRule]) -> dict[str, list[str]]:
    """For every muted alert (any state), the fingerprints of the firing alerts that mute it."""
    alerts = list(alerts)
    firing = [a for a in alerts if a.state is State.firing]
    out: dict[str, list[str]] = {}
    for rule in rules:
        # the sources of this rule, indexed by their values of the equal labels
        sources: dict[tuple[str, ...], list[Alert]] = {}
        for s in firing:
            if _all(rule.source_matchers, s.labels):
                sources.setdefault(tuple(s.labels.get(k, "") for k in rule.equal), []).append(s)
        if not sources:
            continue
        for t in alerts:
            if not _all(rule.target_matchers, t.labels):
                continue
            candidates = sources.get(tuple(t.labels.get(k, "") for k in rule.equal), [])
            if _all(rule.source_matchers, t.labels):  # both sides: only a source that is not both mutes it
                candidates = [s for s in candidates if not _all(rule.target_matchers, s.labels)]
            for s in candidates:
                if s.fingerprint != t.fingerprint and s.fingerprint not in out.get(t.fingerprint, []):
                    out.setdefault(t.fingerprint, []).append(s.fingerprint)
    return out
