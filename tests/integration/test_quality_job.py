"""Quality against delayed labels, concept drift and segments, computed by the jobs from a real
Postgres and checked against scikit-learn on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sqlalchemy import text

from monitor import demo_data
from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality import binary_score_matrix
from monitor.metrics.quality_summary import ClassificationSummary
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill, run_model
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.window_job import compute_window
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic


def _by_name(points: list[MetricPoint], segment: str | None = None) -> dict[tuple[str, str], MetricPoint]:
    out = {}
    for p in points:
        if p.labels.get("segment_value") != segment:
            continue
        key = p.labels.get("class") or p.labels.get("average") or ""
        out[(p.metric, key)] = p
    return out


def test_classification_quality_matches_sklearn_on_the_labelled_rows(ctx: ServiceContext) -> None:
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    frames = [traffic(ctx, start + timedelta(hours=h), 900, f"h{h}-", seed=h) for h in range(2)]
    labelled = [f.iloc[: int(len(f) * 0.7)] for f in frames]  # 70 % labelled so far
    for f in labelled:
        label(ctx, f)
    rollup(ctx, MODEL, None, start, start + timedelta(hours=2))
    points = _by_name(compute_window(ctx, MODEL, None, start, start + timedelta(hours=2)))

    rows = pd.concat(labelled)
    y, yhat = rows.label.to_numpy(), rows.prediction.to_numpy()
    n_total = sum(len(f) for f in frames)
    assert points[("quality.label_coverage", "")].value == pytest.approx(len(rows) / n_total)
    assert points[("quality.label_coverage", "")].sample_size == n_total
    assert points[("quality.accuracy", "")].value == pytest.approx(skm.accuracy_score(y, yhat))
    assert points[("quality.accuracy", "")].sample_size == len(rows)
    assert points[("quality.f1", "")].value == pytest.approx(skm.f1_score(y, yhat, pos_label="default"))
    assert points[("quality.recall", "repaid")].value == pytest.approx(skm.recall_score(y, yhat, pos_label="repaid"))
    assert points[("quality.precision", "macro")].value == pytest.approx(
        skm.precision_score(y, yhat, average="macro", zero_division=0)
    )
    is_scored = np.concatenate([np.arange(len(f)) % 10 != 0 for f in labelled])
    s = rows[is_scored]
    p_default = s.score.to_numpy(dtype=float)
    assert points[("quality.roc_auc", "")].value == pytest.approx(
        skm.roc_auc_score(s.label == "default", p_default), abs=1e-3
    )
    probs = binary_score_matrix(p_default, demo_data.CLASSES, "default")[:, [1, 0]]  # sorted: default, repaid
    assert points[("quality.log_loss", "")].value == pytest.approx(
        skm.log_loss(s.label, probs, labels=["default", "repaid"]), rel=1e-6
    )
    assert any("scores missing" in n for n in points[("quality.roc_auc", "")].details["notes"])
    # the reference's own quality is the baseline; the same world, so no drop beyond tolerance
    drop = points[("concept_drift.quality_drop", "")]
    assert drop.drifted is False and drop.reference_size == 2000 and drop.threshold == 0.01
    assert drop.details["p_value"] is not None and drop.details["significant"] is False


def test_late_labels_recompute_the_past_windows_they_belong_to(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h", "3h"]))
    now = datetime.now(UTC)
    old = hour_floor(now) - timedelta(hours=5)  # older than the scheduler's late-data margin
    frame = traffic(ctx, old, 600, "old-", seed=3)
    label(ctx, frame.iloc[:200])
    label(ctx, traffic(ctx, old + timedelta(hours=1), 100, "next-", seed=4))
    backfill(ctx, MODEL, old - timedelta(hours=2), hour_floor(now))
    run_model(ctx, MODEL, now)  # sets the label mark

    def coverage(end: datetime, length: int) -> tuple[float, datetime]:
        with ctx.engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT value, computed_at FROM metric_points WHERE metric = 'quality.label_coverage' "
                    "AND labels = '{}'::jsonb AND window_end = :e AND window_start = :s"
                ),
                {"e": end, "s": end - timedelta(hours=length)},
            ).one()

    before_1h, at_1h = coverage(old + timedelta(hours=1), 1)
    before_3h, _ = coverage(old + timedelta(hours=3), 3)
    _, next_at = coverage(old + timedelta(hours=2), 1)  # the hour after: none of its labels changed
    assert before_1h == pytest.approx(200 / 600) and before_3h == pytest.approx(300 / 700)
    label(ctx, frame.iloc[200:500])  # labels land for predictions five hours old
    report = run_model(ctx, MODEL, now)
    # the mark the labels' transaction wrote; their quality was summarised then (a delta, folded)
    assert (report.stale_hours, report.resummarised_hours) == (1, 0)
    # the 1h window holding that hour, and the three 3h windows that hold it
    assert report.recomputed_windows == 4
    after_1h, at_1h_again = coverage(old + timedelta(hours=1), 1)
    assert after_1h == pytest.approx(500 / 600) and at_1h_again > at_1h
    assert coverage(old + timedelta(hours=3), 3)[0] == pytest.approx(600 / 700) != before_3h
    assert coverage(old + timedelta(hours=2), 1)[1] == next_at  # not recomputed
    # the queue was cleared: a run with no new labels recomputes nothing
    assert run_model(ctx, MODEL, now).recomputed_windows == 0


def _stream_points(ctx: ServiceContext, hours: int = 1) -> dict[datetime, Any]:
    """The error-stream points of all rows (value, drifted, details) by window end, of the
    ``hours``-long windows."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT window_end, value, drifted, sample_size, details FROM metric_points "
                "WHERE metric = 'concept_drift.error_stream' AND NOT labels ? 'segment' "
                "AND window_end - window_start = make_interval(hours => :h) ORDER BY window_end"
            ),
            {"h": hours},
        ).all()
    return {r.window_end: r for r in rows}


