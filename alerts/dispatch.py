"""Grouping notifications, with Alertmanager's timers: a new group waits ``group_wait`` so alerts
that start together go out together; after a notification, changes (an alert firing or
resolving) go out no sooner than ``group_interval``; an unchanged group is re-sent every
``repeat_interval``. Pure: the engine keeps the group state and asks when a group is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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


def go_quote(text: str) -> str:
    """``text`` as Go's strconv.Quote writes it (Alertmanager writes label values so)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def label_set(labels: dict[str, str]) -> str:
    """A label set as Prometheus' LabelSet.String writes it: ``{a="x", b="y"}``, sorted."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def group_labels(group_by: list[str], labels: dict[str, str]) -> dict[str, str]:
    """The labels a group is made by: the alert's values of ``group_by`` it has (an empty value is
    no label, as in Alertmanager)."""
    return {k: labels[k] for k in sorted(group_by) if labels.get(k)}


def group_key(receiver: str, group_by: list[str], labels: dict[str, str]) -> str:
    """Alertmanager's group key, its route's key then the group's labels (``{}/{receiver="oncall"}:
    {alertname="drift", model="m"}``): each receiver is a route under the root that matches it."""
    return "{}/{receiver=" + go_quote(receiver) + "}:" + label_set(group_labels(group_by, labels))


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
