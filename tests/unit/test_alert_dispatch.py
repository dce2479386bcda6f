"""Silences, grouping timers, retry policy and payload shapes."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from alerts.dispatch import GroupState, Timers, due, group_key
from alerts.payloads import Notice, alertmanager_alerts, alertmanager_webhook, retrain_event, slack_message
from alerts.retry import Outcome, backoff_seconds, classify, retry_after_seconds
from alerts.silences import Matcher, Silence, SilenceSpec, silenced_by

T = datetime(2026, 11, 22, 12, tzinfo=UTC)
LABELS = {"alertname": "drift", "model": "credit", "feature": "age", "severity": "warning"}


@pytest.mark.parametrize(
    ("matcher", "hit"),
    [
        (Matcher(name="model", value="credit"), True),
        (Matcher(name="model", value="cred"), False),
        (Matcher(name="model", value="cred.*", op="=~"), True),
        (Matcher(name="model", value="cred", op="=~"), False),  # anchored
        (Matcher(name="feature", value="age", op="!="), False),
        (Matcher(name="team", value=".+", op="!~"), True),  # a missing label is ""
    ],
)
def test_matchers(matcher: Matcher, hit: bool) -> None:
    assert matcher.matches(LABELS) is hit


def test_silences_apply_only_in_their_time_range() -> None:
    s = Silence("s1", [Matcher(name="model", value="credit")], T, T + timedelta(hours=2))
    assert silenced_by(LABELS, [s], T + timedelta(hours=1)) == ["s1"]
    assert silenced_by(LABELS, [s], T + timedelta(hours=2)) == []
    assert silenced_by(LABELS, [s], T - timedelta(seconds=1)) == []


def test_a_silence_must_select_something() -> None:
    base = {"ends_at": T, "created_by": "ana", "comment": "maintenance"}
    with pytest.raises(ValidationError, match="at least one matcher"):
        SilenceSpec(matchers=[], **base)
    with pytest.raises(ValidationError, match="every alert"):
        SilenceSpec(matchers=[Matcher(name="model", value=".*", op="=~")], **base)
    with pytest.raises(ValidationError, match="invalid regular expression"):
        Matcher(name="model", value="(", op="=~")


def test_group_timers() -> None:
    timers = Timers(timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4))
    one = frozenset({("a", "firing")})
    two = frozenset({("a", "firing"), ("b", "firing")})
    fresh = GroupState(first_seen_at=T)
    assert not due(fresh, one, T + timedelta(seconds=29), timers)  # group wait
    assert due(fresh, one, T + timedelta(seconds=30), timers)
    sent = GroupState(T, T + timedelta(seconds=30), one)
    assert not due(sent, one, T + timedelta(hours=1), timers)  # unchanged: wait for the repeat
    assert due(sent, one, T + timedelta(hours=4, seconds=30), timers)
    assert not due(sent, two, T + timedelta(minutes=5), timers)  # changed: group interval
    assert due(sent, two, T + timedelta(minutes=5, seconds=30), timers)
    told = GroupState(T, T, frozenset({("a", "resolved")}))
    assert not due(told, frozenset({("a", "resolved")}), T + timedelta(days=1), timers)  # resolution told once
    assert not due(fresh, frozenset(), T + timedelta(days=1), timers)


def test_group_key_uses_the_grouping_labels_only() -> None:
    assert group_key("oncall", ["model"], LABELS) == group_key("oncall", ["model"], {**LABELS, "feature": "x"})
    assert group_key("oncall", ["model"], LABELS) != group_key("other", ["model"], LABELS)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.delivered),
        (204, Outcome.delivered),
        (None, Outcome.retry),
        (500, Outcome.retry),
        (503, Outcome.retry),
        (408, Outcome.retry),
        (429, Outcome.retry),
        (400, Outcome.failed),
        (401, Outcome.failed),
        (404, Outcome.failed),
        (410, Outcome.failed),
        (302, Outcome.failed),
    ],
)
def test_what_is_retried(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_seconds(a, rng=rng) for a in range(1, 12)]
    assert all(0 <= d <= min(600, 2 ** (a - 1)) for a, d in zip(range(1, 12), delays, strict=True))
    assert backoff_seconds(1, 30.0, rng=rng) >= 30.0
    assert backoff_seconds(1, 10_000.0, rng=rng) == 600.0  # capped
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now=T) == 30.0
    assert retry_after_seconds("soon") is None


def test_payload_shapes() -> None:
    firing = Notice("fp1", "firing", LABELS, {"summary": "age drifted"}, T, None, "http://dash")
    resolved = Notice("fp2", "resolved", {**LABELS, "feature": "income"}, {"summary": "income"}, T, T, "")
    body = alertmanager_webhook("oncall", "oncall:{}", {"model": "credit"}, [firing, resolved], "http://monitor")
    assert body["version"] == "4" and body["status"] == "firing" and body["groupKey"] == "oncall:{}"
    assert body["commonLabels"] == {"alertname": "drift", "model": "credit", "severity": "warning"}
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert body["alerts"][1]["endsAt"] == "2026-11-22T12:00:00Z"
    assert set(body["alerts"][0]) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    slack = slack_message(body)
    assert slack["text"].startswith("[FIRING:1] drift") and len(slack["attachments"]) == 2
    am = alertmanager_alerts([firing, resolved])
    assert "endsAt" not in am[0] and am[1]["endsAt"] == "2026-11-22T12:00:00Z"
    ev = retrain_event(
        model="credit",
        version="1",
        rule="drift",
        reason="r",
        evidence=[],
        reference=None,
        link="l",
        fingerprint="f",
        at=T,
    )
    assert ev["type"] == "model.retrain_requested" and ev["data"]["model"] == "credit"


def test_slack_text_from_monitored_data_cannot_ping_or_forge_links() -> None:
    hostile = "<!channel> <http://evil.example|click> & more"
    n = Notice("fp1", "firing", {**LABELS, "feature": hostile}, {"summary": f"{hostile} drifted"}, T, None, "")
    slack = slack_message(alertmanager_webhook("oncall", "k", {}, [n], "http://monitor"))
    sent = str(slack)
    assert "<!channel>" not in sent and "<http://evil.example|" not in sent
    assert "&lt;!channel&gt; &lt;http://evil.example|click&gt; &amp; more" in slack["attachments"][0]["title"]
    assert "&lt;!channel&gt;" in slack["attachments"][0]["footer"]


def test_a_pathological_pattern_evaluates_in_linear_time() -> None:
    # (a+)+$ takes Python's backtracking engine seconds at 25 characters, doubling per character
    m = Matcher(name="pad", value="(a+)+$", op="=~")
    labels = {"pad": "a" * 5000 + "!"}
    started = time.perf_counter()
    for _ in range(100):
        assert not m.matches(labels)
    assert time.perf_counter() - started < 0.5
    assert Matcher(name="pad", value="(a+)+", op="=~").matches({"pad": "aaaa"})


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=x)x", "(?<!y)x", "a" * 2000])
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="regular expression"):
        Matcher(name="model", value=pattern, op="=~")


def test_a_wide_models_thousand_feature_alerts_are_one_readable_notification() -> None:
    """The default grouping (alertname, model) puts the per-feature drift alerts of a model in one
    group, whatever the feature and window; the Slack message lists 20 and counts the rest
    (Slack refuses over 100 attachments), the webhook payload carries all of them."""
    notices = [
        Notice(f"fp{i}", "firing", {**LABELS, "feature": f"f{i}", "window": "1h"}, {"summary": f"f{i}"}, T, None, "")
        for i in range(1000)
    ]
    keys = {group_key("oncall", ["alertname", "model"], n.labels) for n in notices}
    assert len(keys) == 1
    body = alertmanager_webhook("oncall", keys.pop(), {"alertname": "drift", "model": "credit"}, notices)
    assert len(body["alerts"]) == 1000
    slack = slack_message(body)
    assert slack["text"].startswith("[FIRING:1000] drift")
    assert len(slack["attachments"]) == 21 and slack["attachments"][-1]["title"] == "and 980 more alerts in this group"


def test_the_webhook_carries_alertmanagers_fingerprint_of_the_labels() -> None:
    from alerts.payloads import alertmanager_fingerprint

    # prometheus/common's own test vectors (model.LabelsToSignature, the same hash)
    assert int(alertmanager_fingerprint({}), 16) == 14695981039346656037
    assert int(alertmanager_fingerprint({"name": "garland, briggs", "fear": "love is not enough"}), 16) == (
        5799056148416392346
    )
    n = Notice("internal", "firing", LABELS, {}, T, None)
    assert n.as_alertmanager()["fingerprint"] == alertmanager_fingerprint(LABELS)
    assert Notice("gone", "resolved", {}, {}, T, T).as_alertmanager()["fingerprint"] == "gone"


def test_the_group_key_is_written_as_alertmanager_writes_it() -> None:
    """Alertmanager's aggrGroup.GroupKey: the route's key, then the labels as Prometheus'
    LabelSet.String writes them (sorted, ", " between, values Go-quoted); labels the alert does
    not have are no part of it."""
    from alerts.dispatch import go_quote, group_labels

    labels = {"alertname": "feature-drift", "model": "credit", "severity": "warning", "feature": 'a"b\\c\n'}
    assert (
        group_key("oncall", ["model", "alertname", "window"], labels)
        == '{}/{receiver="oncall"}:{alertname="feature-drift", model="credit"}'
    )
    assert group_key("oncall", ["feature"], labels) == '{}/{receiver="oncall"}:{feature="a\\"b\\\\c\\n"}'
    assert group_labels(["model", "window"], {**labels, "window": ""}) == {"model": "credit"}
    # Go's strconv.Quote: escapes for control characters, printable Unicode kept
    assert go_quote("é\x01\x7f\t😀") == '"é\\x01\\x7f\\t😀"'
