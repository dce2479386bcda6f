"""Which windows a scheduler run computes, and which stored buckets make up a window: pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.services.jobs.windows import (
    HOUR,
    MINUTE,
    MINUTE_HORIZON,
    SLIDING_MAX,
    bucket_plan,
    has_minutes,
    minute_horizon,
    minutes,
    run_window_ends,
)

T = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
EARLIEST = T - timedelta(days=7)


@pytest.mark.parametrize(
    ("length", "done", "now", "ends"),
    [
        # the first run: the window ending at the next minute, nothing before it
        (HOUR, None, T + 30 * MINUTE + timedelta(seconds=5), [T + 31 * MINUTE]),
        # just after the hour turned: the hour before, up to the next minute (not 19 seconds)
        (HOUR, None, T + timedelta(seconds=19), [T + MINUTE]),
        # a run in the same minute computes that window again
        (HOUR, T + 31 * MINUTE, T + 30 * MINUTE + timedelta(seconds=40), [T + 31 * MINUTE]),
        # the next minute: a new sliding window
        (HOUR, T + 31 * MINUTE, T + 31 * MINUTE + timedelta(seconds=10), [T + 32 * MINUTE]),
        # the hour turned since: its boundary, computed final, then the sliding one
        (HOUR, T - 2 * MINUTE, T + 10 * MINUTE, [T, T + 11 * MINUTE]),
        # the boundary itself was the last end computed (while it filled): computed again
        (DAY, T, T + timedelta(seconds=30), [T, T + MINUTE]),
        # after downtime: every boundary since
        (HOUR, T - 3 * HOUR + 5 * MINUTE, T + 5 * MINUTE, [T - 2 * HOUR, T - HOUR, T, T + 6 * MINUTE]),
        # a run in the last minute of an hour: the sliding window is the boundary's
        (HOUR, T + 58 * MINUTE, T + 59 * MINUTE + timedelta(seconds=3), [T + HOUR]),
        # a window longer than a day steps by the hour, to the boundary after now
        (7 * DAY, None, T + 30 * MINUTE, [T + HOUR]),
        (7 * DAY, T, T + HOUR + 30 * MINUTE, [T, T + HOUR, T + 2 * HOUR]),
        # catching up goes back a bounded time only
        (HOUR, T - 30 * DAY, T + 30 * MINUTE, None),
    ],
)
def test_run_window_ends(length: timedelta, done: datetime | None, now: datetime, ends: list[datetime] | None) -> None:
    got = run_window_ends(length, done, now, EARLIEST)
    if ends is None:
        assert got[0] == EARLIEST + HOUR and got[-1] == T + 31 * MINUTE
        assert len(got) == 7 * 24 + 1
    else:
        assert got == ends


def test_with_challengers_the_next_hour_boundary_is_computed_too() -> None:
    now = T + 30 * MINUTE
    assert run_window_ends(HOUR, T + 25 * MINUTE, now, EARLIEST, hourly=True) == [T + 31 * MINUTE, T + HOUR]
    assert run_window_ends(HOUR, T - 5 * MINUTE, now, EARLIEST, hourly=True) == [T, T + 31 * MINUTE, T + HOUR]
    assert run_window_ends(7 * DAY, T, now, EARLIEST, hourly=True) == [T, T + HOUR]


def test_a_day_slides_and_longer_windows_have_their_edges_outside_the_minutes_kept() -> None:
    assert SLIDING_MAX == DAY
    now = T + 30 * MINUTE
    # the oldest minute a sliding day reads, a run late, is still kept
    assert has_minutes(now - DAY - HOUR, now)
    assert not has_minutes(now - MINUTE_HORIZON - HOUR, now)


def test_minutes_are_kept_as_far_back_as_the_longest_sliding_window_needs() -> None:
    assert minute_horizon([HOUR, DAY]) == MINUTE_HORIZON == DAY + 2 * HOUR
    assert minute_horizon([10 * MINUTE, HOUR]) == 3 * HOUR
    assert minute_horizon([7 * DAY]) == timedelta(0)  # no window slides: no minutes at all
    now = T + 30 * MINUTE
    assert has_minutes(T - 3 * HOUR, now, 3 * HOUR) and not has_minutes(T - 4 * HOUR, now, 3 * HOUR)
    assert not has_minutes(T, now, timedelta(0))


def test_a_sliding_hour_is_read_from_minutes() -> None:
    start, end = T + 17 * MINUTE - HOUR, T + 17 * MINUTE
    levels, hours_, edges = bucket_plan(start, end, end)
    assert levels == ((168, ()), (24, ())) and hours_ == ()
    assert edges == tuple(minutes(start, end)) and len(edges) == 60


def test_a_sliding_day_is_whole_hours_between_two_part_hours() -> None:
    start, end = T + 17 * MINUTE - DAY, T + 17 * MINUTE
    levels, hours_, edges = bucket_plan(start, end, end)
    assert levels == ((168, ()), (24, ()))  # no whole day inside
    assert hours_ == tuple(T - DAY + HOUR * k for k in range(1, 24))  # 23 whole hours
    assert edges == (*minutes(start, T - DAY + HOUR), *minutes(T, end))
    assert len(edges) == 60
    # every minute of the window exactly once
    covered = [m for h in hours_ for m in minutes(h, h + HOUR)] + list(edges)
    assert sorted(covered) == minutes(start, end)


def test_hour_aligned_windows_read_no_minutes_and_merge_whole_days() -> None:
    start, end = T - 3 * DAY, T  # Friday 10:00 to Monday 10:00
    levels, hours_, edges = bucket_plan(start, end, end)
    assert edges == ()
    assert levels[1] == (24, (T - 2 * DAY - 10 * HOUR, T - DAY - 10 * HOUR))  # Saturday and Sunday
    assert len(hours_) == 14 + 10  # Friday's last 14 hours, Monday's first 10


@pytest.mark.parametrize("spec", ["10m", "1h", "1d"])
def test_short_windows_slide_and_long_ones_step_by_the_hour(spec: str) -> None:
    from monitor.domain.monitoring import parse_window

    length = parse_window(spec)
    now = T + 30 * MINUTE + timedelta(seconds=7)
    assert run_window_ends(length, T + 25 * MINUTE, now, EARLIEST) == [T + 31 * MINUTE]
    assert run_window_ends(7 * DAY, T + HOUR, now, EARLIEST) == [T + HOUR]


def test_a_window_inside_one_hour_is_all_minutes() -> None:
    start, end = T + 5 * MINUTE, T + 35 * MINUTE
    assert bucket_plan(start, end, end) == (((168, ()), (24, ())), (), tuple(minutes(start, end)))
