"""Hours, windows, and merging a window's stored bucket summaries.

Whole weeks (Monday to Monday, UTC) inside a window are read as week summaries, whole days
outside them as day summaries, the hours around them as hour summaries; a merged summary is
built from the level below on first use and stored. A 30-day window reads ~10 rows a column
where it would read 720.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection

from monitor.db import summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.services.context import ServiceContext

HOUR = timedelta(hours=1)


def hour_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], hour_floor(start)
    while t < end:
        out.append(t)
        t += HOUR
    return out


class Accumulator(Protocol):
    """Adds up stored bucket summaries; ``parts`` gives the sum back in storage form."""

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None: ...

    def parts(self) -> dict[str, summary_repo.Parts]: ...

    @property
    def n_rows(self) -> int: ...


A = TypeVar("A", bound=Accumulator)


# Merged levels, coarsest first: (hours per bucket, the start of an hour's bucket), and the level
# each is built from.
LEVELS = ((168, summary_repo.week_of_hour), (24, summary_repo.day_of_hour))
BUILT_FROM = {168: 24, 24: 1}


def merged_window(
    ctx: ServiceContext,
    vrow: VersionRow,
    ref_id: int,
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
    limit = min(end, datetime.now(UTC))  # a week or day still filling is read by its hours
    left = hours(start, end)
    plan: list[tuple[int, list[datetime]]] = []
    for size, start_of in LEVELS:
        span = timedelta(hours=size)
        whole = sorted({b for b in map(start_of, left) if start <= b and b + span <= limit})
        covered = set(whole)
        left = [h for h in left if start_of(h) not in covered]
        plan.append((size, whole))
    kw = {"segment": segment, "quality": quality}
    with ctx.uow() as uow:
        found = []
        for size, starts in plan:
            have = summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, size, starts, **kw)
            found.append((size, have, sorted(set(starts) - {row[0] for row in have})))
        # the weeks of what must be merged, locked in one order (no two windows wait on each other)
        for week in sorted({summary_repo.week_of_hour(b) for _, _, missing in found for b in missing}):
            summary_repo.lock_merges(uow.conn, vrow.version_id, week)
        for size, have, missing in found:
            for b, col, n, st, ct in have:
                acc.add(b, size, col, n, st, ct)
            for b in missing:
                built = _build(uow.conn, vrow, ref_id, new, b, size, kw)
                for col, (st, ct) in built.parts().items():
                    acc.add(b, size, col, built.n_rows, st, ct)
        uow.commit()
        for b, col, n, st, ct in summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, 1, left, **kw):
            acc.add(b, 1, col, n, st, ct)
    return acc


def _build(
    conn: Connection,
    vrow: VersionRow,
    ref_id: int,
    new: Callable[[], A],
    start: datetime,
    size: int,
    kw: dict[str, Any],
) -> A:
    """Merge and store the ``size``-hour bucket at ``start`` from the level below, building the
    missing ones of that level first. The caller holds the week's ``lock_merges``."""
    acc = new()
    child = BUILT_FROM[size]
    starts = [start + timedelta(hours=child * i) for i in range(size // child)]
    have = summary_repo.load_buckets(conn, vrow.version_id, ref_id, child, starts, **kw)
    for b, col, n, st, ct in have:
        acc.add(b, child, col, n, st, ct)
    if child > 1:
        for b in sorted(set(starts) - {row[0] for row in have}):
            sub = _build(conn, vrow, ref_id, new, b, child, kw)
            for col, (st, ct) in sub.parts().items():
                acc.add(b, child, col, sub.n_rows, st, ct)
    summary_repo.replace_bucket(
        conn, vrow.model_id, vrow.version_id, ref_id, start, size, acc.n_rows, acc.parts(), **kw
    )
    return acc
