"""Every prediction summarised once, at ingestion, and folded exactly: the hours' summaries made
from deltas equal the summaries made from the same rows read back from the log, with late rows,
duplicates refused, both ingestion paths, segments, and a fold that dies half-way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import pytest
from sqlalchemy import text

from monitor.db import delta_repo, ops_repo, summary_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import schema_from_json
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs import summary_deltas
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.summary_plan import load_reference, summary_plan
from monitor.services.jobs.windows import ColumnAccumulator, hour_floor, merged_window, minute_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic
from tests.integration.helpers import Api
from tests.integration.test_prometheus import scrape, value

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _summaries(ctx: ServiceContext, size: int = 1) -> dict[tuple[Any, ...], tuple[int, dict[str, Any], bytes | None]]:
    """Every stored hour's summary (columns and quality), by (hour, segment, column); with
    ``size`` 0, every minute's."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT bucket_start, segment, column_name, n_rows, stats, counts FROM bucket_summaries "
                "WHERE bucket_hours = :size"
            ),
            {"size": size},
        ).all()
    return {(b, seg, col): (n, st, None if ct is None else bytes(ct)) for b, seg, col, n, st, ct in rows}


def _assert_equal(folded: dict, from_log: dict) -> None:
    assert folded.keys() == from_log.keys()
    for key, (n, stats, counts) in from_log.items():
        n2, stats2, counts2 = folded[key]
        assert n2 == n, key
        assert counts2 == counts, key
        assert stats2.keys() == stats.keys(), key
        for k, v in stats.items():  # sums added in another order (or in SQL): equal to rounding
            if isinstance(v, float):
                assert stats2[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (key, k)
            elif k == "minutes":
                assert sorted(map(tuple, stats2[k])) == sorted(map(tuple, v)), (key, k)
            else:
                assert stats2[k] == v, (key, k)


def _fast_batch(ctx: ServiceContext, start: datetime, n: int, prefix: str) -> None:
    """A batch through the one-pass JSON decoder (the other path of ingestion)."""
    records = [
        {
            "prediction_id": f"{prefix}{i}",
            "timestamp": (start + timedelta(seconds=17 * i)).isoformat(),
            "features": {
                "age": 30 + i % 40,
                "income": 1000.5 * (i % 13),
                "debt_ratio": (i % 10) / 10,
                "credit_lines": i % 9,
                "late_payments": i % 4,
                "employment": ["employed", "self-employed", "unemployed", "a new one"][i % 4],
                "region": ["north", "south", None][i % 3],  # a missing segment value too
                "has_mortgage": i % 2 == 0,
            },
            "segments": {"channel": ["web", "partner"][i % 2]},
            "prediction": "default" if i % 3 else "repaid",
            "scores": (i % 100) / 100,
            "latency_ms": 3.5 + i % 7,
        }
        for i in range(n)
    ]
    body = orjson.dumps({"model": MODEL, "records": records})
    assert ingestion._decode_fast(ctx, body) is not None  # the fast path takes it
    result = ingestion.ingest_prediction_body(ctx, body, "application/json")
    assert not result.errors, result.errors[:3]


def test_folded_deltas_equal_the_summary_from_the_log(ctx: ServiceContext, now: datetime) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    vrow = registry.resolve_version(ctx, MODEL, None)
    base = hour_floor(now)
    live = traffic(ctx, base, 300, "live-", seed=1, minutes=25)
    late = traffic(ctx, base - 3 * HOUR, 120, "late-", seed=2)  # back-dated: folds into its own hour
    _fast_batch(ctx, base - HOUR, 90, "fast-")
    traffic(ctx, base, 300, "live-", seed=1, minutes=25)  # a retry: all duplicates, summarised never
    label(ctx, live.iloc[:140])
    label(ctx, late.iloc[60:])
    label(ctx, live.iloc[100:120])  # labels that replace others: their hour's quality from the log
    label(ctx, pd.DataFrame({"prediction_id": ["not-yet"], "label": ["repaid"]}))  # waits for its prediction
    ref = load_reference(ctx, vrow)
    folded = summary_deltas.fold(ctx, vrow, ref)
    assert folded.rows == 510 and folded.hours == {base, base - HOUR, base - 3 * HOUR}
    assert folded.labelled == 200
    with ctx.uow() as uow:
        assert ops_repo.summary_backlog(uow.conn) == []  # nothing left to fold
    by_deltas = _summaries(ctx)
    assert {k[1] for k in by_deltas} > {""}  # the tracked segments too
    assert sum(n for (b, seg, col), (n, _, _) in by_deltas.items() if seg == "" and col == "latency_ms") == 510

    # the relabelled hour's quality is made from the log, as the scheduler does through its mark
    rollup(ctx, MODEL, None, base, base + HOUR, quality_only=True)
    by_deltas, minutes_by_deltas = _summaries(ctx), _summaries(ctx, summary_repo.MINUTE_BUCKET)
    assert by_deltas[(base - 3 * HOUR, "", "_quality")][1]["confusion"]  # the labelled rows, folded
    # every minute with rows has its own summaries too (a sliding window's ends read them)
    assert {k[0] for k in minutes_by_deltas if k[1] == ""} == {
        minute_floor(t) for t in [*live.ts, *late.ts, *(base - HOUR + timedelta(seconds=17 * i) for i in range(90))]
    }
    rollup(ctx, MODEL, None, base - 3 * HOUR, base + HOUR)  # the same hours, from the log
    _assert_equal(by_deltas, _summaries(ctx))
    _assert_equal(minutes_by_deltas, _summaries(ctx, summary_repo.MINUTE_BUCKET))


def test_a_fold_that_dies_half_way_loses_and_doubles_nothing(ctx: ServiceContext, now: datetime) -> None:
    """Deltas are taken in the transaction that stores their sum: a fold that fails before its
    commit leaves them all for the next one, and a summary folded once is never folded again."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    vrow = registry.resolve_version(ctx, MODEL, None)
    base = hour_floor(now)
    traffic(ctx, base, 200, "a-", seed=3, minutes=20)
    ref = load_reference(ctx, vrow)
    with ctx.uow() as uow:  # a fold that took the deltas and died
        assert len(delta_repo.take(uow.conn, vrow.model_id, vrow.version_id, 10_000)) > 0
    assert summary_deltas.fold(ctx, vrow, ref).rows == 200
    traffic(ctx, base + timedelta(minutes=20), 50, "b-", seed=4, minutes=5)
    assert summary_deltas.fold(ctx, vrow, ref).rows == 50
    assert summary_deltas.fold(ctx, vrow, ref).rows == 0
    with ctx.uow() as uow:
        (_, _, n, _, _), *_ = summary_repo.load_buckets(
            uow.conn, summary_repo.Series.of(vrow, ref.reference_id), 1, [base]
        )
    assert n == 250


def test_deltas_of_a_replaced_reference_send_their_hour_to_the_log(ctx: ServiceContext, now: datetime) -> None:
    """A batch committed across a reference switch was summarised against the old one: its hour is
    summarised from the log against the new one, and no row is lost."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    traffic(ctx, base, 100, "a-", seed=5, minutes=20)
    run_model(ctx, MODEL, now)
    traffic(ctx, base, 40, "b-", seed=6, minutes=20)  # deltas against the first reference
    register_demo_reference_again(ctx)
    vrow = registry.resolve_version(ctx, MODEL, None)
    ref = load_reference(ctx, vrow)
    folded = summary_deltas.fold(ctx, vrow, ref)
    assert folded.rows == 0 and folded.foreign_hours == {base}
    run_model(ctx, MODEL, now)
    with ctx.uow() as uow:
        rows = summary_repo.load_buckets(uow.conn, summary_repo.Series.of(vrow, ref.reference_id), 1, [base])
    assert {n for _, _, n, _, _ in rows} == {140}


def register_demo_reference_again(ctx: ServiceContext) -> None:
    import io

    from monitor import demo_data
    from monitor.domain.tabular import TableFormat
    from monitor.services.catalog.reference import upload_reference

    buf = io.BytesIO()
    demo_data.reference_frame(1500).to_csv(buf, index=False)
    upload_reference(ctx, MODEL, buf.getvalue(), TableFormat.csv)


def test_an_hour_summarised_from_the_log_discards_the_deltas_of_its_rows(ctx: ServiceContext, now: datetime) -> None:
    """The first run of a reference summarises its hours from the log: the deltas of those rows
    are dropped in the same snapshot, so a later fold cannot count them twice."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    vrow = registry.resolve_version(ctx, MODEL, None)
    base = hour_floor(now)
    traffic(ctx, base, 150, "a-", seed=7, minutes=20)
    rollup(ctx, MODEL, None, base, base + HOUR)
    from_log = _summaries(ctx)
    assert summary_deltas.fold(ctx, vrow, load_reference(ctx, vrow)).rows == 0
    _assert_equal(_summaries(ctx), from_log)


def test_the_schedulers_backlog_is_on_metrics(api: Api) -> None:
    """What ingestion summarised and no run has folded yet, and how long it has waited."""
    register_demo(api.ctx, MonitoringConfig(windows=["1h"]))
    traffic(api.ctx, hour_floor(datetime.now(UTC)), 80, "a-", seed=8, minutes=1)
    waiting = scrape(api)
    assert value(waiting, "monitor_scheduler_backlog_rows", model=MODEL) == 80
    assert value(waiting, "monitor_scheduler_backlog_age_seconds", model=MODEL) >= 0
    run_model(api.ctx, MODEL)
    done = scrape(api)
    assert value(done, "monitor_scheduler_backlog_rows", model=MODEL) == 0
    assert value(done, "monitor_scheduler_backlog_age_seconds", model=MODEL) == 0


def test_a_new_models_first_rows_reach_its_window_at_the_next_run(ctx: ServiceContext, now: datetime) -> None:
    """A model's first run may come before its first rows; the run after them (the default
    schedule is 30 s) computes its live window, the hour up to the next minute, with every row,
    from what ingestion summarised."""
    assert MonitoringConfig().schedule_seconds == 30
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    run_model(ctx, MODEL, now)
    traffic(ctx, base + timedelta(minutes=25), 300, "first-", seed=9, minutes=4)
    report = run_model(ctx, MODEL, now)
    assert report.rows_summarised == 300
    with ctx.engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT sample_size FROM metric_points WHERE metric = 'dataset_drift' AND labels = '{}'::jsonb "
                "AND window_start = :s AND window_end = :e"
            ),
            {"s": now + MINUTE - HOUR, "e": now + MINUTE},
        ).scalar_one()
    assert n == 300


def _window_equals_its_rows(ctx: ServiceContext, start: datetime, end: datetime) -> int:
    """The merged summaries of [start, end) equal the summaries of its rows read at once;
    returns its rows."""
    vrow = registry.resolve_version(ctx, MODEL, None)
    ref = load_reference(ctx, vrow)
    plan = summary_plan(schema_from_json(vrow.schema), ref)
    series = summary_repo.Series.of(vrow, ref.reference_id)
    acc = merged_window(ctx, series, start, end, lambda: ColumnAccumulator(ref.columns[""]))
    with ctx.engine.connect() as conn:
        window = (conn, vrow.model_id, vrow.version_id, start, end)
        counts = summary_repo.count_rows(*window, plan.groups)
        parts = summary_repo.summarise_columns(*window, plan.columns, plan.groups, counts, plan.derived)[""]
    assert acc.n_rows == counts[""]
    merged = {("", "", col): (acc.n_rows, st, ct) for col, (st, ct) in acc.parts().items()}
    _assert_equal(merged, {("", "", col): (counts[""], st, ct) for col, (st, ct) in parts.items()})
    return acc.n_rows


def test_a_window_ending_at_any_minute_covers_exactly_its_rows(
    ctx: ServiceContext, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole hours from hour summaries, the part-hours at either end from minute summaries: the
    window equals summarising its rows at once, whether the minutes were folded from deltas or
    summarised from the log, late rows included. A window ending in the hour still filling reads
    that hour's part as the hour's summary when no row of the hour lies past its end, and as
    minutes when some does (rows stamped ahead of the clock)."""
    from monitor.services.jobs import windows as windows_module

    whole: list[datetime] = []
    real = windows_module._filling_hour_whole

    def spy(*args: Any) -> Any:
        left, edges = real(*args)
        whole.extend(h for h in left if h not in args[5])
        return left, edges

    monkeypatch.setattr(windows_module, "_filling_hour_whole", spy)
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    vrow = registry.resolve_version(ctx, MODEL, None)
    base = hour_floor(now)
    frames = [
        traffic(ctx, base - 2 * HOUR, 500, "a-", seed=3, minutes=150),
        traffic(ctx, base - 80 * MINUTE, 40, "late-", seed=4, minutes=20),  # back-dated into closed hours
    ]
    summary_deltas.fold(ctx, vrow, load_reference(ctx, vrow))
    windows = [
        (base - HOUR + 13 * MINUTE, base + 13 * MINUTE),  # a sliding hour: all minutes
        (base - 2 * HOUR + 47 * MINUTE, base + 13 * MINUTE),  # part, a whole hour, part
        (base - 2 * HOUR, base),  # hour-aligned: no minutes
        (base - 70 * MINUTE, base - 65 * MINUTE),  # five minutes inside one hour
        (base - 29 * MINUTE, base + 31 * MINUTE),  # past the last row: this hour as its one summary
    ]
    expected = [sum(int(((f.ts >= s) & (f.ts < e)).sum()) for f in frames) for s, e in windows]
    assert all(expected)
    assert [_window_equals_its_rows(ctx, s, e) for s, e in windows] == expected
    assert set(whole) == {base}  # only the last window took the hour whole (rows lie past base + 13 min)
    rollup(ctx, MODEL, None, base - 2 * HOUR, base + HOUR)  # the same hours summarised from the log
    assert [_window_equals_its_rows(ctx, s, e) for s, e in windows] == expected


