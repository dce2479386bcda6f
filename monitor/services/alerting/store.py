"""What evaluating rules and planning notifications read and write: the narrow interface of the
alerting tables they use. ``monitor.db.alert_repo.AlertRepository`` (``uow.alerts``) is the
Postgres one; the unit tests run the same service code on an in-memory one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from alerts.records import AlertHistoryEntry, AlertRecord
from monitor.db.alert_repo import (
    GroupRow,
    PointRow,
    ReceiverRow,
    RuleRow,
    SilenceRow,
    TriggerRow,
)


@runtime_checkable
class AlertStore(Protocol):
    # -- what rules read
    def latest_points(
        self, model_id: int, version_id: int, metric_patterns: Sequence[str], since: datetime
    ) -> list[PointRow]: ...

    def point_value(
        self,
        model_id: int,
        version_id: int,
        metric: str,
        labels: dict[str, str],
        window_start: datetime,
        window_end: datetime,
    ) -> float | None: ...

    # -- alert instances and their history
    def alerts_for_update(self, model: str) -> dict[str, AlertRecord]: ...

    def save_alert(self, a: AlertRecord) -> None: ...

    def delete_alert(self, fingerprint: str) -> None: ...

    def add_history(self, h: AlertHistoryEntry) -> None: ...

    def active_alerts(self) -> list[AlertRecord]: ...

    # -- retraining, promotion and rollback requests
    def lock_model_triggers(self, model: str) -> None: ...

    def last_trigger_at(self, model: str, event: str = ...) -> datetime | None: ...

    def add_trigger(self, t: TriggerRow) -> None: ...

    # -- the notification pipeline's inputs and what it decided
    def list_rules(self, table: str = ...) -> list[RuleRow]: ...

    def list_receivers(self) -> list[ReceiverRow]: ...

    def list_silences(self, active_at: datetime | None = None) -> list[SilenceRow]: ...

    def groups_for_update(self) -> dict[tuple[str, str], GroupRow]: ...

    def save_group(self, g: GroupRow) -> None: ...

    def delete_group(self, receiver: str, key: str) -> None: ...

    def enqueue(self, message_id: str, receiver: str, kind: str, body: bytes) -> None: ...
