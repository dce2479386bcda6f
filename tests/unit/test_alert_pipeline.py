"""The notification pipeline's stages (mute, route, group, decide, render) and the notifiers,
without a database: what the engine would enqueue and store, from what it would load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from alerts.dispatch import GroupState, Timers, group_key
from alerts.inhibit import InhibitRule, inhibitions
from alerts.notifiers import GROUP_NOTIFIERS, NOTIFIERS, Notification, notifier
from alerts.payloads import Notice
from alerts.pipeline import Group, mute, plan_notifications, route
from alerts.receivers import Receiver, ReceiverKind
from alerts.retry import Outcome
from alerts.silences import Matcher, Silence
from alerts.state import Alert, State

T = datetime(2026, 11, 30, 12, tzinfo=UTC)
NOW_TIMERS = Timers(timedelta(0), timedelta(minutes=5), timedelta(hours=4))
HOOK = Receiver("hook", ReceiverKind.webhook, ["alertname", "model"], NOW_TIMERS)
SLACK = Receiver("chat", ReceiverKind.slack, ["model"], NOW_TIMERS)
RETRAIN = Receiver("trainer", ReceiverKind.retrain, [], NOW_TIMERS)
RECEIVERS = {r.name: r for r in (HOOK, SLACK, RETRAIN)}


def alert(fp: str, rule: str = "feature-drift", state: State = State.firing, **labels: str) -> Alert:
    labels = {"alertname": rule, "model": "credit", "window": "1h", **labels}
    return Alert(fp, rule, labels, {"summary": f"{rule} {fp}"}, state, T, T if state is not State.pending else None)


DATASET = InhibitRule(
    name="dataset-mutes-features",
    source_matchers=[Matcher(name="alertname", value="dataset-drift")],
    target_matchers=[Matcher(name="alertname", value="feature-drift")],
    equal=["model", "window"],
)


def test_a_firing_source_mutes_targets_with_equal_labels_only() -> None:
    src = alert("d1", "dataset-drift")
    age = alert("f1", feature="age")
    other_window = alert("f2", feature="age", window="1d")
    other_model = alert("f3", feature="age", model="fraud")
    assert inhibitions([src, age, other_window, other_model], [DATASET]) == {"f1": ["d1"]}
    # a source that is not firing mutes nothing
    pending = alert("d1", "dataset-drift", State.pending)
    resolved = alert("d1", "dataset-drift", State.resolved)
    assert inhibitions([pending, age], [DATASET]) == {}
    assert inhibitions([resolved, age], [DATASET]) == {}


def test_alerts_matching_both_sides_do_not_mute_each_other() -> None:
    both = InhibitRule(
        name="critical-mutes-warning",
        source_matchers=[Matcher(name="model", value="credit")],
        target_matchers=[Matcher(name="model", value="credit")],
        equal=["model"],
    )
    a, b = alert("a"), alert("b")
    assert inhibitions([a, b], [both]) == {}
    # one that matches the source side only still mutes them
    sev = InhibitRule(
        name="critical-mutes-warning",
        source_matchers=[Matcher(name="severity", value="critical")],
        target_matchers=[Matcher(name="severity", value="warning")],
        equal=["model"],
    )
    crit, warn = alert("c", severity="critical"), alert("w", severity="warning")
    assert inhibitions([crit, warn], [sev]) == {"w": ["c"]}


def test_an_inhibit_rule_is_refused_without_matchers() -> None:
    with pytest.raises(ValidationError, match="at least one matcher"):
        InhibitRule(name="x", source_matchers=[], target_matchers=[Matcher(name="a", value="b")])
    with pytest.raises(ValidationError, match="RE2"):
        InhibitRule.model_validate(
            {"name": "x", "source_matchers": [{"name": "a", "value": "(a)\\1", "op": "=~"}], "target_matchers": []}
        )


def test_routing_goes_to_the_rules_receivers_that_exist() -> None:
    a = alert("f1", feature="age")
    routes = {"feature-drift": ["hook", "gone", "chat"]}
    got = route(a, routes, RECEIVERS)
    assert [(r.name, k) for r, k in got] == [
        ("hook", group_key("hook", HOOK.group_by, a.labels)),
        ("chat", group_key("chat", SLACK.group_by, a.labels)),
    ]
    assert route(alert("x", "unrouted"), routes, RECEIVERS) == []


def _plan(alerts: list[Alert], stored: dict | None = None, **kw: object) -> object:
    defaults: dict = {"silences": [], "inhibit_rules": [], "now": T}
    defaults.update(kw)
    return plan_notifications(
        alerts,
        {"feature-drift": ["hook", "trainer"], "dataset-drift": ["hook"]},
        RECEIVERS,
        stored or {},
        defaults["silences"],
        defaults["inhibit_rules"],
        defaults["now"],
        "https://monitor.example",
    )


def test_alerts_of_one_group_go_out_in_one_webhook_message() -> None:
    plan = _plan([alert("f1", feature="age"), alert("f2", feature="income")])
    assert len(plan.messages) == 1  # the retraining receiver takes no notifications
    body = plan.messages[0].body
    assert plan.messages[0].receiver == "hook"
    assert body["version"] == "4" and body["externalURL"] == "https://monitor.example"
    assert [a["labels"]["feature"] for a in body["alerts"]] == ["age", "income"]  # f1, f2
    assert body["groupLabels"] == {"alertname": "feature-drift", "model": "credit"}
    [saved] = plan.save
    assert saved.state.last_sent_at == T and saved.state.last_sent == {("f1", "firing"), ("f2", "firing")}


def test_inhibited_and_silenced_alerts_notify_nobody() -> None:
    src, f1, f2 = alert("d1", "dataset-drift"), alert("f1", feature="age"), alert("f2", feature="income")
    plan = _plan([src, f1, f2], inhibit_rules=[DATASET])
    assert [[a["labels"]["alertname"] for a in m.body["alerts"]] for m in plan.messages] == [["dataset-drift"]]
    silence = Silence("s1", [Matcher(name="alertname", value="dataset-drift")], T, T + timedelta(hours=1))
    plan = _plan([src, f1], silences=[silence])
    assert [[a["labels"]["alertname"] for a in m.body["alerts"]] for m in plan.messages] == [["feature-drift"]]
    muting = mute([src, f1], [silence], [DATASET], T)
    assert muting.silenced_by == {"d1": ["s1"]} and muting.inhibited_by == {"f1": ["d1"]}


def _stored(fps: list[tuple[str, str]], sent_at: datetime) -> dict:
    labels = {"alertname": "feature-drift", "model": "credit"}
    key = group_key("hook", HOOK.group_by, labels)
    return {
        ("hook", key): Group("hook", key, labels, GroupState(sent_at - timedelta(hours=1), sent_at, frozenset(fps)))
    }


def test_a_group_told_an_alert_fired_is_told_it_resolved_once_then_ends() -> None:
    later = T + timedelta(minutes=10)
    stored = _stored([("f1", "firing")], T)
    resolved = Alert("f1", "feature-drift", {}, {}, State.resolved, T, T, later)
    plan = _plan([resolved], stored, now=later)
    [m] = plan.messages
    assert m.body["status"] == "resolved" and m.body["alerts"][0]["endsAt"] == "2026-11-30T12:10:00Z"
    [saved] = plan.save
    assert saved.state.last_sent == {("f1", "resolved")}
    # next round: nothing left to tell, the group ends
    plan = _plan([], {saved.id: saved}, now=later + timedelta(minutes=10))
    assert plan.messages == [] and plan.delete == [saved.id]


def test_a_muted_alerts_end_is_not_told_while_it_is_muted() -> None:
    later = T + timedelta(minutes=10)
    stored = _stored([("f1", "firing")], T)
    src = alert("d1", "dataset-drift")
    resolved = Alert("f1", "feature-drift", alert("f1").labels, {}, State.resolved, T, T, later)
    plan = _plan([src, resolved], stored, now=later, inhibit_rules=[DATASET])
    assert all("f1" not in str(m.body) for m in plan.messages)
    assert plan.delete == []  # the group still owes it the end


def test_group_interval_holds_a_change_back() -> None:
    stored = _stored([("f1", "firing")], T)
    both = [alert("f1"), alert("f2")]
    assert _plan(both, stored, now=T + timedelta(minutes=4)).messages == []
    assert len(_plan(both, stored, now=T + timedelta(minutes=5)).messages) == 1


@pytest.mark.parametrize("kind", list(ReceiverKind))
def test_every_receiver_kind_has_a_notifier(kind: ReceiverKind) -> None:
    n = notifier(kind.value)
    assert n.kind is kind
    assert n.outcome(200) is Outcome.delivered
    assert n.outcome(None) is Outcome.retry and n.outcome(503) is Outcome.retry and n.outcome(429) is Outcome.retry
    assert n.outcome(404) is Outcome.failed
    assert (kind in GROUP_NOTIFIERS) is (kind is not ReceiverKind.retrain)


def test_each_notifier_builds_its_receivers_request() -> None:
    notice = Notice("f1", "firing", {"alertname": "drift", "model": "credit"}, {"summary": "s"}, T, None, "http://d")
    n = Notification("r", "r:{}", {"model": "credit"}, [notice], "https://m")
    assert NOTIFIERS[ReceiverKind.webhook].url("https://h/x") == "https://h/x"
    assert NOTIFIERS[ReceiverKind.alertmanager].url("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert NOTIFIERS[ReceiverKind.alertmanager].url("http://am:9093/api/v2/alerts") == "http://am:9093/api/v2/alerts"
    assert GROUP_NOTIFIERS[ReceiverKind.webhook].body(n)["alerts"][0]["labels"] == notice.labels
    assert GROUP_NOTIFIERS[ReceiverKind.alertmanager].body(n) == [
        {
            "labels": notice.labels,
            "annotations": {"summary": "s"},
            "startsAt": "2026-11-30T12:00:00Z",
            "generatorURL": "http://d",
        }
    ]
    assert GROUP_NOTIFIERS[ReceiverKind.slack].body(n)["text"].startswith("[FIRING:1] drift")
