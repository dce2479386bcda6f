"""The rules engine's service without a database: ``evaluate_in`` on an in-memory alert store,
evaluation after evaluation. What each step leaves stored (the instance's state, its history,
the requests and notifications enqueued) is what the Postgres store would hold; the integration
tests run the same code on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.evaluate import Sample
from alerts.rules import parse_rule
from alerts.state import State
from monitor.config import Settings
from monitor.db.alert_repo import AlertRepository, PointRow
from monitor.db.registry_repo import VersionRow
from monitor.services.alerting.evaluation import Subject, evaluate_in
from monitor.services.alerting.store import AlertStore
from tests.unit.fake_alerts import FakeAlertStore

T = datetime(2026, 12, 1, 12, tzinfo=UTC)
SETTINGS = Settings(database_url="postgresql://unused/none")
CHAMPION = VersionRow(7, "credit", "classification", 70, "1", {"features": []}, "", T, "champion")
SUBJECT = Subject("credit", [CHAMPION], lambda version_id: 3)
M = timedelta(minutes=1)


def drift(value: float | None, at: datetime, feature: str = "age", drifted: bool | None = None) -> Sample:
    """The newest 1h window of a feature's drift score ending at ``at``."""
    return Sample(
        model="credit",
        version="1",
        metric="feature_drift",
        labels={"feature": feature},
        window_start=at - timedelta(hours=1),
        window_end=at,
        value=value,
        sample_size=500,
        threshold=0.1,
        drifted=drifted,
    )


def rule(**extra: Any) -> Any:
    return parse_rule(
        {"name": "age-drift", "metric": "feature_drift", "condition": {"op": ">", "threshold": 0.5}, **extra}
    )


def run(store: FakeAlertStore, rules: list[Any], samples: list[Sample], at: datetime) -> dict[str, int]:
    return evaluate_in(store, SETTINGS, SUBJECT, rules, samples, at)


def the_state(store: FakeAlertStore) -> State | None:
    assert len(store.alerts) <= 1
    return next(iter(store.alerts.values()))["state"] if store.alerts else None


def test_the_fake_and_the_postgres_store_both_are_alert_stores() -> None:
    assert isinstance(FakeAlertStore(), AlertStore)
    assert all(callable(getattr(AlertRepository, name, None)) for name in dir(AlertStore) if not name.startswith("_"))


# (minutes after T, the score, the state after, the transition recorded at that step)
FOR_2M_KEEP_3M = [
    (0, 0.7, State.pending, State.pending),
    (1, 0.8, State.pending, None),
    (2, 0.9, State.firing, State.firing),
    (3, 0.2, State.firing, None),  # kept firing 3 minutes after the condition last held (minute 2)
    (4, 0.2, State.firing, None),
    (5, 0.2, State.resolved, State.resolved),
    (7, 0.2, State.resolved, None),
    (8, 0.7, State.pending, State.pending),  # a new incident starts pending again
]


def test_an_instance_steps_pending_firing_kept_firing_resolved() -> None:
    store = FakeAlertStore()
    r = rule(**{"for": "2m", "keep_firing_for": "3m"})
    for minutes, value, state, transition in FOR_2M_KEEP_3M:
        at = T + minutes * M
        counts = run(store, [r], [drift(value, at)], at)
        assert the_state(store) is state, (minutes, the_state(store))
        assert counts == ({transition.value: 1} if transition else {}), minutes
    assert [(h["from_state"], h["to_state"]) for h in store.history] == [
        (State.inactive, State.pending),
        (State.pending, State.firing),
        (State.firing, State.resolved),
        (State.resolved, State.pending),
    ]


def test_a_pending_instance_that_never_fires_is_forgotten_with_its_history() -> None:
    store = FakeAlertStore()
    r = rule(**{"for": "10m"})
    run(store, [r], [drift(0.9, T)], T)
    run(store, [r], [drift(0.1, T + M)], T + M)
    assert store.alerts == {}
    assert [(h["from_state"], h["to_state"]) for h in store.history] == [
        (State.inactive, State.pending),
        (State.pending, State.inactive),
    ]


def test_an_undecided_point_changes_nothing() -> None:
    """A drift point too small to decide (``drifted`` None) neither resolves nor fires."""
    store = FakeAlertStore()
    r = parse_rule({"name": "age-drift", "metric": "feature_drift", "condition": {"drifted": True}})
    run(store, [r], [drift(0.9, T, drifted=True)], T)
    assert the_state(store) is State.firing
    counts = run(store, [r], [drift(None, T + M, drifted=None)], T + M)
    assert counts == {} and the_state(store) is State.firing
    assert next(iter(store.alerts.values()))["evidence"]["window_end"] == T.isoformat()  # the window that decided


