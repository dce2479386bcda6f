"""Hours, windows, and merging a window's stored bucket summaries.

Whole UTC days inside a window are read as day summaries (merged from their hours on first use
and stored), the hours around them as hour summaries: a 30-day window reads ~30 rows a column
where it would read 720.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

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
    all_hours = hours(start, end)
    now = datetime.now(UTC)
    day = summary_repo.DAY
    days = sorted({d for d in map(summary_repo.day_of_hour, all_hours) if start <= d and d + day <= min(end, now)})
    day_set = set(days)
    loose_hours = [h for h in all_hours if summary_repo.day_of_hour(h) not in day_set]
    kw = {"segment": segment, "quality": quality}
    with ctx.uow() as uow:
        have = summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, 24, days, **kw)
        for d in sorted(day_set - {b for b, *_ in have}):
            day_acc = new()
            for b, col, n, st, ct in summary_repo.load_buckets(
                uow.conn, vrow.version_id, ref_id, 1, hours(d, d + day), **kw
            ):
                day_acc.add(b, 1, col, n, st, ct)
            parts = day_acc.parts()
            summary_repo.replace_bucket(
                uow.conn, vrow.model_id, vrow.version_id, ref_id, d, 24, day_acc.n_rows, parts, **kw
            )
            for col, (st, ct) in parts.items():
                acc.add(d, 24, col, day_acc.n_rows, st, ct)
        uow.commit()
        for b, col, n, st, ct in have:
            acc.add(b, 24, col, n, st, ct)
        for b, col, n, st, ct in summary_repo.load_buckets(uow.conn, vrow.version_id, ref_id, 1, loose_hours, **kw):
            acc.add(b, 1, col, n, st, ct)
    return acc