def test_concept_drift_found_on_the_error_stream_and_by_the_quality_drop(ctx: ServiceContext) -> None:
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=6)
    calm = traffic(ctx, start, 3000, "calm-", seed=11, minutes=120)
    changed = traffic(ctx, start + timedelta(hours=2), 3000, "chg-", seed=12, concept=1.0, minutes=120)
    label(ctx, calm)
    label(ctx, changed)
    backfill(ctx, MODEL, start, start + timedelta(hours=4))
    stream = _stream_points(ctx)
    assert [p.drifted for p in stream.values()] == [False, False, True, False]
    found = stream[start + timedelta(hours=3)]
    # ADWIN may cut more than once as the new rate fills its window; each cut says what it saw
    assert found.value == len(found.details["detections"]) >= 1
    first = found.details["detections"][0]
    assert first["error_rate_before"] < 0.2 < first["error_rate_after"]
    detected = datetime.fromisoformat(found.details["detected_at"])
    assert start + timedelta(hours=2) < detected < start + timedelta(hours=2, minutes=30)
    # the evidence is the window that decided: its labelled rows and their error rate, with what
    # the detector holds after the change beside them
    hour = _by_name(compute_window(ctx, MODEL, None, start + timedelta(hours=2), start + timedelta(hours=3)))
    accuracy = hour[("quality.accuracy", "")]
    assert found.sample_size == accuracy.sample_size > 1000
    assert found.details["error_rate"] == pytest.approx(1 - accuracy.value)
    assert found.details["detector_rows"] <= found.sample_size and "detector_error_rate" in found.details
    # the 1d window holds the same change: found once, not again because the window is longer
    day = _stream_points(ctx, 24)[start + timedelta(hours=4)]
    assert day.value == found.value and day.details["detected_at"] == found.details["detected_at"]
    points = _by_name(compute_window(ctx, MODEL, None, start, start + timedelta(hours=4)))
    drop = points[("concept_drift.quality_drop", "")]
    assert drop.drifted is True and drop.labels["metric"] == "accuracy"
    assert drop.details["current"] == pytest.approx(points[("quality.accuracy", "")].value)
    assert points[("concept_drift.error_stream", "")].labels["method"] == "adwin"