def test_an_instance_no_rule_evaluates_any_more_resolves_with_a_note() -> None:
    store = FakeAlertStore()
    run(store, [rule()], [drift(0.9, T)], T)
    assert the_state(store) is State.firing
    run(store, [], [drift(0.9, T + M)], T + M)  # the rule was removed
    assert the_state(store) is State.resolved
    assert store.history[-1]["to_state"] is State.resolved
    assert store.history[-1]["evidence"]["note"].startswith("no longer evaluated")


RETRAIN = {"retrain": {"receiver": "trainer", "cooldown": "1h"}}


@pytest.mark.parametrize(
    ("fired_at_minutes", "requests"),
    [
        pytest.param([0], 1, id="one-incident-one-request"),
        pytest.param([0, 10], 1, id="a-second-feature-within-the-cooldown-is-covered"),
        pytest.param([0, 59], 1, id="just-inside-the-cooldown"),
        pytest.param([0, 60], 2, id="at-the-cooldown-a-new-request"),
        pytest.param([0, 61, 62], 2, id="the-cooldown-restarts-from-the-last-request"),
    ],
)
def test_retraining_requests_respect_the_cooldown(fired_at_minutes: list[int], requests: int) -> None:
    """At most one retraining request per model within the cooldown: each firing here is a new
    instance (another feature), the first of an incident sends, the rest are covered by it."""
    store = FakeAlertStore()
    r = rule(**RETRAIN)
    for i, minutes in enumerate(fired_at_minutes):
        at = T + minutes * M
        run(store, [r], [drift(0.9, at, feature=f"f{j}") for j in range(i + 1)], at)
    sent = [m for m in store.outbox if m.kind == "retrain"]
    assert len(sent) == len(store.triggers) == requests
    assert {m.receiver for m in sent} == {"trainer"}
    first = sent[0].body["data"]
    assert first["model"] == "credit" and first["reference"] == {"reference_id": 3}
    assert store.triggers[0]["event"] == "model.retrain_requested" and store.triggers[0]["rule"] == "age-drift"
    assert store.locked and set(store.locked) == {"credit"}  # decided under the model's trigger lock


def test_a_request_is_sent_on_firing_not_on_every_evaluation_while_firing() -> None:
    store = FakeAlertStore()
    r = rule(**{"retrain": {"receiver": "trainer", "cooldown": "0s"}})
    for minutes in range(5):
        run(store, [r], [drift(0.9, T + minutes * M)], T + minutes * M)
    assert len(store.triggers) == 1


def test_a_baseline_condition_reads_the_window_a_baseline_back() -> None:
    """A rule against a baseline compares with the same series' window ``baseline`` ago (the
    nearest kept one, as a sliding window's point is replaced by the next)."""
    store = FakeAlertStore()
    week_ago = T - timedelta(days=7) - 17 * M
    store.points[(7, 70)] = [
        PointRow(
            metric="feature_drift",
            labels={"feature": "age"},
            window_start=week_ago - timedelta(hours=1),
            window_end=week_ago,
            value=0.2,
            sample_size=500,
            threshold=0.1,
            drifted=False,
            details={},
        )
    ]
    r = parse_rule(
        {
            "name": "age-drift",
            "metric": "feature_drift",
            "condition": {"change": {"baseline": "7d", "op": ">", "threshold": 0.25, "relative": False}},
        }
    )
    run(store, [r], [drift(0.5, T)], T)
    assert the_state(store) is State.firing
    assert next(iter(store.alerts.values()))["evidence"]["baseline"] == 0.2


def test_a_firing_and_a_resolved_notification_go_to_the_rules_receiver() -> None:
    store = FakeAlertStore()
    store.rules["rules"] = [{"name": "age-drift", "definition": {"receivers": ["oncall"]}}]
    store.receivers = [
        {
            "name": "oncall",
            "kind": "webhook",
            "url": "https://hooks.example.com/x",
            "secret": "",
            "headers": {},
            "group_by": ["alertname", "model"],
            "group_wait_s": 0,
            "group_interval_s": 60,
            "repeat_interval_s": 3600,
            "source": "api",
        }
    ]
    r = rule()
    run(store, [r], [drift(0.9, T)], T)
    run(store, [r], [drift(0.1, T + 2 * M)], T + 2 * M)
    notes = [m for m in store.outbox if m.kind == "notification"]
    assert [m.receiver for m in notes] == ["oncall", "oncall"]
    assert [m.body["status"] for m in notes] == ["firing", "resolved"]
    assert notes[0].body["alerts"][0]["labels"]["feature"] == "age"
