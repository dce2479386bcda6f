"""The rules engine's service: after a model's metric run, evaluate its rules on the newest
points, step every alert instance's state, keep the history, and — in the same transaction —
write the messages those changes cause to the outbox (notifications due now, retraining
triggers). ``flush_groups`` also runs on every scheduler tick, for groups whose wait ends
between evaluations.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from sqlalchemy import Connection

from alerts.dispatch import GroupState
from alerts.evaluate import Evaluation, Sample, evaluate, render, window_name
from alerts.inhibit import InhibitRule
from alerts.payloads import retrain_event, version_event
from alerts.pipeline import Group, plan_notifications
from alerts.receivers import Receiver, ReceiverKind, timers_from_seconds
from alerts.rules import EVENTS, Retrain, Rule, parse_duration
from alerts.silences import Matcher, Silence
from alerts.state import Alert, AlertState, State, step
from monitor.config import Settings
from monitor.db import alert_repo, reference_repo
from monitor.db.alert_repo import AlertRow
from monitor.db.registry_repo import VersionRow
from monitor.services.alerting.alert_config import active_rules
from monitor.services.catalog.registry import live_versions
from monitor.services.infra.context import ServiceContext

log = logging.getLogger(__name__)

# Points older than this are not evaluated: a series that stopped is judged on nothing.
FRESHNESS = timedelta(days=2)


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def dashboard_link(settings: Settings, model: str, s: Sample | dict[str, Any]) -> str:
    """A deep link to the model page at the alert's window (the dashboard reads these parameters)."""
    if isinstance(s, Sample):
        start, end, metric, labels = s.window_start, s.window_end, s.metric, s.labels
    else:
        start, end, metric, labels = s["window_start"], s["window_end"], s["metric"], s.get("labels") or {}
    params = {
        "from": (start - (end - start) * 6).isoformat(),
        "to": end.isoformat(),
        "metric": metric,
        "window": window_name(end - start),
    }
    if "feature" in labels:
        params["feature"] = labels["feature"]
    if "segment" in labels:
        params["segment"] = f"{labels['segment']}={labels.get('segment_value', '')}"
    return f"{settings.dashboard_url.rstrip('/')}/models/{quote(model)}?{urlencode(params)}"


def _state_of(row: AlertRow | None) -> AlertState:
    if row is None:
        return AlertState()
    return AlertState(State(row["state"]), row["active_at"], row["fired_at"], row["last_true_at"], row["resolved_at"])


def _evidence(e: Evaluation) -> dict[str, Any]:
    s = e.sample
    return {
        "version": s.version,
        "metric": s.metric,
        "labels": s.labels,
        "window_start": s.window_start.isoformat(),
        "window_end": s.window_end.isoformat(),
        "value": s.value,
        "threshold": e.threshold,
        "baseline": e.baseline,
        "drifted": s.drifted,
        "sample_size": s.sample_size,
        "details": s.details,
        "note": e.note,
    }


def export_link(settings: Settings, model: str, s: Sample) -> str:
    """The window's rows with their labels (``GET /v1/models/{name}/export``, a `data` key): what
    a retraining pipeline fetches to retrain on exactly the data the alert is about."""
    params = {"start": s.window_start.isoformat(), "end": s.window_end.isoformat(), "version": s.version}
    return f"{settings.public_url.rstrip('/')}/v1/models/{quote(model, safe='')}/export?{urlencode(params)}"


# The label that tells apart the alerts of a version other than the primary one (a challenger's)
VERSION_LABEL = "version"