def test_an_hour_window_just_after_the_hour_holds_the_hour_before(ctx: ServiceContext, now: datetime) -> None:
    """At 19 seconds past the hour the "1h" window is the hour up to the next minute, not the 19
    seconds since the hour turned; the next minute's window replaces it, boundaries stay."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    frame = traffic(ctx, base - HOUR, 240, "h-", seed=5)
    run_model(ctx, MODEL, base + timedelta(seconds=19))
    first = (base - 59 * MINUTE, base + MINUTE)
    assert _drift_sample(ctx, *first) == int((frame.ts >= first[0]).sum()) == 236
    run_model(ctx, MODEL, base + 2 * MINUTE + timedelta(seconds=19))
    assert _drift_sample(ctx, *first) is None  # replaced
    assert _drift_sample(ctx, base - 57 * MINUTE, base + 3 * MINUTE) == 228
    run_model(ctx, MODEL, base + HOUR + timedelta(seconds=5))
    with ctx.engine.connect() as conn:
        ends = conn.execute(text("SELECT DISTINCT window_end FROM metric_points ORDER BY 1")).scalars().all()
    # the hour boundary stays as history; only the newest sliding window is kept
    assert [e.astimezone(UTC) for e in ends] == [base + HOUR, base + HOUR + MINUTE]


def test_the_sliding_window_before_the_hour_turns_is_replaced_by_the_boundarys(
    ctx: ServiceContext, now: datetime
) -> None:
    """Runs in the last two minutes of an hour and the first of the next: the window ending at
    the hour boundary stays as history and the newest sliding one beside it, no other."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(now)
    traffic(ctx, base - HOUR, 240, "t-", seed=6)
    for at in (base - 2 * MINUTE + timedelta(seconds=30), base - MINUTE + timedelta(seconds=30)):
        run_model(ctx, MODEL, at)  # the first sliding window ends at base - 1 min, the next at base
    run_model(ctx, MODEL, base + timedelta(seconds=30))
    with ctx.engine.connect() as conn:
        ends = conn.execute(text("SELECT DISTINCT window_end FROM metric_points ORDER BY 1")).scalars().all()
    assert [e.astimezone(UTC) for e in ends] == [base, base + MINUTE]


