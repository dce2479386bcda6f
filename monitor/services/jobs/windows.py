"""Hours, minutes, windows, and merging a window's stored bucket summaries.

Whole weeks (Monday to Monday, UTC) inside a window are read as week summaries, whole days
outside them as day summaries, the whole hours around them as hour summaries, and the part-hours
at either end as minute summaries; a merged summary is built from the level below on first use
and stored. A 30-day window reads ~10 rows a column where it would read 720.

Minute summaries are kept for the last ``MINUTE_HORIZON``: windows up to ``SLIDING_MAX`` long
slide by the minute (a "1h" window at 00:00:19 is 23:01-00:01, not the 19 seconds since the hour
turned); longer windows step by the hour, as their edges are older than the minutes kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypedDict, TypeVar

import numpy as np
from sqlalchemy import Connection

from monitor.db import summary_repo
from monitor.db.summary_repo import Series
from monitor.metrics.log_summary import ROW_SUMMARIES, Parts, RowSummary
from monitor.metrics.profiles import LATENCY_EDGES, CategoricalSummary, NumericSummary, Summary, summary_to_parts
from monitor.metrics.window_points import LATENCY
from monitor.services.infra.context import ServiceContext

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# The longest window that slides by the minute, and how long minute summaries are kept: its
# length, the hour its oldest edge lies in, and an hour for late rows and a scheduler that lags.
SLIDING_MAX = timedelta(days=1)
_HORIZON_MARGIN = 2 * HOUR  # beyond a window's length: the hour of its oldest edge, an hour of lag
MINUTE_HORIZON = SLIDING_MAX + _HORIZON_MARGIN


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def minute_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _steps(t: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out = []
    while t < end:
        out.append(t)
        t += step
    return out


def hours(start: datetime, end: datetime) -> list[datetime]:
    return _steps(hour_floor(start), end, HOUR)


def minutes(start: datetime, end: datetime) -> list[datetime]:
    return _steps(minute_floor(start), end, MINUTE)


def minute_horizon(lengths: Iterable[timedelta]) -> timedelta:
    """How far back a model's minute summaries are made: its longest sliding window, the hour its
    oldest edge lies in and an hour for late rows and a scheduler that lags; none without a
    sliding window. A model watched over "1h" only keeps three hours of minutes, not 26."""
    longest = max((length for length in lengths if slides(length)), default=None)
    return timedelta(0) if longest is None else longest + _HORIZON_MARGIN


def has_minutes(hour: datetime, now: datetime, horizon: timedelta = MINUTE_HORIZON) -> bool:
    """Whether an hour's minute summaries are made when it is summarised, ``horizon`` back."""
    return horizon > timedelta(0) and hour + HOUR > now - horizon


def slides(length: timedelta) -> bool:
    """Whether windows of this length end at every minute, not only at hour boundaries."""
    return length <= SLIDING_MAX


def live_end(length: timedelta, now: datetime) -> datetime:
    """Where the window of ``length`` that holds ``now`` ends: the next minute for a sliding
    window, the next hour boundary for a longer one."""
    if slides(length):
        return minute_floor(now) + MINUTE
    return hour_floor(now) + HOUR


def run_window_ends(
    length: timedelta, done: datetime | None, now: datetime, earliest: datetime, *, hourly: bool = False
) -> list[datetime]:
    """The ends of the windows of ``length`` a scheduler run at ``now`` computes, given the last
    end computed (``done``, None before the first run) and how far back it catches up.

    A sliding window ends at the minute boundary after ``now`` (``live_end``): it holds every row
    up to now, and the minute still filling is computed again by the next run. Every hour
    boundary since the last end computed is computed too (the last one was perhaps computed while
    it filled): those windows stay, as the series' history, where a sliding one is replaced by the
    next. A longer window ends at the hour boundary after ``now`` and steps by the hour.
    ``hourly``: the window ending at the next hour boundary too, while it fills (a challenger's
    comparison with its champion is made over those, see ``monitor.services.jobs.window_inputs``)."""
    end = live_end(length, now)
    first = max(earliest + HOUR, done if done is not None else end)
    last = hour_floor(now) + HOUR if hourly else end
    ends = {b for b in (h + HOUR for h in hours(first - HOUR, last)) if first <= b <= last}
    return sorted({*ends, end})


