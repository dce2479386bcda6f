"""An in-memory ``AlertStore`` (``monitor.services.alerting.store``): the alerting tables as
lists and dicts, so that the service's evaluation and notification code runs without Postgres.
Only what the store promises is kept: rows in, the same rows out."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import orjson

from alerts.records import AlertHistoryEntry, AlertRecord
from alerts.state import State
from monitor.db.alert_repo import GroupRow, PointRow, ReceiverRow, SilenceRow, TriggerRow


@dataclass
class Enqueued:
    message_id: str
    receiver: str
    kind: str
    body: dict[str, Any]


@dataclass
class FakeAlertStore:
    points: dict[tuple[int, int], list[PointRow]] = field(default_factory=dict)
    alerts: dict[str, AlertRecord] = field(default_factory=dict)
    history: list[AlertHistoryEntry] = field(default_factory=list)
    triggers: list[TriggerRow] = field(default_factory=list)
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"rules": [], "inhibit_rules": []})
    receivers: list[ReceiverRow] = field(default_factory=list)
    silences: list[SilenceRow] = field(default_factory=list)
    groups: dict[tuple[str, str], GroupRow] = field(default_factory=dict)
    outbox: list[Enqueued] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)

    # -- what rules read
    def latest_points(
        self, model_id: int, version_id: int, metric_patterns: Sequence[str], since: datetime
    ) -> list[PointRow]:
        return [
            p
            for p in self.points.get((model_id, version_id), [])
            if p["window_end"] > since and any(fnmatchcase(p["metric"], m) for m in metric_patterns)
        ]

    def point_value(
        self,
        model_id: int,
        version_id: int,
        metric: str,
        labels: dict[str, str],
        window_start: datetime,
        window_end: datetime,
    ) -> float | None:
        # as Postgres answers it: the window of the same length ending at window_end, or the
        # latest of that length ending less than an hour before it
        found = [
            p
            for p in self.points.get((model_id, version_id), [])
            if p["metric"] == metric
            and p["labels"] == labels
            and window_end - timedelta(hours=1) < p["window_end"] <= window_end
            and p["window_end"] - p["window_start"] == window_end - window_start
        ]
        return max(found, key=lambda p: p["window_end"])["value"] if found else None

    # -- alert instances and their history
    def alerts_for_update(self, model: str) -> dict[str, AlertRecord]:
        return {fp: copy.deepcopy(a) for fp, a in self.alerts.items() if a["model"] == model}

    def save_alert(self, a: AlertRecord) -> None:
        self.alerts[a["fingerprint"]] = copy.deepcopy(a)

    def delete_alert(self, fingerprint: str) -> None:
        self.alerts.pop(fingerprint, None)

    def add_history(self, h: AlertHistoryEntry) -> None:
        self.history.append(copy.deepcopy(h))

    def active_alerts(self) -> list[AlertRecord]:
        return [copy.deepcopy(a) for a in self.alerts.values() if a["state"] in (State.firing, State.resolved)]

    # -- requests
    def lock_model_triggers(self, model: str) -> None:
        self.locked.append(model)

    def last_trigger_at(self, model: str, event: str = "model.retrain_requested") -> datetime | None:
        times = [t["created_at"] for t in self.triggers if t["model"] == model and t["event"] == event]
        return max(times) if times else None

    def add_trigger(self, t: TriggerRow) -> None:
        self.triggers.append(copy.deepcopy(t))

    # -- the notification pipeline
    def list_rules(self, table: str = "rules") -> list[dict[str, Any]]:
        return copy.deepcopy(self.rules[table])

    def list_receivers(self) -> list[ReceiverRow]:
        return copy.deepcopy(self.receivers)

    def list_silences(self, active_at: datetime | None = None) -> list[SilenceRow]:
        return [s for s in self.silences if active_at is None or (s["starts_at"] <= active_at < s["ends_at"])]

    def groups_for_update(self) -> dict[tuple[str, str], GroupRow]:
        return copy.deepcopy(self.groups)

    def save_group(self, g: GroupRow) -> None:
        self.groups[(g["receiver"], g["group_key"])] = copy.deepcopy(g)

    def delete_group(self, receiver: str, key: str) -> None:
        self.groups.pop((receiver, key), None)

    def enqueue(self, message_id: str, receiver: str, kind: str, body: bytes) -> None:
        self.outbox.append(Enqueued(message_id, receiver, kind, orjson.loads(body)))
