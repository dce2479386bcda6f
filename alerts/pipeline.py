"""Notification as a pipeline of pure stages, as Alertmanager splits it:

    mute (silence, inhibit) → route → group → decide (timers) → render (per receiver kind)

``plan_notifications`` takes what the engine loaded (alerts, each rule's receivers, receivers,
the stored groups, silences, inhibit rules) and the time, and returns what to persist: the
messages to enqueue, the groups to save and the groups that ended. The service stores that in
one transaction; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.dispatch import Entry, GroupState, due, group_key, group_labels
from alerts.inhibit import InhibitRule, inhibitions
from alerts.notifiers import GROUP_NOTIFIERS, Notification
from alerts.payloads import Notice
from alerts.receivers import Receiver
from alerts.silences import Silence, silenced_by
from alerts.state import Alert, State

GroupId = tuple[str, str]  # (receiver, group key)


@dataclass(frozen=True)
class Group:
    """A notification group as stored between evaluations."""

    receiver: str
    key: str
    labels: dict[str, str]
    state: GroupState

    @property
    def id(self) -> GroupId:
        return self.receiver, self.key


@dataclass(frozen=True)
class Outgoing:
    """A message for the outbox: its receiver and JSON body."""

    receiver: str
    body: Any


@dataclass
class Plan:
    messages: list[Outgoing] = field(default_factory=list)
    save: list[Group] = field(default_factory=list)
    delete: list[GroupId] = field(default_factory=list)


@dataclass(frozen=True)
class Muting:
    """Why alerts notify nobody: the silences and the firing alerts (inhibition) muting each."""

    silenced_by: dict[str, list[str]]
    inhibited_by: dict[str, list[str]]

    def muted(self, fingerprint: str) -> bool:
        return bool(self.silenced_by.get(fingerprint) or self.inhibited_by.get(fingerprint))


def mute(alerts: Sequence[Alert], silences: list[Silence], inhibit_rules: list[InhibitRule], now: datetime) -> Muting:
    silenced = {a.fingerprint: ids for a in alerts if (ids := silenced_by(a.labels, silences, now))}
    return Muting(silenced, inhibitions(alerts, inhibit_rules))


def route(
    alert: Alert, routes: Mapping[str, Sequence[str]], receivers: Mapping[str, Receiver]
) -> list[tuple[Receiver, str]]:
    """The receivers an alert goes to (its rule's, those that exist) and its group key in each."""
    out = []
    for name in routes.get(alert.rule, ()):
        rcv = receivers.get(name)
        if rcv is not None:
            out.append((rcv, group_key(name, rcv.group_by, alert.labels)))
    return out


@dataclass
class _Pending:
    """A group's alerts for this round, and its labels."""

    entries: dict[str, str] = field(default_factory=dict)  # fingerprint -> "firing" | "resolved"
    labels: dict[str, str] = field(default_factory=dict)


def group(
    alerts: Iterable[Alert], muting: Muting, routes: Mapping[str, Sequence[str]], receivers: Mapping[str, Receiver]
) -> dict[GroupId, _Pending]:
    """Every firing alert nothing mutes, in each of its receivers' groups."""
    out: dict[GroupId, _Pending] = {}
    for a in alerts:
        if a.state is not State.firing or muting.muted(a.fingerprint):
            continue
        for rcv, key in route(a, routes, receivers):
            g = out.setdefault((rcv.name, key), _Pending())
            g.entries[a.fingerprint] = "firing"
            g.labels = group_labels(rcv.group_by, a.labels)
    return out


def carry_resolved(
    pending: dict[GroupId, _Pending], stored: Mapping[GroupId, Group], alerts: Mapping[str, Alert], muting: Muting
) -> None:
    """A group told an alert fired is told it ended (resolved, or gone). A muted one is not told,
    not even of its end (it is, once nothing mutes it)."""
    for gid, g in stored.items():
        for fp, status in g.state.last_sent:
            if status != "firing" or fp in pending.get(gid, _Pending()).entries:
                continue
            a = alerts.get(fp)
            if a is not None and muting.muted(fp):
                continue
            if a is None or a.state is State.resolved:
                p = pending.setdefault(gid, _Pending(labels=g.labels))
                p.entries[fp] = "resolved"


def notice(a: Alert | None, fp: str, status: str, now: datetime) -> Notice:
    """One alert as a notification shows it (``a`` None: deleted since, resolved with what the
    group last knew)."""
    if a is None:
        return Notice(fp, "resolved", {}, {}, now, now)
    return Notice(
        fp,
        status,
        a.labels,
        a.annotations,
        a.fired_at or a.active_at or now,
        (a.resolved_at or now) if status == "resolved" else None,
        a.annotations.get("dashboard", ""),
    )


def plan_notifications(
    alerts: Sequence[Alert],
    routes: Mapping[str, Sequence[str]],
    receivers: Mapping[str, Receiver],
    stored: Mapping[GroupId, Group],
    silences: list[Silence],
    inhibit_rules: list[InhibitRule],
    now: datetime,
    external_url: str = "",
) -> Plan:
    """What to send and store now. ``routes``: each rule's receiver names (a retraining receiver
    among them takes no notifications: it is left out)."""
    receivers = {name: r for name, r in receivers.items() if r.kind in GROUP_NOTIFIERS}
    by_fp = {a.fingerprint: a for a in alerts}
    muting = mute(alerts, silences, inhibit_rules, now)
    pending = group(alerts, muting, routes, receivers)
    carry_resolved(pending, stored, by_fp, muting)
    plan = Plan()
    for gid in sorted(set(pending) | set(stored)):
        rcv = receivers.get(gid[0])
        p = pending.get(gid)
        old = stored.get(gid)
        if rcv is None or p is None or not p.entries:
            if old is not None and all(st == "resolved" for _, st in old.state.last_sent):
                plan.delete.append(gid)  # everything told: the group ends
            continue
        state = old.state if old is not None else GroupState(now)
        entries: frozenset[Entry] = frozenset(p.entries.items())
        if due(state, entries, now, rcv.timers):
            notices = [notice(by_fp.get(fp), fp, st, now) for fp, st in sorted(p.entries.items())]
            n = Notification(rcv.name, gid[1], p.labels, notices, external_url)
            plan.messages.append(Outgoing(rcv.name, GROUP_NOTIFIERS[rcv.kind].body(n)))
            state = GroupState(state.first_seen_at, now, entries)
        plan.save.append(Group(rcv.name, gid[1], p.labels, state))
    return plan