def _samples(
    ctx: ServiceContext, model: str, versions: list[VersionRow], rules: list[Rule], now: datetime
) -> list[Sample]:
    """The newest point of every series of each live version. The first (primary) version's
    series keep their labels; the others' carry ``version`` too, so that a challenger's alerts
    are instances of their own, never the champion's."""
    metrics = sorted({r.metric for r in rules})
    samples = []
    with ctx.uow() as uow:
        for i, vrow in enumerate(versions):
            tag = {} if i == 0 else {VERSION_LABEL: vrow.version}
            for r in alert_repo.latest_points(uow.conn, vrow.model_id, vrow.version_id, metrics, now - FRESHNESS):
                samples.append(
                    Sample(
                        model,
                        vrow.version,
                        r["metric"],
                        {**r["labels"], **tag},
                        r["window_start"],
                        r["window_end"],
                        r["value"],
                        r["sample_size"],
                        r["threshold"],
                        r["drifted"],
                        r["details"],
                    )
                )
    return samples


def evaluate_model(ctx: ServiceContext, model: str, now: datetime | None = None) -> dict[str, int]:
    """Evaluate every rule that reads ``model``, on the points of each live version
    (``registry.live_versions``); returns counts of transitions by new state."""
    now = now or datetime.now(UTC)
    rules = [r for r in active_rules(ctx) if fnmatchcase(model, r.model)]
    by_name = {r.name: r for r in rules}
    versions = live_versions(ctx, model)
    by_version = {v.version: v for v in versions}
    samples = _samples(ctx, model, versions, rules, now)
    counts: dict[str, int] = defaultdict(int)
    with ctx.uow() as uow:

        def baseline(s: Sample, back: timedelta) -> float | None:
            vrow = by_version[s.version]
            labels = s.labels if vrow is versions[0] else {k: v for k, v in s.labels.items() if k != VERSION_LABEL}
            start, end = s.window_start - back, s.window_end - back
            return alert_repo.point_value(uow.conn, vrow.model_id, vrow.version_id, s.metric, labels, start, end)

        existing = alert_repo.alerts_for_update(uow.conn, model)
        seen: set[str] = set()
        for rule in rules:
            for e in evaluate(rule, samples, baseline):
                seen.add(e.fingerprint)
                prev = existing.get(e.fingerprint)
                new, transition = step(
                    _state_of(prev), e.holds, now, rule.for_duration, rule.keep_firing_duration, rule.undecided_duration
                )
                _store(uow.conn, ctx.settings, rule, e, prev, new, transition, now, counts)
                if transition is State.firing:
                    for event, action in rule.events():
                        version_id = by_version[e.sample.version].version_id
                        _maybe_send(uow.conn, ctx.settings, rule, event, action, e, version_id, now)
        # Instances nobody evaluated (their rule was removed, their series stopped): the
        # condition no longer holds.
        for fp, row in existing.items():
            if fp in seen or row["state"] == State.resolved:
                continue
            its_rule = by_name.get(row["rule"])
            keep = its_rule.keep_firing_duration if its_rule else timedelta(0)
            new, transition = step(_state_of(row), False, now, timedelta(0), keep)
            if transition is not None:
                _transition_row(uow.conn, row, new, transition, now)
                counts[transition.value] += 1
        flush_groups_in(uow.conn, ctx.settings, now)
        uow.commit()
    return dict(counts)


def _store(
    conn: Connection,
    settings: Settings,
    rule: Rule,
    e: Evaluation,
    prev: AlertRow | None,
    new: AlertState,
    transition: State | None,
    now: datetime,
    counts: dict[str, int],
) -> None:
    if new.state is State.inactive:
        if prev is not None and transition is State.inactive:  # pending that never fired: forgotten
            alert_repo.delete_alert(conn, e.fingerprint)
            _history(conn, prev["rule"], prev["model"], e.fingerprint, prev["state"], "inactive", now, e)
            counts["inactive"] += 1
        return
    if new.state is State.resolved and transition is None:
        return  # a resolved alert keeps the evidence it resolved with
    if e.holds is None and transition is None:
        return  # undecided: the alert keeps the evidence and the words of the window that decided
    link = dashboard_link(settings, e.sample.model, e.sample)
    alert_repo.save_alert(
        conn,
        {
            "fingerprint": e.fingerprint,
            "rule": rule.name,
            "model": e.sample.model,
            "labels": e.labels,
            "annotations": {**render(rule, e, link, resolved=new.state is State.resolved), "dashboard": link},
            "state": new.state.value,
            "active_at": new.active_at,
            "fired_at": new.fired_at,
            "last_true_at": new.last_true_at,
            "resolved_at": new.resolved_at,
            "value": e.sample.value,
            "threshold": e.threshold,
            "evidence": _evidence(e),
            "updated_at": now,
        },
    )
    if transition is not None:
        before = prev["state"] if prev is not None else "inactive"
        _history(conn, rule.name, e.sample.model, e.fingerprint, before, transition.value, now, e)
        counts[transition.value] += 1


