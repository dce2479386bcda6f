"""How scheduler processes share the fleet (``monitor.domain.fleet``): pure arithmetic."""

from __future__ import annotations

import pytest

from monitor.domain.fleet import Rebalance, fair_share, rebalance


@pytest.mark.parametrize(
    ("models", "processes", "share"),
    [(0, 1, 0), (1, 1, 1), (7, 2, 4), (1000, 2, 500), (1000, 3, 334), (3, 4, 1), (5, 0, 5)],
)
def test_the_fair_share_leaves_room_for_every_model(models: int, processes: int, share: int) -> None:
    assert fair_share(models, processes) == share
    assert fair_share(models, processes) * max(processes, 1) >= models


def test_a_process_claims_up_to_its_share_and_gives_back_only_the_excess() -> None:
    assert rebalance(0, 10, 1) == Rebalance(claim=10, release=0)
    assert rebalance(10, 10, 2) == Rebalance(claim=0, release=5)  # another process joined
    assert rebalance(5, 10, 2) == Rebalance(claim=0, release=0)
    assert rebalance(3, 10, 2) == Rebalance(claim=2, release=0)
    assert rebalance(5, 10, 1) == Rebalance(claim=5, release=0)  # the other one died


@pytest.mark.parametrize(("models", "processes"), [(11, 2), (10, 3), (1000, 3), (7, 4)])
def test_processes_converge_and_then_pass_nothing_to_and_fro(models: int, processes: int) -> None:
    """One process starts with the whole fleet, the others join; ticks in turn until nothing
    moves: every model held once, none above its share, and the next round moves nothing."""
    held = [models] + [0] * (processes - 1)
    for _ in range(10):
        free = 0
        for i in range(processes):
            plan = rebalance(held[i], models, processes)
            held[i] -= plan.release
            free += plan.release
            take = min(plan.claim, free)
            held[i] += take
            free -= take
        held[0] += free  # nobody else wanted them: they stay free, the next tick claims them
    assert sum(held) == models and max(held) <= fair_share(models, processes)
    assert all(rebalance(h, models, processes) == Rebalance(fair_share(models, processes) - h, 0) for h in held)


def test_a_model_stays_on_its_schedules_beat_when_a_run_starts_late() -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.scheduler import next_due_time

    t0, period = datetime(2026, 12, 1, tzinfo=UTC), timedelta(seconds=30)
    assert next_due_time(t0, t0, period) == t0 + period
    assert next_due_time(t0, t0 + timedelta(seconds=12), period) == t0 + period  # waited its turn: same beat
    assert next_due_time(t0, t0 + timedelta(seconds=45), period) == t0 + timedelta(seconds=75)  # a beat missed
    # five due in 150 s, each starting 12 s late: still five runs
    due, runs = t0, 0
    while due < t0 + timedelta(seconds=150):
        due = next_due_time(due, due + timedelta(seconds=12), period)
        runs += 1
    assert runs == 5
