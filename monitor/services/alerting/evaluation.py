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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from alerts.dispatch import GroupState
from alerts.evaluate import Evaluation, Sample, evaluate, render, window_name
from alerts.inhibit import InhibitRule
from alerts.payloads import retrain_event, version_event
from alerts.pipeline import Group, plan_notifications
from alerts.receivers import Receiver, ReceiverKind, timers_from_seconds
from alerts.records import AlertHistoryEntry, AlertRecord
from alerts.rules import EVENTS, Retrain, Rule, parse_duration
from alerts.silences import Matcher, Silence
from alerts.state import Alert, AlertState, State, step
from monitor.config import Settings
from monitor.db import reference_repo
from monitor.db.alert_repo import INHIBIT_RULES, GroupRow, TriggerRow
from monitor.db.registry_repo import VersionRow
from monitor.services.alerting.alert_config import active_rules
from monitor.services.alerting.store import AlertStore
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


def _state_of(row: AlertRecord | None) -> AlertState:
    if row is None:
        return AlertState()
    return AlertState(row["state"], row["active_at"], row["fired_at"], row["last_true_at"], row["resolved_at"])


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
    alerts: AlertStore, model: str, versions: list[VersionRow], rules: list[Rule], now: datetime
) -> list[Sample]:
    """The newest point of every series of each live version. The first (primary) version's
    series keep their labels; the others' carry ``version`` too, so that a challenger's alerts
    are instances of their own, never the champion's."""
    metrics = sorted({r.metric for r in rules})
    samples = []
    for i, vrow in enumerate(versions):
        tag = {} if i == 0 else {VERSION_LABEL: vrow.version}
        for p in alerts.latest_points(vrow.model_id, vrow.version_id, metrics, now - FRESHNESS):
            samples.append(
                Sample(
                    model=model,
                    version=vrow.version,
                    metric=p["metric"],
                    labels={**p["labels"], **tag},
                    window_start=p["window_start"],
                    window_end=p["window_end"],
                    value=p["value"],
                    sample_size=p["sample_size"],
                    threshold=p["threshold"],
                    drifted=p["drifted"],
                    details=p["details"],
                )
            )
    return samples


def evaluate_model(ctx: ServiceContext, model: str, now: datetime | None = None) -> dict[str, int]:
    """Evaluate every rule that reads ``model``, on the points of each live version
    (``registry.live_versions``); returns counts of transitions by new state."""
    now = now or datetime.now(UTC)
    rules = [r for r in active_rules(ctx) if fnmatchcase(model, r.model)]
    versions = live_versions(ctx, model)
    with ctx.reads() as uow:
        samples = _samples(uow.alerts, model, versions, rules, now)
    with ctx.uow() as uow:
        conn = uow.conn
        counts = evaluate_in(
            uow.alerts,
            ctx.settings,
            Subject(model, versions, lambda version_id: reference_repo.measured_reference_id(conn, version_id)),
            rules,
            samples,
            now,
        )
        uow.commit()
    return counts


@dataclass(frozen=True)
class Subject:
    """The model whose rules are evaluated: its live versions, the primary one first, and where to
    find the reference a version is measured against (named in a retraining request)."""

    model: str
    versions: list[VersionRow]
    reference_of: Callable[[int], int | None]

    def version(self, name: str) -> VersionRow:
        return next(v for v in self.versions if v.version == name)


def evaluate_in(
    alerts: AlertStore, settings: Settings, subject: Subject, rules: list[Rule], samples: list[Sample], now: datetime
) -> dict[str, int]:
    """Step every alert instance of the model on its rules' evaluations of ``samples``, in the
    caller's transaction: the instance, its history, the notifications and requests due now.
    Returns counts of transitions by new state."""
    counts: dict[str, int] = defaultdict(int)
    primary = subject.versions[0]

    def baseline(s: Sample, back: timedelta) -> float | None:
        vrow = subject.version(s.version)
        labels = s.labels if vrow is primary else {k: v for k, v in s.labels.items() if k != VERSION_LABEL}
        return alerts.point_value(
            vrow.model_id, vrow.version_id, s.metric, labels, s.window_start - back, s.window_end - back
        )

    existing = alerts.alerts_for_update(subject.model)
    seen: set[str] = set()
    for rule in rules:
        for e in evaluate(rule, samples, baseline):
            seen.add(e.fingerprint)
            prev = existing.get(e.fingerprint)
            new, transition = step(
                _state_of(prev), e.holds, now, rule.for_duration, rule.keep_firing_duration, rule.undecided_duration
            )
            _store(alerts, settings, rule, e, prev, new, transition, now, counts)
            if transition is State.firing:
                for event, action in rule.events():
                    reference = subject.reference_of(subject.version(e.sample.version).version_id)
                    _maybe_send(alerts, settings, rule, event, action, e, reference, now)
    by_name = {r.name: r for r in rules}
    # Instances nobody evaluated (their rule was removed, their series stopped): the condition
    # no longer holds.
    for fp, row in existing.items():
        if fp in seen or row["state"] is State.resolved:
            continue
        its_rule = by_name.get(row["rule"])
        keep = its_rule.keep_firing_duration if its_rule else timedelta(0)
        new, transition = step(_state_of(row), False, now, timedelta(0), keep)
        if transition is not None:
            _transition_row(alerts, row, new, transition, now)
            counts[transition.value] += 1
    if counts:
        # a transition changes the groups at once (a new alert's group starts its wait, a resolved
        # one is told); what only a timer changes (a wait or an interval ending) is sent by the
        # leading scheduler's flush at every tick (flush_groups): planning every group of the
        # fleet again after each model's evaluation was a third of a small model's rule cost
        flush_groups_in(alerts, settings, now)
    return dict(counts)


