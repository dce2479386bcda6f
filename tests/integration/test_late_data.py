"""Data that lands after the scheduler has computed the windows of its hour still reaches them:
late predictions (a batch scorer replaying yesterday, a shipper catching up) and labels for the
hour that has just closed. The ingestion clock is pinned, so the hour never turns mid-test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.db import log_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill, run_model
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _point(ctx: ServiceContext, metric: str, start: datetime, end: datetime) -> tuple[float, int, datetime]:
    """(value, sample size, computed at) of the window's point for all rows."""
    with ctx.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT value, sample_size, computed_at FROM metric_points WHERE metric = :metric "
                "AND labels = '{}'::jsonb AND window_start = :s AND window_end = :e"
            ),
            {"metric": metric, "s": start, "e": end},
        ).one()


def _marks(ctx: ServiceContext) -> list[tuple[datetime, bool]]:
    model_id = registry.resolve_version(ctx, MODEL, None).model_id
    with ctx.uow() as uow:
        return [(s.hour, s.log_changed) for s in log_repo.stale_hours(uow.conn, model_id, 1000)]


def test_late_predictions_reach_every_window_that_holds_their_hour(ctx: ServiceContext, now: datetime) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h", "3h"]))
    base = hour_floor(now)
    old = base - 5 * HOUR  # beyond the hours every run summarises again
    traffic(ctx, old, 200, "on-time-", seed=1)
    traffic(ctx, old + HOUR, 50, "next-", seed=2)
    backfill(ctx, MODEL, old - 2 * HOUR, base)
    run_model(ctx, MODEL, now)  # takes the marks the traffic above wrote; the watermarks are set
    assert _marks(ctx) == []
    one_hour = (old, old + HOUR)
    assert _point(ctx, "dataset_drift", *one_hour)[1] == 200
    _, _, next_at = _point(ctx, "dataset_drift", old + HOUR, old + 2 * HOUR)

    traffic(ctx, old, 100, "replayed-", seed=3)  # a shipper catching up on that hour
    traffic(ctx, base, 10, "live-", seed=4, minutes=20)  # traffic as it happens marks nothing
    assert _marks(ctx) == [(old, True)]
    report = run_model(ctx, MODEL, now)
    # folded into its hour from the deltas ingestion wrote; the mark has its windows done again
    assert (report.stale_hours, report.resummarised_hours) == (1, 0)
    assert report.recomputed_windows == 4  # the 1h window of that hour and the three 3h windows holding it
    assert _point(ctx, "dataset_drift", *one_hour)[1] == 300
    for k in range(1, 4):
        end = old + k * HOUR
        expected = 300 + (50 if k >= 2 else 0)
        assert _point(ctx, "dataset_drift", end - 3 * HOUR, end)[1] == expected, end
        assert _point(ctx, "throughput.per_minute", end - 3 * HOUR, end)[1] == expected, end
    assert _point(ctx, "dataset_drift", old + HOUR, old + 2 * HOUR)[2] == next_at  # not recomputed
    assert _marks(ctx) == []
    assert run_model(ctx, MODEL, now).recomputed_windows == 0


