"""The scheduled runs: idempotent, catching up after downtime, one leader at a time."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.scheduler import MetricScheduler
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill, run_model
from monitor.services.jobs.windows import hour_floor, minute_floor


def seed(ctx: ServiceContext, hours_back: int = 5) -> datetime:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(600).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    registry.set_monitoring(ctx, demo_data.MODEL_NAME, MonitoringConfig(windows=["1h", "3h"], schedule_seconds=10))
    now = datetime.now(UTC)
    a = demo_data.applicants(hours_back * 60, np.random.default_rng(1))
    records = [
        {
            "prediction_id": f"s{i}",
            "timestamp": (now - timedelta(minutes=i)).isoformat(),
            "features": rec,
            "prediction": "repaid",
        }
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    return now


def drift_windows(ctx: ServiceContext) -> list[tuple[str, datetime]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT window_end - window_start, window_end FROM metric_points "
                "WHERE metric = 'dataset_drift' ORDER BY 2, 1"
            )
        ).all()
    return [(str(length), end) for length, end in rows]


def count_points(ctx: ServiceContext) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM metric_points")).scalar_one()


def test_a_run_computes_the_live_windows_and_reruns_overwrite(ctx: ServiceContext) -> None:
    now = seed(ctx)
    report = run_model(ctx, demo_data.MODEL_NAME, now)
    assert report.skipped is None and report.windows == {"1h": 1, "3h": 1}
    assert report.rows_summarised >= 60  # the current hour and the late-data margin before it
    live_end = minute_floor(now) + timedelta(minutes=1)  # both windows slide by the minute
    assert {end for _, end in drift_windows(ctx)} == {live_end}
    n = count_points(ctx)
    run_model(ctx, demo_data.MODEL_NAME, now)
    assert count_points(ctx) == n  # the same windows again: overwritten, not duplicated


def test_after_downtime_missed_windows_are_caught_up(ctx: ServiceContext) -> None:
    now = seed(ctx)
    run_model(ctx, demo_data.MODEL_NAME, now - timedelta(hours=3))
    report = run_model(ctx, demo_data.MODEL_NAME, now)
    # every hour boundary since the last window computed, and the window ending at the next
    # minute; the sliding window the first run left is replaced
    assert report.windows == {"1h": 4, "3h": 4}
    ends = sorted({end for _, end in drift_windows(ctx)})
    live = minute_floor(now) + timedelta(minutes=1)
    boundaries = [hour_floor(now) + timedelta(hours=h) for h in range(-2, 1)]
    assert ends == sorted({*boundaries, live, hour_floor(live)})


def test_backfill_and_no_reference(ctx: ServiceContext) -> None:
    now = seed(ctx)
    seen: list[tuple[int, int]] = []
    report = backfill(ctx, demo_data.MODEL_NAME, now - timedelta(hours=4), now, lambda d, t: seen.append((d, t)))
    assert report.windows == {"1h": 4, "3h": 4} and seen[-1] == (8, 8)
    registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "name": "bare"}))
    assert run_model(ctx, "bare").skipped == "no reference dataset"


def register_bare(ctx: ServiceContext, n: int) -> list[str]:
    """Models with no reference: a run of one is cheap (skipped), which is all the leases need."""
    names = [f"fleet-{i}" for i in range(n)]
    for name in names:
        registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "name": name}))
    return names


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def test_two_schedulers_share_the_fleet_one_leads_and_a_clean_stop_hands_over_at_once(ctx: ServiceContext) -> None:
    names = register_bare(ctx, 7)
    clock = FakeClock()
    first, second = (MetricScheduler(ctx, tick_seconds=5, clock=clock, lease_seconds=30) for _ in range(2))
    try:
        assert sorted(first.tick()) == names  # alone: it holds and runs the whole fleet
        assert second.tick() == []  # every model is held; the first is above its share now
        assert first.is_leader() and not second.is_leader()
        clock.advance(5)
        first.tick()  # ...and gives the excess back
        clock.advance(5)
        second.tick()  # which the second takes
        assert (len(first.held), len(second.held)) == (4, 3) and not first.held & second.held
        clock.advance(10)  # due again (schedule 30 s... the default): each runs only its own
        ran_first, ran_second = first.tick(), second.tick()
        assert not set(ran_first) & set(ran_second)
        first.stop()  # gives its models and the lead back at once, not a lease later
        clock.advance(1)
        second.tick()
        assert len(second.held) == 7 and second.is_leader()
    finally:
        first.stop()
        second.stop()


def test_a_dead_schedulers_models_move_within_a_lease_and_no_window_is_lost_or_computed_twice(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first process runs the model, then dies (its session gone, its leases left to lapse).
    Within the lease the second takes the model over; its run computes every hour boundary since
    the dead process's last window exactly once."""
    import monitor.scheduler as scheduler_module

    now = seed(ctx)
    reports: list[tuple[str, object]] = []
    real_run = scheduler_module.run_model

    def recorded(*args: object, **kwargs: object) -> object:
        report = real_run(*args, **kwargs)  # type: ignore[arg-type]
        reports.append((report.model, report))
        return report

    monkeypatch.setattr(scheduler_module, "run_model", recorded)
    clock = FakeClock()
    dead, heir = (MetricScheduler(ctx, tick_seconds=5, clock=clock, lease_seconds=30) for _ in range(2))
    try:
        assert dead.tick(now - timedelta(hours=3)) == [demo_data.MODEL_NAME]
        dead._session.close()  # kill -9: its locks go with its session; its rows stay until they lapse
        clock.advance(10)
        assert heir.tick(now) == []  # the lease still runs
        clock.advance(21)  # past the dead process's lease: its heartbeat and its leases have lapsed
        assert heir.tick(now) == [demo_data.MODEL_NAME]
    finally:
        heir.stop()
    (_, before), (_, after) = reports
    assert before.windows == {"1h": 1, "3h": 1}  # type: ignore[attr-defined]
    assert after.windows == {"1h": 4, "3h": 4}  # type: ignore[attr-defined]
    ends = sorted({end for _, end in drift_windows(ctx)})
    live = minute_floor(now) + timedelta(minutes=1)
    boundaries = [hour_floor(now) + timedelta(hours=h) for h in range(-2, 1)]
    assert ends == sorted({*boundaries, live, hour_floor(live)})  # none missed, the dead one's sliding one replaced