def _history(
    conn: Connection, rule: str, model: str, fp: str, before: str, after: str, at: datetime, e: Evaluation
) -> None:
    alert_repo.add_history(
        conn,
        {
            "fingerprint": fp,
            "rule": rule,
            "model": model,
            "from_state": before,
            "to_state": after,
            "at": at,
            "value": e.sample.value,
            "threshold": e.threshold,
            "labels": e.labels,
            "evidence": _evidence(e),
        },
    )


def _transition_row(conn: Connection, row: AlertRow, new: AlertState, transition: State, now: datetime) -> None:
    if new.state is State.inactive:
        alert_repo.delete_alert(conn, row["fingerprint"])
    else:
        saved = row.copy()
        saved["state"] = new.state.value
        saved["active_at"], saved["fired_at"] = new.active_at, new.fired_at
        saved["last_true_at"], saved["resolved_at"] = new.last_true_at, new.resolved_at
        saved["updated_at"] = now
        alert_repo.save_alert(conn, saved)
    alert_repo.add_history(
        conn,
        {
            "fingerprint": row["fingerprint"],
            "rule": row["rule"],
            "model": row["model"],
            "from_state": row["state"],
            "to_state": transition.value,
            "at": now,
            "value": row["value"],
            "threshold": row["threshold"],
            "labels": row["labels"],
            "evidence": {**row["evidence"], "note": "no longer evaluated: the rule or the series is gone"},
        },
    )


def _maybe_send(
    conn: Connection,
    settings: Settings,
    rule: Rule,
    event: str,
    action: Retrain,
    e: Evaluation,
    version_id: int,
    now: datetime,
) -> None:
    """At most one event of a kind (retraining, promotion, rollback) per model within the rule's
    cooldown: the first alert of an incident sends it, the rest of it (other features, other
    rules) is covered by that one."""
    model = e.sample.model
    alert_repo.lock_model_triggers(conn, model)
    last = alert_repo.last_trigger_at(conn, model, event)
    cooldown = parse_duration(action.cooldown)
    if last is not None and now - last < cooldown:
        log.info("%s for %s not sent again: the last one, %s, is within the %s cooldown", event, model, last, cooldown)
        return
    reason = (
        f"rule {rule.name}: {e.sample.metric} {rule.condition.describe()} "
        f"(value {e.sample.value}, threshold {e.threshold}) over {window_name(e.sample.window)} ending "
        f"{e.sample.window_end.isoformat()}"
    )
    evidence = [_evidence(e)]
    message_id = new_message_id()
    link = dashboard_link(settings, model, e.sample)
    if event == EVENTS["retrain"]:
        ref_id = reference_repo.measured_reference_id(conn, version_id)
        body = retrain_event(
            model=model,
            version=e.sample.version,
            rule=rule.name,
            reason=reason,
            evidence=evidence,
            reference=None if ref_id is None else {"reference_id": ref_id},
            link=link,
            export=export_link(settings, model, e.sample),
            fingerprint=e.fingerprint,
            at=now,
        )
    else:  # a comparison's: the challenger is the point's version, the champion its label
        body = version_event(
            event=event,
            model=model,
            champion=e.sample.labels.get("champion"),
            challenger=e.sample.version,
            rule=rule.name,
            reason=reason,
            evidence=evidence,
            link=link,
            fingerprint=e.fingerprint,
            at=now,
        )
    alert_repo.enqueue(conn, message_id, action.receiver, "retrain", orjson.dumps(body))
    trigger = {"model": model, "version": e.sample.version, "rule": rule.name, "fingerprint": e.fingerprint}
    alert_repo.add_trigger(
        conn,
        trigger
        | {"receiver": action.receiver, "message_id": message_id, "reason": reason, "evidence": evidence}
        | {"created_at": now, "event": event},
    )


