"""What on-call engineers and the dashboard do with alerts: list them with their history,
acknowledge them, silence them; read the outbox, the delivery log and retraining triggers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alerts.pipeline import mute
from alerts.records import AlertHistoryEntry, AlertRecord, DeliveryAttempt
from alerts.silences import SilenceSpec
from monitor.db import audit_repo
from monitor.db.alert_repo import OutboxRow, SilenceRow, TriggerStatus
from monitor.domain.audit import SYSTEM, Actor
from monitor.errors import MonitorError, NotFound
from monitor.services.alerting.evaluation import active_silences, alert_of, inhibit_rules
from monitor.services.infra.context import ServiceContext


def list_alerts(ctx: ServiceContext, state: str | None = None, model: str | None = None) -> list[AlertRecord]:
    if state is not None and state not in ("pending", "firing", "resolved"):
        raise MonitorError(f"state {state!r} is not one of pending, firing, resolved")
    now = datetime.now(UTC)
    with ctx.uow() as uow:
        alerts = uow.alerts.list_alerts(state, model)
        # the sources that inhibit may be any model's: every active alert takes part
        everyone = {a["fingerprint"]: a for a in uow.alerts.active_alerts()}
        muting = mute(
            [alert_of(a) for a in {**everyone, **{a["fingerprint"]: a for a in alerts}}.values()],
            active_silences(uow.alerts, now),
            inhibit_rules(uow.alerts),
            now,
        )
    for a in alerts:
        a["silenced_by"] = muting.silenced_by.get(a["fingerprint"], [])
        a["inhibited_by"] = muting.inhibited_by.get(a["fingerprint"], [])
    return alerts


def get_alert(ctx: ServiceContext, fingerprint: str) -> AlertRecord:
    with ctx.uow() as uow:
        alert = uow.alerts.get_alert(fingerprint)
        if alert is None:
            raise NotFound(f"no alert {fingerprint!r}")
        alert["history"] = uow.alerts.history(fingerprint=fingerprint)
    return alert


def alert_history(ctx: ServiceContext, model: str | None, limit: int) -> list[AlertHistoryEntry]:
    with ctx.uow() as uow:
        return uow.alerts.history(model=model, limit=limit)


def acknowledge(ctx: ServiceContext, fingerprint: str, by: str, comment: str, actor: Actor = SYSTEM) -> AlertRecord:
    with ctx.uow() as uow:
        if not uow.alerts.acknowledge(fingerprint, by, comment, datetime.now(UTC)):
            raise NotFound(f"no alert {fingerprint!r}")
        audit_repo.append(uow.conn, actor, "alert.acknowledged", fingerprint, details={"by": by, "comment": comment})
        uow.commit()
        alert = uow.alerts.get_alert(fingerprint)
    if alert is None:  # deleted in between (it stopped being evaluated)
        raise NotFound(f"no alert {fingerprint!r}")
    return alert


def create_silence(ctx: ServiceContext, spec: SilenceSpec, actor: Actor = SYSTEM) -> dict[str, Any]:
    starts = spec.starts_at or datetime.now(UTC)
    if spec.ends_at <= starts:
        raise MonitorError(
            "a silence must end after it starts", [{"field": "ends_at", "reason": "not after starts_at"}]
        )
    with ctx.uow() as uow:
        sid = uow.alerts.create_silence(
            [m.model_dump() for m in spec.matchers], starts, spec.ends_at, spec.created_by, spec.comment
        )
        made = {"id": sid, "starts_at": starts, **spec.model_dump(exclude={"starts_at"})}
        audit_repo.append(uow.conn, actor, "silence.created", sid, details=made)
        uow.commit()
    return made


def list_silences(ctx: ServiceContext, active_only: bool) -> list[SilenceRow]:
    with ctx.uow() as uow:
        return uow.alerts.list_silences(datetime.now(UTC) if active_only else None)


def expire_silence(ctx: ServiceContext, silence_id: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        if not uow.alerts.expire_silence(silence_id, datetime.now(UTC)):
            raise NotFound(f"no active silence {silence_id!r}")
        audit_repo.append(uow.conn, actor, "silence.expired", silence_id)
        uow.commit()


def list_outbox(ctx: ServiceContext, status: str | None, receiver: str | None, limit: int) -> list[OutboxRow]:
    with ctx.uow() as uow:
        return uow.alerts.list_outbox(status, receiver, limit)


def list_deliveries(
    ctx: ServiceContext, message_id: str | None, receiver: str | None, limit: int
) -> list[DeliveryAttempt]:
    with ctx.uow() as uow:
        return uow.alerts.list_deliveries(message_id, receiver, limit)


def list_retrain_triggers(ctx: ServiceContext, model: str | None, limit: int) -> list[TriggerStatus]:
    with ctx.uow() as uow:
        return uow.alerts.list_triggers(model, limit)
