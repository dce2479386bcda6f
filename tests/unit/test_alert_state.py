"""The state machine, table-driven: each case is a sequence of (minute, condition holds) and the
state and transition expected after each evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.state import AlertState, State, fingerprint, step

T0 = datetime(2026, 11, 22, tzinfo=UTC)
P, F, R, I = State.pending, State.firing, State.resolved, State.inactive  # noqa: E741

CASES = {
    # name: (for minutes, keep_firing_for minutes, [(minute, holds, state after, transition)])
    "fires at once without for": (0, 0, [(0, True, F, F), (5, True, F, None), (10, False, R, R)]),
    "pending until for has passed": (10, 0, [(0, True, P, P), (5, True, P, None), (10, True, F, F)]),
    "pending dropped silently": (10, 0, [(0, True, P, P), (5, False, I, I), (6, False, I, None)]),
    "keep firing for a while": (
        0,
        10,
        [(0, True, F, F), (5, False, F, None), (9, False, F, None), (10, False, R, R)],
    ),
    "flap inside keep_firing_for": (0, 10, [(0, True, F, F), (5, False, F, None), (8, True, F, None)]),
    "a new incident after resolving": (
        5,
        0,
        [(0, True, P, P), (5, True, F, F), (6, False, R, R), (7, True, P, P), (12, True, F, F)],
    ),
    "nothing while inactive": (0, 0, [(0, False, I, None), (1, False, I, None)]),
    # None: a window too small to decide (an hour just turned, a quiet night) changes nothing
    "undecided keeps firing": (0, 0, [(0, True, F, F), (60, None, F, None), (62, None, F, None), (63, True, F, None)]),
    "undecided keeps pending, fires only when decided": (
        10,
        0,
        [(0, True, P, P), (5, None, P, None), (12, None, P, None), (13, True, F, F)],
    ),
    "undecided never starts an incident": (0, 0, [(0, None, I, None), (1, False, I, None)]),
    "undecided after resolving stays resolved": (0, 0, [(0, True, F, F), (1, False, R, R), (2, None, R, None)]),
    "decided no after undecided resolves": (0, 0, [(0, True, F, F), (30, None, F, None), (31, False, R, R)]),
    "undecided too long resolves": (0, 0, [(0, True, F, F), (24 * 60 - 1, None, F, None), (24 * 60, None, R, R)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_transitions(name: str) -> None:
    for_, keep, steps = CASES[name]
    s = AlertState()
    for minute, holds, expected_state, expected_transition in steps:
        now = T0 + timedelta(minutes=minute)
        s, transition = step(s, holds, now, timedelta(minutes=for_), timedelta(minutes=keep))
        assert (s.state, transition) == (expected_state, expected_transition), (name, minute)


def test_times_are_kept_for_the_notification() -> None:
    s, _ = step(AlertState(), True, T0, timedelta(minutes=5))
    s, _ = step(s, True, T0 + timedelta(minutes=5), timedelta(minutes=5))
    s, _ = step(s, False, T0 + timedelta(minutes=9), timedelta(minutes=5))
    assert (s.active_at, s.fired_at, s.resolved_at) == (T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))


def test_fingerprint_is_stable_and_order_free() -> None:
    a = fingerprint("drift", {"model": "m", "feature": "age"})
    assert a == fingerprint("drift", {"feature": "age", "model": "m"})
    assert a != fingerprint("drift", {"model": "m", "feature": "income"})
    assert a != fingerprint("other", {"model": "m", "feature": "age"})