def test_the_detector_keeps_its_state_across_runs_and_restarts(ctx: ServiceContext, settings: Settings) -> None:
    """The change lies at the boundary between two runs, made by two processes: the second finds
    it only because it goes on from the first one's state (from the changed rows alone, the
    error rate is steady)."""
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=6)
    label(ctx, traffic(ctx, start, 3000, "calm-", seed=11, minutes=120))
    backfill(ctx, MODEL, start, start + timedelta(hours=2))
    label(ctx, traffic(ctx, start + timedelta(hours=2), 3000, "chg-", seed=12, concept=1.0, minutes=120))
    restarted = open_context(settings)
    try:
        backfill(restarted, MODEL, start + timedelta(hours=2), start + timedelta(hours=4))
    finally:
        restarted.close()
    stream = _stream_points(ctx)
    assert [p.drifted for p in stream.values()] == [False, False, True, False]
    detected = datetime.fromisoformat(stream[start + timedelta(hours=3)].details["detected_at"])
    assert start + timedelta(hours=2) < detected < start + timedelta(hours=2, minutes=30)


def test_late_labels_replay_the_error_stream_from_their_hour(ctx: ServiceContext) -> None:
    register_demo(ctx)
    now = datetime.now(UTC)
    start = hour_floor(now) - timedelta(hours=8)
    label(ctx, traffic(ctx, start, 3000, "calm-", seed=11, minutes=120))
    changed = traffic(ctx, start + timedelta(hours=2), 3000, "chg-", seed=12, concept=1.0, minutes=120)
    backfill(ctx, MODEL, start, hour_floor(now))
    run_model(ctx, MODEL, now)
    assert not any(p.drifted for p in _stream_points(ctx).values())  # no labels for the change yet
    label(ctx, changed)  # they land hours later
    run_model(ctx, MODEL, now)
    stream = _stream_points(ctx)
    assert stream[start + timedelta(hours=3)].drifted is True
    assert [e for e, p in stream.items() if p.drifted] == [start + timedelta(hours=3)]


def test_every_metric_per_segment_on_the_segments_reference_slice(ctx: ServiceContext) -> None:
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    frame = traffic(ctx, start, 1200, "seg-", seed=5)
    label(ctx, frame)
    rollup(ctx, MODEL, None, start, start + timedelta(hours=1))
    points = compute_window(ctx, MODEL, None, start, start + timedelta(hours=1))
    regions = {p.labels["segment_value"] for p in points if p.labels.get("segment") == "region"}
    assert regions == set(demo_data.REGIONS)
    for region in demo_data.REGIONS:
        mine = frame[frame.region == region]
        seg = _by_name(points, region)
        assert seg[("dataset_drift", "")].sample_size == len(mine)
        assert seg[("quality.accuracy", "")].value == pytest.approx(skm.accuracy_score(mine.label, mine.prediction))
        assert seg[("throughput.per_minute", "")].sample_size == len(mine)
        # compared with the region's own slice of the reference
        assert seg[("dataset_drift", "")].labels == {"segment": "region", "segment_value": region}
    ages = [p for p in points if p.metric == "feature_drift" and p.labels["feature"] == "age" and "segment" in p.labels]
    assert {p.reference_size for p in ages} != {2000}  # slices, not the whole reference


REGRESSION_SPEC = {
    "name": "house-price",
    "task": "regression",
    "features": [{"name": "sqm", "type": "numerical"}, {"name": "city", "type": "categorical"}],
}