def _store(
    alerts: AlertStore,
    settings: Settings,
    rule: Rule,
    e: Evaluation,
    prev: AlertRecord | None,
    new: AlertState,
    transition: State | None,
    now: datetime,
    counts: dict[str, int],
) -> None:
    if new.state is State.inactive:
        if prev is not None and transition is State.inactive:  # pending that never fired: forgotten
            alerts.delete_alert(e.fingerprint)
            alerts.add_history(_history(e, prev["rule"], prev["state"], State.inactive, now))
            counts[State.inactive.value] += 1
        return
    if new.state is State.resolved and transition is None:
        return  # a resolved alert keeps the evidence it resolved with
    if e.holds is None and transition is None:
        return  # undecided: the alert keeps the evidence and the words of the window that decided
    link = dashboard_link(settings, e.sample.model, e.sample)
    alerts.save_alert(
        AlertRecord(
            fingerprint=e.fingerprint,
            rule=rule.name,
            model=e.sample.model,
            labels=e.labels,
            annotations={**render(rule, e, link, resolved=new.state is State.resolved), "dashboard": link},
            state=new.state,
            active_at=new.active_at,
            fired_at=new.fired_at,
            last_true_at=new.last_true_at,
            resolved_at=new.resolved_at,
            value=e.sample.value,
            threshold=e.threshold,
            evidence=_evidence(e),
            updated_at=now,
        )
    )
    if transition is not None:
        before = prev["state"] if prev is not None else State.inactive
        alerts.add_history(_history(e, rule.name, before, transition, now))
        counts[transition.value] += 1


def _history(e: Evaluation, rule: str, before: State, after: State, at: datetime) -> AlertHistoryEntry:
    return AlertHistoryEntry(
        fingerprint=e.fingerprint,
        rule=rule,
        model=e.sample.model,
        from_state=before,
        to_state=after,
        at=at,
        value=e.sample.value,
        threshold=e.threshold,
        labels=e.labels,
        evidence=_evidence(e),
    )


def _transition_row(alerts: AlertStore, row: AlertRecord, new: AlertState, transition: State, now: datetime) -> None:
    """An instance no rule evaluated any more steps on its stored row, its evidence kept."""
    if new.state is State.inactive:
        alerts.delete_alert(row["fingerprint"])
    else:
        saved: AlertRecord = {
            **row,
            "state": new.state,
            "active_at": new.active_at,
            "fired_at": new.fired_at,
            "last_true_at": new.last_true_at,
            "resolved_at": new.resolved_at,
            "updated_at": now,
        }
        alerts.save_alert(saved)
    note = "no longer evaluated: the rule or the series is gone"
    alerts.add_history(
        AlertHistoryEntry(
            fingerprint=row["fingerprint"],
            rule=row["rule"],
            model=row["model"],
            from_state=row["state"],
            to_state=transition,
            at=now,
            value=row["value"],
            threshold=row["threshold"],
            labels=row["labels"],
            evidence={**row["evidence"], "note": note},
        )
    )


def _maybe_send(
    alerts: AlertStore,
    settings: Settings,
    rule: Rule,
    event: str,
    action: Retrain,
    e: Evaluation,
    reference_id: int | None,
    now: datetime,
) -> None:
    """At most one event of a kind (retraining, promotion, rollback) per model within the rule's
    cooldown: the first alert of an incident sends it, the rest of it (other features, other
    rules) is covered by that one."""
    model = e.sample.model
    alerts.lock_model_triggers(model)
    last = alerts.last_trigger_at(model, event)
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
    body = _request_body(settings, rule, event, e, reason, evidence, reference_id, now)
    alerts.enqueue(message_id, action.receiver, "retrain", orjson.dumps(body))
    alerts.add_trigger(
        TriggerRow(
            model=model,
            version=e.sample.version,
            rule=rule.name,
            fingerprint=e.fingerprint,
            receiver=action.receiver,
            message_id=message_id,
            reason=reason,
            evidence=evidence,
            created_at=now,
            event=event,
        )
    )