def test_a_run_its_process_died_in_is_due_at_once_for_whoever_takes_the_model_over(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's due time moved on an hour as the run began; the process died in the run. The
    taker-over runs it as soon as it holds it, not an hour later."""
    import monitor.scheduler as scheduler_module

    names = register_bare(ctx, 1)
    registry.set_monitoring(ctx, names[0], MonitoringConfig(schedule_seconds=3600))

    class Killed(BaseException):
        pass

    def dying_run(*args: object, **kwargs: object) -> object:
        raise Killed

    real_run = scheduler_module.run_model
    monkeypatch.setattr(scheduler_module, "run_model", dying_run)
    clock = FakeClock()
    dead, heir = (MetricScheduler(ctx, tick_seconds=5, clock=clock, lease_seconds=30) for _ in range(2))
    try:
        with pytest.raises(Killed):
            dead.tick()
        dead._session.close()
        monkeypatch.setattr(scheduler_module, "run_model", real_run)
        clock.advance(31)
        assert heir.tick() == names
        clock.advance(60)
        assert heir.tick() == []  # and then on its schedule again
    finally:
        heir.stop()


def test_two_schedulers_never_run_one_model_at_once(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases shorter than a run: while one process runs a model its lease lapses and the other
    takes the model over and finds it due. The run lock keeps the second out until the first is
    done (a barrier inside the run checks that no two runs of a model ever overlap)."""
    import threading
    import time

    import monitor.scheduler as scheduler_module

    names = register_bare(ctx, 1)  # one model: whoever holds it finds it due at once
    running: set[str] = set()
    overlaps: list[str] = []
    runs: list[str] = []
    guard = threading.Lock()
    real_run = scheduler_module.run_model

    def barrier_run(c: ServiceContext, name: str, *args: object, **kwargs: object) -> object:
        with guard:
            if name in running:
                overlaps.append(name)
            running.add(name)
            runs.append(name)
        try:
            time.sleep(0.15)  # longer than a lease
            return real_run(c, name, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            with guard:
                running.discard(name)

    monkeypatch.setattr(scheduler_module, "run_model", barrier_run)
    schedulers = [MetricScheduler(ctx, tick_seconds=0.05, lease_seconds=0.05) for _ in range(2)]
    stop = time.monotonic() + 4

    def loop(s: MetricScheduler) -> None:
        while time.monotonic() < stop:
            s.tick(force=True)

    threads = [threading.Thread(target=loop, args=(s,)) for s in schedulers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in schedulers:
            s.stop()
    assert set(runs) == set(names) and len(runs) > 5
    assert overlaps == []


def test_sigterm_stops_the_scheduler_process_cleanly_and_hands_over_the_lead(
    ctx: ServiceContext, settings: object
) -> None:
    """``monitor scheduler`` as its own process: SIGTERM (docker stop) ends it through its cleanup
    (delivery attempt finished, lock released), so a standby takes the lead at once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "MONITOR_DATABASE_URL": settings.database_url, "MONITOR_LOG_FORMAT": "text"}  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboards.cli", "scheduler", "--tick", "1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        standby = MetricScheduler(ctx)
        deadline = time.monotonic() + 60
        while standby.is_leader():  # wait until the process holds the lead
            standby.stop()
            assert time.monotonic() < deadline, "the scheduler process never took the lead"
            time.sleep(0.2)
            standby = MetricScheduler(ctx)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "scheduler stopped cleanly" in err
    assert standby.is_leader()  # the lock was handed over, not left to a dying session
    standby.stop()


def test_a_model_runs_on_every_tick_its_schedule_allows(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Schedule 10 s, tick 10 s: every tick runs it, though the run itself takes time and a tick
    may come a little early (the schedule counts from the run's start)."""
    import monitor.scheduler as scheduler_module

    now = seed(ctx)
    clock = FakeClock()
    real_run = scheduler_module.run_model

    def slow_run(*args: object, **kwargs: object) -> object:
        clock.advance(2.0)  # the run takes 2 s
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler_module, "run_model", slow_run)
    s = MetricScheduler(ctx, tick_seconds=10, clock=clock)
    start = clock.at
    try:
        ran = []
        for offset in (0.0, 10.0, 19.95, 30.0):
            clock.at = start + timedelta(seconds=offset)
            ran.append(s.tick(now) == [demo_data.MODEL_NAME])
        assert ran == [True, True, True, True]
        clock.at = start + timedelta(seconds=35)
        assert s.tick(now) == []  # half a schedule later: not due
    finally:
        s.stop()


def test_monitor_scheduler_status_says_who_holds_what_and_fails_while_a_model_is_unheld(
    ctx: ServiceContext, settings: object
) -> None:
    import json
    import os
    import subprocess
    import sys

    names = register_bare(ctx, 3)
    env = {**os.environ, "MONITOR_DATABASE_URL": settings.database_url}  # type: ignore[attr-defined]

    def status(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dashboards.cli", "scheduler", "--status", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    scheduler = MetricScheduler(ctx, lease_seconds=60)
    try:
        scheduler.tick()
        shown = status("--all")
        assert shown.returncode == 0, shown.stderr
        me = scheduler.process.process_id
        assert "scheduler processes: 1 live, 0 dead" in shown.stdout
        assert f"{me}" in shown.stdout and "models: 3, 3 held, 0 not held" in shown.stdout
        for name in names:
            line = next(x for x in shown.stdout.splitlines() if x.strip().startswith(name))
            assert me in line and "in " in line and f"by {me}" in line  # its owner, next run, last run
        as_json = json.loads(status("--json").stdout)
        assert [p["models_held"] for p in as_json["processes"]] == [3]
        assert {m["model"]: m["owner"] for m in as_json["models"]} == dict.fromkeys(names, me)
    finally:
        scheduler.stop()
    gone = status()
    assert gone.returncode == 1  # nobody computes these models: a healthcheck can say so
    assert "scheduler processes: 0 live" in gone.stdout and "3 not held" in gone.stdout