def test_regression_quality_and_residual_shift(ctx: ServiceContext) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(REGRESSION_SPEC))
    rng = np.random.default_rng(4)
    sqm = rng.uniform(30, 200, 3000)
    ref = pd.DataFrame({"sqm": sqm, "city": rng.choice(["a", "b"], 3000)})
    ref["label"] = sqm * 3000 + rng.normal(0, 20000, 3000)
    ref["prediction"] = ref.label + rng.normal(0, 15000, 3000)
    upload_reference(ctx, "house-price", ref.to_csv(index=False).encode(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    n = 1500
    y = rng.uniform(30, 200, n) * 3000
    yhat = y + rng.normal(25000, 15000, n)  # the model now over-estimates: residuals shifted
    records = [
        {
            "prediction_id": f"r{i}",
            "timestamp": (start + timedelta(seconds=2 * i)).isoformat(),
            "features": {"sqm": float(y[i] / 3000), "city": "a"},
            "prediction": float(yhat[i]),
        }
        for i in range(n)
    ]
    ingestion.ingest_predictions(ctx, records, model="house-price")
    labels = [{"prediction_id": f"r{i}", "label": float(y[i])} for i in range(n - 100)]
    ingestion.ingest_labels(ctx, labels, model="house-price")
    rollup(ctx, "house-price", None, start, start + timedelta(hours=1))
    points = _by_name(compute_window(ctx, "house-price", None, start, start + timedelta(hours=1)))
    yt, yp = y[: n - 100], yhat[: n - 100]
    assert points[("quality.mae", "")].value == pytest.approx(skm.mean_absolute_error(yt, yp))
    assert points[("quality.rmse", "")].value == pytest.approx(np.sqrt(skm.mean_squared_error(yt, yp)))
    assert points[("quality.r2", "")].value == pytest.approx(skm.r2_score(yt, yp))
    assert points[("quality.mape", "")].value == pytest.approx(skm.mean_absolute_percentage_error(yt, yp) * 100)
    assert points[("quality.label_coverage", "")].value == pytest.approx((n - 100) / n)
    shift = points[("concept_drift.residual_shift", "")]
    assert shift.drifted is True and shift.reference_size == 3000 and shift.sample_size == n - 100
    # the model's drift rule (calibrated): significant and material, each said
    assert shift.details["profile"] == "calibrated" and shift.details["significant"] and shift.details["material"]
    drop = points[("concept_drift.quality_drop", "")]
    assert drop.labels["metric"] == "mae" and drop.drifted is True and drop.value > 0.1


def test_a_label_marked_while_the_scheduler_works_stays_for_its_next_run(ctx: ServiceContext) -> None:
    """Marks are appended, never updated (concurrent label batches queue on no shared row); the
    scheduler deletes exactly the marks it took."""
    from monitor.db import log_repo

    register_demo(ctx)
    old = hour_floor(datetime.now(UTC)) - timedelta(hours=5)
    frame = traffic(ctx, old, 100, "m-", seed=6)
    model_id = registry.resolve_version(ctx, MODEL, None).model_id
    with ctx.uow() as uow:  # predictions five hours late: the whole hour is marked
        late = log_repo.stale_hours(uow.conn, model_id, 10)
        assert [(s.hour, len(s.mark_ids), s.log_changed) for s in late] == [(old, 1, True)]
        log_repo.clear_stale_hours(uow.conn, model_id, late)
        uow.commit()
    label(ctx, frame.iloc[:10])
    label(ctx, frame.iloc[10:20])  # a second batch for the same hour: a second mark, no update
    with ctx.uow() as uow:
        taken = log_repo.stale_hours(uow.conn, model_id, 10)
    assert [(s.hour, len(s.mark_ids), s.log_changed) for s in taken] == [(old, 2, False)]
    label(ctx, frame.iloc[20:30])  # lands while the taken hours are being recomputed
    with ctx.uow() as uow:
        log_repo.clear_stale_hours(uow.conn, model_id, taken)
        uow.commit()
    with ctx.uow() as uow:
        assert [(s.hour, len(s.mark_ids)) for s in log_repo.stale_hours(uow.conn, model_id, 10)] == [(old, 1)]


@pytest.mark.parametrize("scale", [1.0, 1e-12])
def test_the_rollup_bins_scores_as_the_summary_does_and_auc_holds_for_rare_positives(
    ctx: ServiceContext, scale: float
) -> None:
    """0.5 % defaults, scores crowded under 0.001 (or, with the reference's, a trillion times
    smaller): the SQL rollup's score histogram, on the bins the reference placed, equals the
    Python summary's bin for bin, and ROC AUC is within 0.001 of scikit-learn's."""
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    reference = demo_data.reference_frame(2000)
    reference["score"] *= scale
    upload_reference(ctx, MODEL, reference.to_csv(index=False).encode(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    rng = np.random.default_rng(4)
    n = 6000
    y = rng.random(n) < 0.005
    y[:3] = True
    p = scale / (1 + np.exp(-np.where(y, rng.normal(-6.2, 1.2, n), rng.normal(-8.0, 1.2, n))))
    records = [
        {
            "prediction_id": f"r{i}",
            "timestamp": (start + timedelta(seconds=i / 2)).isoformat(),
            "features": demo_data.applicants(1, np.random.default_rng(i)).records()[0],
            "prediction": "repaid",
            "scores": float(p[i]),
        }
        for i in range(n)
    ]
    assert not ingestion.ingest_predictions(ctx, records, model=MODEL).errors
    labels = [{"prediction_id": f"r{i}", "label": "default" if y[i] else "repaid"} for i in range(n)]
    assert not ingestion.ingest_labels(ctx, labels, model=MODEL).errors
    rollup(ctx, MODEL, None, start, start + timedelta(hours=1))
    with ctx.engine.connect() as conn:
        stats, counts = conn.execute(
            text(
                "SELECT stats, counts FROM bucket_summaries WHERE column_name = '_quality' AND segment = '' "
                "AND bucket_hours = 1"
            )
        ).one()
    stored = ClassificationSummary(demo_data.CLASSES)
    stored.add_parts(stats, bytes(counts))
    positive = demo_data.CLASSES.index("default")
    assert stored.layout is not None
    assert stored.layout.centres[positive] == pytest.approx(np.log(scale) - 1.9, abs=0.5)  # the reference's scores
    truth = np.where(y, "default", "repaid")
    direct = ClassificationSummary.of(
        demo_data.CLASSES,
        truth,
        np.full(n, "repaid"),
        np.zeros(n),
        binary_score_matrix(p, demo_data.CLASSES, "default"),
        layout=stored.layout,
    )
    assert np.array_equal(stored.hist, direct.hist)
    points = _by_name(compute_window(ctx, MODEL, None, start, start + timedelta(hours=1)))
    assert points[("quality.roc_auc", "")].value == pytest.approx(skm.roc_auc_score(y, p), abs=1e-3)


def test_too_few_labelled_rows_give_the_quality_drop_but_no_decision(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(min_sample_size=100))
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    frame = traffic(ctx, start, 400, "few-", seed=6, concept=1.0)  # a changed concept: much worse
    label(ctx, frame.iloc[:60])
    rollup(ctx, MODEL, None, start, start + timedelta(hours=1))
    drop = _by_name(compute_window(ctx, MODEL, None, start, start + timedelta(hours=1)))[
        ("concept_drift.quality_drop", "")
    ]
    assert drop.sample_size == 60 and drop.value > 0 and drop.drifted is None
    assert drop.details["min_sample_size"] == 100
    label(ctx, frame.iloc[60:])  # with 400 labelled rows the same drop is decided
    rollup(ctx, MODEL, None, start, start + timedelta(hours=1))
    drop = _by_name(compute_window(ctx, MODEL, None, start, start + timedelta(hours=1)))[
        ("concept_drift.quality_drop", "")
    ]
    assert drop.sample_size == 400 and drop.drifted is True