def _request_body(
    settings: Settings,
    rule: Rule,
    event: str,
    e: Evaluation,
    reason: str,
    evidence: list[dict[str, Any]],
    reference_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The signed event's body: a retraining request names the reference and the window's export;
    a comparison's promotion or rollback names the challenger (the point's version) and its champion
    (the point's label)."""
    model = e.sample.model
    link = dashboard_link(settings, model, e.sample)
    if event == EVENTS["retrain"]:
        return retrain_event(
            model=model,
            version=e.sample.version,
            rule=rule.name,
            reason=reason,
            evidence=evidence,
            reference=None if reference_id is None else {"reference_id": reference_id},
            link=link,
            export=export_link(settings, model, e.sample),
            fingerprint=e.fingerprint,
            at=now,
        )
    return version_event(
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


def flush_groups(ctx: ServiceContext, now: datetime | None = None) -> int:
    with ctx.uow() as uow:
        n = flush_groups_in(uow.alerts, ctx.settings, now or datetime.now(UTC))
        uow.commit()
    return n


def active_silences(alerts: AlertStore, now: datetime) -> list[Silence]:
    """The silences in force at ``now``. One stored before its pattern was refused (a regular
    expression RE2 cannot run) mutes nothing: its alerts are sent, and the log says why."""
    out = []
    for s in alerts.list_silences(now):
        try:
            matchers = [Matcher.model_validate(m) for m in s["matchers"]]
        except ValueError as exc:
            log.warning("silence %s mutes nothing: %s", s["id"], str(exc).splitlines()[-1][:300])
            continue
        out.append(Silence(s["id"], matchers, s["starts_at"], s["ends_at"], s["created_by"], s["comment"]))
    return out


def inhibit_rules(alerts: AlertStore) -> list[InhibitRule]:
    """Every stored inhibit rule that still parses (they were checked when stored)."""
    out = []
    for row in alerts.list_rules(INHIBIT_RULES):
        try:
            out.append(InhibitRule.model_validate(row["definition"]))
        except ValueError as exc:
            log.error("stored inhibit rule %s no longer parses: %s", row["name"], str(exc).splitlines()[-1][:300])
    return out


def alert_of(row: AlertRecord) -> Alert:
    return Alert(
        row["fingerprint"],
        row["rule"],
        row["labels"],
        row["annotations"],
        row["state"],
        row["active_at"],
        row["fired_at"],
        row["resolved_at"],
    )


def flush_groups_in(alerts: AlertStore, settings: Settings, now: datetime) -> int:
    """Enqueue a message for every notification group that is due; returns how many. Loads what
    the pipeline (``alerts.pipeline``) needs, and stores what it decided."""
    receivers = {
        r["name"]: Receiver(
            r["name"],
            ReceiverKind(r["kind"]),
            r["group_by"],
            timers_from_seconds(r["group_wait_s"], r["group_interval_s"], r["repeat_interval_s"]),
        )
        for r in alerts.list_receivers()
    }
    routes = {r["name"]: r["definition"].get("receivers", []) for r in alerts.list_rules()}
    instances = [alert_of(a) for a in alerts.active_alerts()]
    stored = {
        gid: Group(
            g["receiver"],
            g["group_key"],
            g["group_labels"],
            GroupState(g["first_seen_at"], g["last_sent_at"], frozenset((fp, st) for fp, st in g["last_sent"])),
        )
        for gid, g in alerts.groups_for_update().items()
    }
    plan = plan_notifications(
        instances,
        routes,
        receivers,
        stored,
        active_silences(alerts, now),
        inhibit_rules(alerts),
        now,
        settings.public_url,
    )
    for m in plan.messages:
        alerts.enqueue(new_message_id(), m.receiver, "notification", orjson.dumps(m.body))
    for g in plan.save:
        alerts.save_group(
            GroupRow(
                receiver=g.receiver,
                group_key=g.key,
                group_labels=g.labels,
                first_seen_at=g.state.first_seen_at,
                last_sent_at=g.state.last_sent_at,
                last_sent=[list(e) for e in sorted(g.state.last_sent)],
            )
        )
    for receiver, key in plan.delete:
        alerts.delete_group(receiver, key)
    return len(plan.messages)
