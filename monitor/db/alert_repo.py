"""Rules, receivers, alerts, silences, notification groups, the outbox, the delivery log and
retraining triggers: ``AlertRepository``, on the unit of work as ``uow.alerts``, and its typed rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

import orjson
from sqlalchemy import Connection, text

from alerts.records import AlertHistoryEntry, AlertRecord, DeliveryAttempt
from alerts.state import State


class RuleRow(TypedDict):
    """A stored rule or inhibit rule: its definition as checked when stored, and where it came
    from (``api`` or ``file``)."""

    name: str
    definition: dict[str, Any]
    source: str
    updated_at: datetime


class ReceiverRow(TypedDict):
    name: str
    kind: str
    url: str
    secret: str  # sealed (monitor.secret_box)
    headers: dict[str, str]  # values sealed
    group_by: list[str]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int
    source: str
    updated_at: NotRequired[datetime]


class TriggerRow(TypedDict):
    """A retraining, promotion or rollback request sent for a model (its cooldown reads these)."""

    model: str
    version: str
    rule: str
    fingerprint: str
    receiver: str
    message_id: str
    reason: str
    evidence: list[dict[str, Any]]
    created_at: datetime
    event: str


class PointRow(TypedDict):
    """The newest point of one series, as rules read it."""

    metric: str
    labels: dict[str, str]
    window_start: datetime
    window_end: datetime
    value: float | None
    sample_size: int
    threshold: float | None
    drifted: bool | None
    details: dict[str, Any]


class SilenceRow(TypedDict):
    id: str
    matchers: list[dict[str, Any]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime


class FileErrors(TypedDict):
    """What the rules file at ``path`` held that was refused when it was last loaded."""

    path: str
    loaded_at: datetime
    errors: list[dict[str, Any]]


class OutboxRow(TypedDict):
    message_id: str
    receiver: str
    kind: str  # notification | retrain
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    body: dict[str, Any]


class TriggerStatus(TriggerRow):
    """A request sent, with its message's delivery so far."""

    id: int
    delivery_status: str | None
    attempts: int | None


class GroupRow(TypedDict):
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    first_seen_at: datetime
    last_sent_at: datetime | None
    last_sent: list[list[str]]  # [fingerprint, "firing" | "resolved"] told last


class ClaimedMessage(TypedDict):
    id: int
    message_id: str
    receiver: str
    kind: str
    body: bytes
    attempts: int
    created_at: datetime


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


# -- rules and receivers -------------------------------------------------------------------------


# Rules and inhibit rules are stored alike: a name, the definition, where it came from.
INHIBIT_RULES = "inhibit_rules"
RULE_TABLES = ("rules", INHIBIT_RULES)


_RECEIVER_COLS = "name, kind, url, secret, headers, group_by, group_wait_s, group_interval_s, repeat_interval_s, source"


_ALERT_COLS = (
    "fingerprint, rule, model, labels, annotations, state, active_at, fired_at, last_true_at, resolved_at, "
    "value, threshold, evidence, acknowledged_by, acknowledged_at, ack_comment, updated_at"
)


def _alert(row: Any) -> AlertRecord:
    """A stored alert, its state as the state machine's ``State``."""
    return cast(AlertRecord, {**row, "state": State(row["state"])})


def _transition(row: Any) -> AlertHistoryEntry:
    """A stored change of state, its states as ``State``."""
    return cast(AlertHistoryEntry, {**row, "from_state": State(row["from_state"]), "to_state": State(row["to_state"])})


