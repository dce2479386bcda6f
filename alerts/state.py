"""The alert state machine, with Prometheus's semantics: one instance per rule and label set.

    inactive --condition--> pending --held for `for`--> firing --condition gone--> resolved
                               |                           ^    (after `keep_firing_for`)
                               +--condition gone--> inactive (never notified)

A pure function of the previous state, whether the condition holds now, and the time: the
engine stores what it returns, and notifies on the transitions it reports.

The condition may also be undecided (``holds`` None): the window rests on too few rows, the
series made no decision, there is no value or no baseline. That says nothing about the incident,
so it changes nothing: a firing alert stays firing and a pending one pending (it fires only on a
decided evaluation). A window too small to decide is what every "1h" window was just after its
hour turned; resolving then told on-call an incident was over while it was not. An alert that
stays undecided for ``undecided_for`` after the condition last held resolves: by then the
evidence it fired on has long left its windows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

import orjson


class State(StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


@dataclass(frozen=True)
class AlertState:
    state: State = State.inactive
    active_at: datetime | None = None  # when the condition started holding, this incident
    fired_at: datetime | None = None
    last_true_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """An alert instance as the notification pipeline sees it."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: State
    active_at: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable id of an alert instance: the rule and its label set, order-independent."""
    doc = orjson.dumps({"rule": rule, "labels": labels}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(doc).hexdigest()[:16]


# How long an undecided alert keeps its state by default (a rule's ``undecided_for``).
UNDECIDED_FOR = timedelta(hours=24)


def step(
    prev: AlertState,
    holds: bool | None,
    now: datetime,
    for_: timedelta = timedelta(0),
    keep_firing_for: timedelta = timedelta(0),
    undecided_for: timedelta = UNDECIDED_FOR,
) -> tuple[AlertState, State | None]:
    """The next state, and the state entered if it changed (``None`` when it did not).
    ``holds`` None: undecided, the state stays as it is (see the module's docstring)."""
    s = prev.state
    if holds is None:
        last = prev.last_true_at
        if s is State.firing and last is not None and now - last >= max(undecided_for, keep_firing_for):
            return replace(prev, state=State.resolved, resolved_at=now), State.resolved
        return prev, None
    if holds:
        if s in (State.inactive, State.resolved):
            fresh = AlertState(State.pending, active_at=now, last_true_at=now)
            if for_ <= timedelta(0):
                return replace(fresh, state=State.firing, fired_at=now), State.firing
            return fresh, State.pending
        if s is State.pending:
            assert prev.active_at is not None
            if now - prev.active_at >= for_:
                return replace(prev, state=State.firing, fired_at=now, last_true_at=now), State.firing
            return replace(prev, last_true_at=now), None
        return replace(prev, last_true_at=now), None  # firing goes on
    if s is State.pending:
        return AlertState(), State.inactive
    if s is State.firing:
        assert prev.last_true_at is not None
        if keep_firing_for > timedelta(0) and now - prev.last_true_at < keep_firing_for:
            return prev, None
        return replace(prev, state=State.resolved, resolved_at=now), State.resolved
    return prev, None