def is_hour_boundary(ts: datetime) -> bool:
    return ts == hour_floor(ts)


class Accumulator(Protocol):
    """Adds up stored bucket summaries; ``parts`` gives the sum back in storage form."""

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None: ...

    def parts(self) -> dict[str, Parts]: ...

    @property
    def n_rows(self) -> int: ...


A = TypeVar("A", bound=Accumulator)


class ColumnAccumulator:
    """Adds up a window's bucket summaries column by column."""

    def __init__(self, ref: dict[str, dict[str, Any]]) -> None:
        self._edges = {c: np.asarray(s["edges"], dtype=float) for c, s in ref.items() if s["type"] == "numerical"}
        self._edges[LATENCY] = LATENCY_EDGES
        self.columns: dict[str, Summary] = {}
        self.row_summaries: dict[str, RowSummary] = {}  # label-free estimation, reconstruction
        self._rows: dict[tuple[object, int], int] = {}  # rows per bucket (or delta) added

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None:
        self._rows[(bucket, hours_)] = n_rows
        self._add(col, stats, counts)

    def add_delta(self, index: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None) -> None:
        """Add the ``index``-th delta folded (``monitor.services.jobs.summary_deltas``) of a bucket."""
        self._rows[("delta", index)] = n_rows
        self._add(col, stats, counts)

    def _add(self, col: str, stats: dict[str, Any], counts: bytes | None) -> None:
        read = ROW_SUMMARIES.get(col)
        if read is not None:
            part, held = read(stats, counts), self.row_summaries.get(col)
            self.row_summaries[col] = part if held is None else held.merge(part)
            return
        s = self.columns.get(col)
        if s is None:
            edges = self._edges.get(col)
            s = self.columns[col] = NumericSummary.empty(edges) if edges is not None else CategoricalSummary()
        if isinstance(s, NumericSummary):
            assert counts is not None
            s.add_parts(stats, counts)
        else:
            s.add_parts(stats)

    def parts(self) -> dict[str, Parts]:
        out = {c: summary_to_parts(s) for c, s in self.columns.items()}
        return out | {c: s.to_parts() for c, s in self.row_summaries.items()}

    @property
    def n_rows(self) -> int:
        return sum(self._rows.values())


# Merged levels, coarsest first: (hours per bucket, the start of an hour's bucket), and the level
# each is built from.
LEVELS = ((168, summary_repo.week_of_hour), (24, summary_repo.day_of_hour))
BUILT_FROM = {168: 24, 24: 1}


def merged_window(
    ctx: ServiceContext,
    series: Series,
    start: datetime,
    end: datetime,
    new: Callable[[], A],
    *,
    segment: str = "",
    quality: bool = False,
) -> A:
    """The sum of [start, end)'s bucket summaries (column summaries, or with ``quality`` the
    quality summaries) into ``new()``."""
    acc = new()
    now = datetime.now(UTC)
    limit = min(end, now)  # a week or day still filling is read by its hours
    plan, left, edges = bucket_plan(start, end, limit)
    kw: BucketOptions = {"segment": segment, "quality": quality}
    with ctx.uow() as uow:
        found = []
        for size, starts in plan:
            have = summary_repo.load_buckets(uow.conn, series, size, starts, **kw)
            found.append((size, have, _missing(starts, have)))
        # the weeks of what must be merged, locked in one order (no two windows wait on each other)
        for week in sorted({summary_repo.week_of_hour(b) for _, _, missing in found for b in missing}):
            summary_repo.lock_merges(uow.conn, series.version_id, week)
        for size, have, missing in found:
            _add_level(uow.conn, series, new, acc, size, have, missing, kw)
        left, edges = _filling_hour_whole(uow.conn, series, start, end, now, left, edges, kw)
        for size, starts in ((1, left), (summary_repo.MINUTE_BUCKET, edges)):
            for b, col, n, st, ct in summary_repo.load_buckets(uow.conn, series, size, starts, **kw):
                if not summary_repo.is_marker(col):
                    acc.add(b, size, col, n, st, ct)
        uow.commit()  # the days and weeks merged, if any: one transaction for the window's reads
    return acc