def test_late_rows_folded_into_a_merged_day_drop_its_merge(ctx: ServiceContext, now: datetime) -> None:
    """A day that has ended is merged once a window reads it whole; predictions for it that land
    later are folded into its hours, and its merge is dropped with them, so the next window over
    it counts them (a fold into the day still filling has no merge to drop)."""
    from monitor.services.jobs.window_job import compute_window

    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    vrow = registry.resolve_version(ctx, MODEL, None)
    day = hour_floor(now).replace(hour=0) - timedelta(days=3)
    traffic(ctx, day + 5 * HOUR, 200, "d-", seed=7, minutes=600)
    summary_deltas.fold(ctx, vrow, load_reference(ctx, vrow))
    window = (day - timedelta(days=1), day + timedelta(days=1))  # holds day whole: read as its merge

    def sample() -> int | None:
        points = compute_window(ctx, MODEL, None, *window, MonitoringConfig(windows=["1h"]))
        return next(p.sample_size for p in points if p.metric == "dataset_drift" and not p.labels)

    assert sample() == 200
    traffic(ctx, day + 20 * HOUR, 30, "late-", seed=8, minutes=30)
    summary_deltas.fold(ctx, vrow, load_reference(ctx, vrow))
    assert sample() == 230


def _drift_sample(ctx: ServiceContext, start: datetime, end: datetime) -> int | None:
    with ctx.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT sample_size FROM metric_points WHERE metric = 'dataset_drift' AND labels = '{}'::jsonb "
                "AND window_start = :s AND window_end = :e"
            ),
            {"s": start, "e": end},
        ).scalar()