def test_data_for_the_hour_just_closed_reaches_its_final_window(ctx: ServiceContext, now: datetime) -> None:
    """The first run after a boundary computes the window ending there for the last time. A
    label or a prediction for that hour landing after it must still reach that window, although
    the hour itself is inside the late margin every run summarises again."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    closed = base - HOUR
    frame = traffic(ctx, closed, 300, "p-", seed=5)
    backfill(ctx, MODEL, closed - 2 * HOUR, base)
    run_model(ctx, MODEL, now)
    window = (closed, base)
    assert _point(ctx, "quality.label_coverage", *window)[0] == 0
    assert _point(ctx, "dataset_drift", *window)[1] == 300

    label(ctx, frame.iloc[:120])
    traffic(ctx, closed + timedelta(minutes=59), 30, "just-late-", seed=6, minutes=1)
    assert _marks(ctx) == [(closed, True)]
    report = run_model(ctx, MODEL, now)
    assert report.resummarised_hours == 0  # folded from the deltas; the mark has its window done again
    assert report.recomputed_windows == 1
    assert _point(ctx, "quality.label_coverage", *window)[0] == pytest.approx(120 / 330)
    assert _point(ctx, "dataset_drift", *window)[1] == 330


def test_a_run_in_the_hour_of_the_one_before_summarises_that_hour_only(ctx: ServiceContext, now: datetime) -> None:
    """After the first run, a run folds what arrived since the last (summarised at ingestion), not
    the hour that is filling from its first row; late rows fold into their own hour, whose quality
    and windows are done again through its mark."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    closed = base - HOUR
    frames = [traffic(ctx, closed, 200, "closed-", seed=21), traffic(ctx, base, 30, "live-", seed=22, minutes=20)]
    backfill(ctx, MODEL, closed - HOUR, base)
    assert run_model(ctx, MODEL, now).rows_summarised == 230  # the first run: the closed hours too
    frames.append(traffic(ctx, base, 10, "more-", seed=23, minutes=20))
    second = run_model(ctx, MODEL, now)
    assert (second.rows_summarised, second.resummarised_hours) == (10, 0)  # what arrived, not the hour
    live = (now + MINUTE - HOUR, now + MINUTE)  # the hour up to the next minute
    in_live = sum(int(((f.ts >= live[0]) & (f.ts < live[1])).sum()) for f in frames)
    assert in_live == 96 + 40  # a part of the closed hour and all of this one
    assert _point(ctx, "dataset_drift", *live)[1] == in_live

    traffic(ctx, closed + timedelta(minutes=50), 5, "late-", seed=24, minutes=5)
    assert _marks(ctx) == [(closed, True)]
    third = run_model(ctx, MODEL, now)
    assert (third.rows_summarised, third.resummarised_hours, third.recomputed_windows) == (5, 0, 1)
    assert _point(ctx, "dataset_drift", closed, base)[1] == 205


def test_only_labels_changed_so_only_quality_is_recomputed(ctx: ServiceContext, now: datetime) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    old = hour_floor(now) - 4 * HOUR
    frame = traffic(ctx, old, 200, "q-", seed=7)
    backfill(ctx, MODEL, old - HOUR, hour_floor(now))
    run_model(ctx, MODEL, now)
    _, _, drift_at = _point(ctx, "dataset_drift", old, old + HOUR)
    label(ctx, frame.iloc[:50])
    assert _marks(ctx) == [(old, False)]
    assert run_model(ctx, MODEL, now).recomputed_windows == 1
    assert _point(ctx, "quality.label_coverage", old, old + HOUR)[0] == pytest.approx(50 / 200)
    assert _point(ctx, "dataset_drift", old, old + HOUR)[2] == drift_at  # the log did not change


def test_a_long_replay_is_redone_newest_first_over_several_runs(
    ctx: ServiceContext, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.services.jobs import monitoring_run

    monkeypatch.setattr(monitoring_run, "MAX_STALE_HOURS_PER_RUN", 2)
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    backfill(ctx, MODEL, base - 10 * HOUR, base)
    run_model(ctx, MODEL, now)
    replayed = [base - k * HOUR for k in (8, 7, 6)]
    for i, hour in enumerate(replayed):
        traffic(ctx, hour, 20, f"replay{i}-", seed=10 + i)
    assert _marks(ctx) == [(h, True) for h in replayed]
    first = run_model(ctx, MODEL, now)
    assert (first.stale_hours, first.recomputed_windows) == (2, 2)
    assert _marks(ctx) == [(replayed[0], True)]  # the oldest waits for the next run
    assert _point(ctx, "dataset_drift", replayed[1], replayed[1] + HOUR)[1] == 20
    second = run_model(ctx, MODEL, now)
    assert (second.stale_hours, second.recomputed_windows) == (1, 1) and _marks(ctx) == []
    assert _point(ctx, "dataset_drift", replayed[0], replayed[0] + HOUR)[1] == 20


def test_late_data_before_the_first_run_is_summarised_but_makes_no_lone_window(
    ctx: ServiceContext, now: datetime
) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    run_model(ctx, MODEL, now)  # the first run: windows from here on
    traffic(ctx, base - 5 * HOUR, 20, "history-", seed=20)
    report = run_model(ctx, MODEL, now)
    assert (report.rows_summarised, report.recomputed_windows) == (20, 0)  # folded into its hour
    with ctx.engine.connect() as conn:
        ends = conn.execute(text("SELECT DISTINCT window_end FROM metric_points")).scalars().all()
    assert [e.astimezone(UTC) for e in ends] == [now + MINUTE]  # `monitor backfill` computes history
