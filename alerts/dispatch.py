"""Grouping notifications, with Alertmanager's timers: a new group waits ``group_wait`` so alerts
that start together go out together; after a notification, changes (an alert firing or
resolving) go out no sooner than ``group_interval``; an unchanged group is re-sent every
``repeat_interval``. Pure: the engine keeps the group state and asks when a group is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

# (fingerprint, "firing" | "resolved") of each alert a notification carried
Entry = tuple[str, str]


@dataclass(frozen=True)
class Timers:
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)


@dataclass(frozen=True)
class GroupState:
    first_seen_at: datetime
    last_sent_at: datetime | None = None
    last_sent: frozenset[Entry] = frozenset()


def group_key(receiver: str, group_by: list[str], labels: dict[str, str]) -> str:
    """Alertmanager-style: the receiver and the grouping labels' values."""
    chosen = {k: labels.get(k, "") for k in sorted(group_by)}
    return f"{receiver}:" + orjson.dumps(chosen, option=orjson.OPT_SORT_KEYS).decode()


def due(state: GroupState, current: frozenset[Entry], now: datetime, timers: Timers) -> bool:
    """Whether the group should be notified now with ``current``."""
    if not current:
        return False
    if state.last_sent_at is None:
        return now - state.first_seen_at >= timers.group_wait
    if current != state.last_sent:
        return now - state.last_sent_at >= timers.group_interval
    if all(status == "resolved" for _, status in current):
        return False  # a resolution is told once
    return now - state.last_sent_at >= timers.repeat_interval
