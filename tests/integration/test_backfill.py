"""Backfill over sparse history: windows every ``step`` (by default, in the CLI, each window's own
length), and merged days and weeks that had no rows stored once, not merged again on every read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from monitor.db import summary_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill, window_ends
from monitor.services.jobs.window_job import compute_window
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, register_demo, traffic

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def test_window_ends_step_back_from_the_end() -> None:
    end = datetime(2026, 11, 30, tzinfo=UTC)
    assert window_ends(end - 3 * HOUR, end, HOUR) == [end - 2 * HOUR, end - HOUR, end]
    assert window_ends(end - 10 * DAY, end, 3 * DAY) == [end - 9 * DAY, end - 6 * DAY, end - 3 * DAY, end]
    assert window_ends(end, end, HOUR) == []
    assert window_ends(end - 2 * HOUR, end, timedelta(minutes=5)) == [end - HOUR, end]  # at least an hour


def _markers(ctx: ServiceContext) -> list[tuple[datetime, int, datetime]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT bucket_start, bucket_hours, computed_at FROM bucket_summaries WHERE column_name = :c"),
            {"c": summary_repo.EMPTY},
        ).all()
    return sorted((r[0], r[1], r[2]) for r in rows)


def test_windows_tile_a_quiet_stretch_and_its_empty_days_are_merged_once(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h", "7d"]))
    end = hour_floor(datetime.now(UTC)).replace(hour=0) - DAY  # a midnight, whole days before now
    start = end - 21 * DAY
    traffic(ctx, start + HOUR, 200, "early-", seed=1)  # one busy hour, then three quiet weeks
    report = backfill(ctx, MODEL, start, end, step=None)
    assert report.windows == {"1h": 21 * 24, "7d": 3}
    with ctx.engine.connect() as conn:
        ends = (
            conn.execute(
                text(
                    "SELECT window_end FROM metric_points WHERE metric = 'throughput.per_minute' "
                    "AND labels = '{}'::jsonb AND window_end - window_start = interval '7 days' ORDER BY window_end"
                )
            )
            .scalars()
            .all()
        )
    assert ends == [end - 14 * DAY, end - 7 * DAY, end], [e.isoformat() for e in ends]
    # the quiet days were merged and stored, with nothing in them: one marker row each
    first = _markers(ctx)
    assert {b for b, hours_, _ in first if hours_ == 24} >= {start + d * DAY for d in range(2, 21)}
    # a window over them computed again (a rule's baseline, the dashboard): read as stored, not
    # merged again
    cfg = MonitoringConfig(windows=["1h", "7d"])
    compute_window(ctx, MODEL, None, end - 14 * DAY, end, cfg)
    after = _markers(ctx)
    assert set(first) <= set(after)  # what was merged stays as it was (a whole week is new)
    compute_window(ctx, MODEL, None, end - 14 * DAY, end, cfg)
    assert _markers(ctx) == after