def flush_groups(ctx: ServiceContext, now: datetime | None = None) -> int:
    with ctx.uow() as uow:
        n = flush_groups_in(uow.conn, ctx.settings, now or datetime.now(UTC))
        uow.commit()
    return n


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    """The silences in force at ``now``. One stored before its pattern was refused (a regular
    expression RE2 cannot run) mutes nothing: its alerts are sent, and the log says why."""
    out = []
    for s in alert_repo.list_silences(conn, now):
        try:
            matchers = [Matcher.model_validate(m) for m in s["matchers"]]
        except ValueError as exc:
            log.warning("silence %s mutes nothing: %s", s["id"], str(exc).splitlines()[-1][:300])
            continue
        out.append(Silence(s["id"], matchers, s["starts_at"], s["ends_at"], s["created_by"], s["comment"]))
    return out


def inhibit_rules(conn: Connection) -> list[InhibitRule]:
    """Every stored inhibit rule that still parses (they were checked when stored)."""
    out = []
    for row in alert_repo.list_rules(conn, alert_repo.INHIBIT_RULES):
        try:
            out.append(InhibitRule.model_validate(row["definition"]))
        except ValueError as exc:
            log.error("stored inhibit rule %s no longer parses: %s", row["name"], str(exc).splitlines()[-1][:300])
    return out


def alert_of(row: AlertRow) -> Alert:
    return Alert(
        row["fingerprint"],
        row["rule"],
        row["labels"],
        row["annotations"],
        State(row["state"]),
        row["active_at"],
        row["fired_at"],
        row["resolved_at"],
    )


def flush_groups_in(conn: Connection, settings: Settings, now: datetime) -> int:
    """Enqueue a message for every notification group that is due; returns how many. Loads what
    the pipeline (``alerts.pipeline``) needs, and stores what it decided."""
    receivers = {
        r["name"]: Receiver(
            r["name"],
            ReceiverKind(r["kind"]),
            r["group_by"],
            timers_from_seconds(r["group_wait_s"], r["group_interval_s"], r["repeat_interval_s"]),
        )
        for r in alert_repo.list_receivers(conn)
    }
    routes = {r["name"]: r["definition"].get("receivers", []) for r in alert_repo.list_rules(conn)}
    alerts = [alert_of(a) for a in alert_repo.active_alerts(conn)]
    stored = {
        gid: Group(
            g["receiver"],
            g["group_key"],
            g["group_labels"],
            GroupState(g["first_seen_at"], g["last_sent_at"], frozenset((fp, st) for fp, st in g["last_sent"])),
        )
        for gid, g in alert_repo.groups_for_update(conn).items()
    }
    plan = plan_notifications(
        alerts, routes, receivers, stored, active_silences(conn, now), inhibit_rules(conn), now, settings.public_url
    )
    for m in plan.messages:
        alert_repo.enqueue(conn, new_message_id(), m.receiver, "notification", orjson.dumps(m.body))
    for g in plan.save:
        alert_repo.save_group(
            conn,
            {
                "receiver": g.receiver,
                "group_key": g.key,
                "group_labels": g.labels,
                "first_seen_at": g.state.first_seen_at,
                "last_sent_at": g.state.last_sent_at,
                "last_sent": [list(e) for e in sorted(g.state.last_sent)],
            },
        )
    for receiver, key in plan.delete:
        alert_repo.delete_group(conn, receiver, key)
    return len(plan.messages)