def _filling_hour_whole(
    conn: Connection,
    series: Series,
    start: datetime,
    end: datetime,
    now: datetime,
    left: tuple[datetime, ...],
    edges: tuple[datetime, ...],
    kw: BucketOptions,
) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    """A window sliding to the minute ends in the hour still filling: its minutes of that hour are
    what the hour's own summary holds, unless a row of the hour lies at or after the window's end
    (stamped ahead of the clock, which ingestion allows). Read as that one bucket, not up to 59:
    the hour's summary and its minutes' are folded in one transaction. ``now``: the merge's one reading
    of the clock. Returns (hours, minutes)."""
    hour = hour_floor(end)
    if hour == end or start > hour or hour + HOUR <= now or not edges or edges[-1] < hour:
        return left, edges
    if summary_repo.any_minute(conn, series, end, hour + HOUR, **kw):
        return left, edges
    return (*left, hour), tuple(m for m in edges if m < hour)


@lru_cache(maxsize=1024)
def bucket_plan(
    start: datetime, end: datetime, limit: datetime
) -> tuple[tuple[tuple[int, tuple[datetime, ...]], ...], tuple[datetime, ...], tuple[datetime, ...]]:
    """Which whole weeks and days (ending by ``limit``), which whole hours and which minutes
    make up [start, end): ((168, weeks), (24, days)), hours, minutes (the part-hours at either
    end). Cached: every segment and both kinds of summary of a window read the same buckets."""
    inner_start, inner_end = hour_floor(start), hour_floor(end)
    inner_start += HOUR if inner_start < start else timedelta(0)
    if inner_start >= inner_end:  # no whole hour: all minutes
        return ((168, ()), (24, ())), (), tuple(minutes(start, end))
    edges = (*minutes(start, inner_start), *minutes(inner_end, end))
    left = hours(inner_start, inner_end)
    plan = []
    for size, start_of in LEVELS:
        span = timedelta(hours=size)
        whole = sorted({b for b in map(start_of, left) if start <= b and b + span <= limit})
        covered = set(whole)
        left = [h for h in left if start_of(h) not in covered]
        plan.append((size, tuple(whole)))
    return tuple(plan), tuple(left), edges


class BucketOptions(TypedDict):
    """Which summaries of a bucket: a segment's ("" for all rows), quality or column summaries."""

    segment: str
    quality: bool


def _add_level(
    conn: Connection,
    series: Series,
    new: Callable[[], A],
    acc: A,
    size: int,
    have: list[summary_repo.BucketRow],
    missing: list[datetime],
    kw: BucketOptions,
) -> None:
    """Add ``size``-hour buckets to ``acc``: the stored ones (``have``), and the ``missing``
    ones merged and stored first. The caller holds the weeks' ``lock_merges``."""
    for b, col, n, st, ct in have:
        if not summary_repo.is_marker(col):  # a merged bucket that had no rows adds nothing
            acc.add(b, size, col, n, st, ct)
    for b in missing:
        built = new()
        child = BUILT_FROM[size]
        starts = [b + timedelta(hours=child * i) for i in range(size // child)]
        stored = summary_repo.load_buckets(conn, series, child, starts, **kw)
        # hours are never merged from anything: a missing hour had no rows
        gaps = _missing(starts, stored) if child > 1 else []
        _add_level(conn, series, new, built, child, stored, gaps, kw)
        parts = built.parts()
        summary_repo.replace_bucket(conn, series, b, size, built.n_rows, parts, **kw)
        for col, (st, ct) in parts.items():
            acc.add(b, size, col, built.n_rows, st, ct)


def _missing(starts: Sequence[datetime], stored: list[summary_repo.BucketRow]) -> list[datetime]:
    return sorted(set(starts) - {row[0] for row in stored})