def _like(pattern: str) -> str:
    """A rule's * / ? wildcard as a LIKE pattern."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class AlertRepository:
    """The alerting tables (rules, receivers, alerts and their history, silences, notification groups,
    the outbox, deliveries, retraining triggers, metric points read for rules), read and written in the
    unit of work's transaction: ``uow.alerts``. Never commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def list_rules(self, table: str = "rules") -> list[RuleRow]:
        assert table in RULE_TABLES
        rows = self.conn.execute(
            text(f"SELECT name, definition, source, updated_at FROM {table} ORDER BY name")
        ).mappings()
        return [cast(RuleRow, dict(r)) for r in rows]

    def get_rule(self, name: str, table: str = "rules") -> RuleRow | None:
        assert table in RULE_TABLES
        row = (
            self.conn.execute(
                text(f"SELECT name, definition, source, updated_at FROM {table} WHERE name = :n"), {"n": name}
            )
            .mappings()
            .first()
        )
        return cast(RuleRow, dict(row)) if row else None

    def upsert_rule(self, name: str, definition: dict[str, Any], source: str, table: str = "rules") -> None:
        assert table in RULE_TABLES
        self.conn.execute(
            text(
                f"INSERT INTO {table} (name, definition, source) VALUES (:n, CAST(:d AS jsonb), :s) "
                "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, source = EXCLUDED.source, "
                "updated_at = EXCLUDED.updated_at"  # the default, now() (Citus takes no function in DO UPDATE)
            ),
            {"n": name, "d": _json(definition), "s": source},
        )

    def delete_rule(self, name: str, table: str = "rules") -> bool:
        assert table in RULE_TABLES
        return self.conn.execute(text(f"DELETE FROM {table} WHERE name = :n"), {"n": name}).rowcount > 0

    def delete_file_items(self, table: str, keep: Sequence[str]) -> None:
        """Drop what the rules file no longer defines (``table``: rules, inhibit_rules or receivers)."""
        assert table in (*RULE_TABLES, "receivers")
        self.conn.execute(
            text(f"DELETE FROM {table} WHERE source = 'file' AND NOT (name = ANY(:keep))"), {"keep": list(keep)}
        )

    def set_file_errors(self, path: str, errors: list[dict[str, Any]], at: datetime) -> None:
        self.conn.execute(
            text(
                "INSERT INTO rule_file_errors (path, loaded_at, errors) VALUES (:p, :at, CAST(:e AS jsonb)) "
                "ON CONFLICT (path) DO UPDATE SET loaded_at = EXCLUDED.loaded_at, errors = EXCLUDED.errors"
            ),
            {"p": path, "at": at, "e": _json(errors)},
        )

    def file_errors(self) -> list[FileErrors]:
        rows = self.conn.execute(text("SELECT path, loaded_at, errors FROM rule_file_errors ORDER BY path")).mappings()
        return [cast(FileErrors, dict(r)) for r in rows]

    def list_receivers(self) -> list[ReceiverRow]:
        rows = self.conn.execute(text(f"SELECT {_RECEIVER_COLS}, updated_at FROM receivers ORDER BY name")).mappings()
        return [cast(ReceiverRow, dict(r)) for r in rows]

    def get_receiver(self, name: str) -> ReceiverRow | None:
        row = (
            self.conn.execute(text(f"SELECT {_RECEIVER_COLS}, updated_at FROM receivers WHERE name = :n"), {"n": name})
            .mappings()
            .first()
        )
        return cast(ReceiverRow, dict(row)) if row else None

    def set_receiver_secrets(self, name: str, secret: str, headers: dict[str, str]) -> None:
        self.conn.execute(
            text("UPDATE receivers SET secret = :s, headers = CAST(:h AS jsonb) WHERE name = :n"),
            {"n": name, "s": secret, "h": _json(headers)},
        )

    def upsert_receiver(self, r: ReceiverRow) -> None:
        self.conn.execute(
            text(
                f"INSERT INTO receivers ({_RECEIVER_COLS}) VALUES (:name, :kind, :url, :secret, :headers, :group_by, "
                ":group_wait_s, :group_interval_s, :repeat_interval_s, :source) ON CONFLICT (name) DO UPDATE SET "
                "kind = EXCLUDED.kind, url = EXCLUDED.url, secret = EXCLUDED.secret, headers = EXCLUDED.headers, "
                "group_by = EXCLUDED.group_by, "
                "group_wait_s = EXCLUDED.group_wait_s, group_interval_s = EXCLUDED.group_interval_s, "
                "repeat_interval_s = EXCLUDED.repeat_interval_s, source = EXCLUDED.source, updated_at = "
                "EXCLUDED.updated_at"
            ),
            {**r, "headers": _json(r.get("headers") or {})},
        )

    def delete_receiver(self, name: str) -> bool:
        return self.conn.execute(text("DELETE FROM receivers WHERE name = :n"), {"n": name}).rowcount > 0

    def alerts_for_update(self, model: str) -> dict[str, AlertRecord]:
        """The model's alert instances, locked: evaluations of one model never interleave."""
        rows = self.conn.execute(
            text(f"SELECT {_ALERT_COLS} FROM alerts WHERE model = :m FOR UPDATE"), {"m": model}
        ).mappings()
        return {r["fingerprint"]: _alert(r) for r in rows}

    def save_alert(self, a: AlertRecord) -> None:
        self.conn.execute(
            text(
                "INSERT INTO alerts (fingerprint, rule, model, labels, annotations, state, active_at, fired_at, "
                "last_true_at, resolved_at, value, threshold, evidence, updated_at) "
                "VALUES (:fingerprint, :rule, :model, CAST(:labels AS jsonb), CAST(:annotations AS jsonb), :state, "
                ":active_at, :fired_at, :last_true_at, :resolved_at, :value, :threshold, CAST(:evidence AS jsonb), "
                ":updated_at) "
                "ON CONFLICT (fingerprint) DO UPDATE SET labels = EXCLUDED.labels, annotations = EXCLUDED.annotations, "
                "state = EXCLUDED.state, active_at = EXCLUDED.active_at, fired_at = EXCLUDED.fired_at, "
                "last_true_at = EXCLUDED.last_true_at, resolved_at = EXCLUDED.resolved_at, value = EXCLUDED.value, "
                "threshold = EXCLUDED.threshold, evidence = EXCLUDED.evidence, updated_at = EXCLUDED.updated_at, "
                # a new incident starts unacknowledged
                "acknowledged_by = CASE WHEN alerts.active_at IS DISTINCT FROM EXCLUDED.active_at THEN NULL "
                "ELSE alerts.acknowledged_by END, "
                "acknowledged_at = CASE WHEN alerts.active_at IS DISTINCT FROM EXCLUDED.active_at THEN NULL "
                "ELSE alerts.acknowledged_at END"
            ),
            {
                **a,
                "labels": _json(a["labels"]),
                "annotations": _json(a["annotations"]),
                "evidence": _json(a["evidence"]),
            },
        )

    def delete_alert(self, fingerprint: str) -> None:
        self.conn.execute(text("DELETE FROM alerts WHERE fingerprint = :f"), {"f": fingerprint})

    def add_history(self, h: AlertHistoryEntry) -> None:
        self.conn.execute(
            text(
                "INSERT INTO alert_history (fingerprint, rule, model, from_state, to_state, at, value, threshold, "
                "labels, evidence) "
                "VALUES (:fingerprint, :rule, :model, :from_state, :to_state, :at, :value, :threshold, "
                "CAST(:labels AS jsonb), CAST(:evidence AS jsonb))"
            ),
            {**h, "labels": _json(h["labels"]), "evidence": _json(h["evidence"])},
        )

    def list_alerts(self, state: str | None, model: str | None) -> list[AlertRecord]:
        rows = self.conn.execute(
            text(
                f"SELECT {_ALERT_COLS} FROM alerts WHERE (CAST(:s AS text) IS NULL OR state = :s) "
                "AND (CAST(:m AS text) IS NULL OR model = :m) ORDER BY updated_at DESC"
            ),
            {"s": state, "m": model},
        ).mappings()
        return [_alert(r) for r in rows]

    def active_alerts(self) -> list[AlertRecord]:
        """Firing alerts, and resolved ones some group may still have to be told about."""
        rows = self.conn.execute(
            text(f"SELECT {_ALERT_COLS} FROM alerts WHERE state IN ('firing', 'resolved')")
        ).mappings()
        return [_alert(r) for r in rows]

    def get_alert(self, fingerprint: str) -> AlertRecord | None:
        row = (
            self.conn.execute(text(f"SELECT {_ALERT_COLS} FROM alerts WHERE fingerprint = :f"), {"f": fingerprint})
            .mappings()
            .first()
        )
        return _alert(row) if row else None

    def history(
        self, fingerprint: str | None = None, model: str | None = None, limit: int = 500
    ) -> list[AlertHistoryEntry]:
        rows = self.conn.execute(
            text(
                "SELECT id, fingerprint, rule, model, from_state, to_state, at, value, threshold, labels, evidence "
                "FROM alert_history WHERE (CAST(:f AS text) IS NULL OR fingerprint = :f) "
                "AND (CAST(:m AS text) IS NULL OR model = :m) ORDER BY at DESC, id DESC LIMIT :l"
            ),
            {"f": fingerprint, "m": model, "l": limit},
        ).mappings()
        return [_transition(r) for r in rows]

    def acknowledge(self, fingerprint: str, by: str, comment: str, at: datetime) -> bool:
        return (
            self.conn.execute(
                text(
                    "UPDATE alerts SET acknowledged_by = :b, acknowledged_at = :at, ack_comment = :c WHERE "
                    "fingerprint = :f"
                ),
                {"f": fingerprint, "b": by, "c": comment, "at": at},
            ).rowcount
            > 0
        )

    def create_silence(
        self, matchers: list[dict[str, Any]], starts_at: datetime, ends_at: datetime, by: str, comment: str
    ) -> str:
        return str(
            self.conn.execute(
                text(
                    "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment) "
                    "VALUES (CAST(:m AS jsonb), :s, :e, :b, :c) RETURNING id"
                ),
                {"m": _json(matchers), "s": starts_at, "e": ends_at, "b": by, "c": comment},
            ).scalar_one()
        )

    def list_silences(self, active_at: datetime | None = None) -> list[SilenceRow]:
        rows = self.conn.execute(
            text(
                "SELECT id::text AS id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences "
                "WHERE CAST(:t AS timestamptz) IS NULL OR (starts_at <= :t AND ends_at > :t) ORDER BY created_at DESC"
            ),
            {"t": active_at},
        ).mappings()
        return [cast(SilenceRow, dict(r)) for r in rows]

    def expire_silence(self, silence_id: str, at: datetime) -> bool:
        return (
            self.conn.execute(
                text(
                    "UPDATE silences SET ends_at = greatest(starts_at + interval '1 microsecond', :at) "
                    "WHERE id::text = :i AND ends_at > :at"
                ),
                {"i": silence_id, "at": at},
            ).rowcount
            > 0
        )

    def groups_for_update(self) -> dict[tuple[str, str], GroupRow]:
        rows = self.conn.execute(
            text(
                "SELECT receiver, group_key, group_labels, first_seen_at, last_sent_at, last_sent "
                "FROM notification_groups FOR UPDATE"
            )
        ).mappings()
        return {(r["receiver"], r["group_key"]): cast(GroupRow, dict(r)) for r in rows}

    def save_group(self, g: GroupRow) -> None:
        self.conn.execute(
            text(
                "INSERT INTO notification_groups (receiver, group_key, group_labels, first_seen_at, last_sent_at, "
                "last_sent) VALUES (:receiver, :group_key, CAST(:group_labels AS jsonb), :first_seen_at, "
                ":last_sent_at, CAST(:last_sent AS jsonb)) ON CONFLICT (receiver, group_key) DO UPDATE SET "
                "last_sent_at = EXCLUDED.last_sent_at, last_sent = EXCLUDED.last_sent"
            ),
            {**g, "group_labels": _json(g["group_labels"]), "last_sent": _json(g["last_sent"])},
        )

    def delete_group(self, receiver: str, key: str) -> None:
        self.conn.execute(
            text("DELETE FROM notification_groups WHERE receiver = :r AND group_key = :k"), {"r": receiver, "k": key}
        )

    def enqueue(self, message_id: str, receiver: str, kind: str, body: bytes) -> None:
        self.conn.execute(
            text("INSERT INTO outbox (message_id, receiver, kind, body) VALUES (:i, :r, :k, :b)"),
            {"i": message_id, "r": receiver, "k": kind, "b": body},
        )

    def claim_due(self, now: datetime, lease_seconds: float, limit: int) -> list[ClaimedMessage]:
        """Take due messages for one attempt each: their next attempt moves a lease ahead, so another
        deliverer leaves them alone, and takes them over if this one dies mid-attempt."""
        rows = self.conn.execute(
            text(
                """
                UPDATE outbox o SET attempts = o.attempts + 1,
                                    next_attempt_at = CAST(:now AS timestamptz) + make_interval(secs => :lease)
                FROM (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now
                      ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED) due
                WHERE o.id = due.id
                RETURNING o.id, o.message_id, o.receiver, o.kind, o.body, o.attempts, o.created_at
                """
            ),
            {"now": now, "lease": lease_seconds, "limit": limit},
        ).mappings()
        return [cast(ClaimedMessage, dict(r)) for r in rows]

    def finish_attempt(
        self, message_id: str, outcome: str, next_attempt_at: datetime | None, error: str | None, at: datetime
    ) -> None:
        status = {"delivered": "delivered", "failed": "failed"}.get(outcome, "pending")
        self.conn.execute(
            text(
                "UPDATE outbox SET status = :s, next_attempt_at = coalesce(:n, next_attempt_at), last_error = :e, "
                "delivered_at = CASE WHEN :s = 'delivered' THEN CAST(:at AS timestamptz) ELSE delivered_at END "
                "WHERE message_id = :i"
            ),
            {"s": status, "n": next_attempt_at, "e": error, "at": at, "i": message_id},
        )

    def add_delivery(self, d: DeliveryAttempt) -> None:
        self.conn.execute(
            text(
                "INSERT INTO deliveries (message_id, receiver, attempt, at, status_code, latency_ms, outcome, error) "
                "VALUES (:message_id, :receiver, :attempt, :at, :status_code, :latency_ms, :outcome, :error)"
            ),
            d,
        )

    def list_outbox(self, status: str | None, receiver: str | None, limit: int) -> list[OutboxRow]:
        rows = self.conn.execute(
            text(
                "SELECT message_id, receiver, kind, status, attempts, next_attempt_at, created_at, delivered_at, "
                "last_error, convert_from(body, 'UTF8')::jsonb AS body FROM outbox "
                "WHERE (CAST(:s AS text) IS NULL OR status = :s) AND (CAST(:r AS text) IS NULL OR receiver = :r) "
                "ORDER BY id DESC LIMIT :l"
            ),
            {"s": status, "r": receiver, "l": limit},
        ).mappings()
        return [cast(OutboxRow, dict(r)) for r in rows]

    def list_deliveries(self, message_id: str | None, receiver: str | None, limit: int) -> list[DeliveryAttempt]:
        rows = self.conn.execute(
            text(
                "SELECT message_id, receiver, attempt, at, status_code, latency_ms, outcome, error FROM deliveries "
                "WHERE (CAST(:i AS text) IS NULL OR message_id = :i) AND (CAST(:r AS text) IS NULL OR receiver = :r) "
                "ORDER BY id DESC LIMIT :l"
            ),
            {"i": message_id, "r": receiver, "l": limit},
        ).mappings()
        return [cast(DeliveryAttempt, dict(r)) for r in rows]

    def redeliver(self, message_id: str, at: datetime) -> bool:
        return (
            self.conn.execute(
                text(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = :at, last_error = NULL WHERE message_id "
                    "= :i"
                ),
                {"i": message_id, "at": at},
            ).rowcount
            > 0
        )

    def lock_model_triggers(self, model: str) -> None:
        """Serialise trigger decisions for a model (two schedulers evaluating it at once)."""
        self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('retrain:' || :m))"), {"m": model})

    def last_trigger_at(self, model: str, event: str = "model.retrain_requested") -> datetime | None:
        return self.conn.execute(
            text("SELECT max(created_at) FROM retrain_triggers WHERE model = :m AND event = :e"),
            {"m": model, "e": event},
        ).scalar()

    def add_trigger(self, t: TriggerRow) -> None:
        self.conn.execute(
            text(
                "INSERT INTO retrain_triggers (model, version, rule, fingerprint, receiver, message_id, reason, "
                "evidence, created_at, event) "
                "VALUES (:model, :version, :rule, :fingerprint, :receiver, :message_id, :reason, "
                "CAST(:evidence AS jsonb), :created_at, :event)"
            ),
            {**t, "evidence": _json(t["evidence"])},
        )

    def list_triggers(self, model: str | None, limit: int) -> list[TriggerStatus]:
        rows = self.conn.execute(
            text(
                "SELECT t.id, t.model, t.version, t.rule, t.fingerprint, t.receiver, t.message_id, t.reason, "
                "t.evidence, t.created_at, t.event, o.status AS delivery_status, o.attempts FROM retrain_triggers t "
                "LEFT JOIN outbox o ON o.message_id = t.message_id "
                "WHERE CAST(:m AS text) IS NULL OR t.model = :m ORDER BY t.id DESC LIMIT :l"
            ),
            {"m": model, "l": limit},
        ).mappings()
        return [cast(TriggerStatus, dict(r)) for r in rows]

    def latest_points(
        self, model_id: int, version_id: int, metric_patterns: Sequence[str], since: datetime
    ) -> list[PointRow]:
        """The newest point of every series (metric, labels, window length) of a model version whose
        metric matches one of the patterns, among windows ending after ``since``."""
        if not metric_patterns:
            return []
        rows = self.conn.execute(
            text(
                """
                SELECT DISTINCT ON (metric, labels, window_end - window_start)
                       metric, labels, window_start, window_end, value, sample_size, threshold, drifted, details
                FROM metric_points
                WHERE model_id = :m AND model_version_id = :v AND window_end > :since
                  AND metric LIKE ANY (CAST(:patterns AS text[]))
                ORDER BY metric, labels, window_end - window_start, window_end DESC
                """
            ),
            {"m": model_id, "v": version_id, "since": since, "patterns": [_like(p) for p in metric_patterns]},
        ).mappings()
        return [cast(PointRow, dict(r)) for r in rows]

    def point_value(
        self,
        model_id: int,
        version_id: int,
        metric: str,
        labels: dict[str, str],
        window_start: datetime,
        window_end: datetime,
    ) -> float | None:
        """The series' value over the window of the same length ending at ``window_end``, or, when
        that one is not kept (a sliding window's point is replaced by the next), the latest ending
        less than an hour before it."""
        return self.conn.execute(
            text(
                "SELECT value FROM metric_points WHERE model_id = :m AND model_version_id = :v AND metric = :metric "
                "AND labels = CAST(:labels AS jsonb) AND window_end <= :e AND window_end > :e - interval '1 hour' "
                "AND window_end - window_start = :e - :s ORDER BY window_end DESC LIMIT 1"
            ),
            {
                "m": model_id,
                "v": version_id,
                "metric": metric,
                "labels": _json(labels),
                "s": window_start,
                "e": window_end,
            },
        ).scalar()
