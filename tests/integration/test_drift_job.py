"""Drift from hourly summaries rolled up inside Postgres equals the tests on the raw values."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.db import summary_repo
from monitor.domain.monitoring import FeatureTest, MonitoringConfig
from monitor.domain.schema import ModelSpec, schema_from_json
from monitor.domain.tabular import TableFormat
from monitor.metrics.drift_decision import CALIBRATED_TESTS
from monitor.metrics.points import MetricPoint
from monitor.metrics.stattests import FeatureKind, test_drift
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.summary_plan import column_specs as _specs
from monitor.services.jobs.summary_plan import load_reference, parse_segment
from monitor.services.jobs.window_job import compute_window
from monitor.services.jobs.windows import hour_floor

# The summaries are checked against Evidently's tests on the raw rows: its profile, unless a test
# passes a configuration of its own.
EVIDENTLY = MonitoringConfig(stattest_profile="evidently")


# Column summaries a bucket of the demo model holds: 8 features, the prediction, one class score,
# the latency, every prediction's scores and the reconstruction errors.
COLUMNS = 13


def overall(ctx: ServiceContext, *args: object) -> list[MetricPoint]:
    """The window's points over all predictions (the demo model also has segment points)."""
    if len(args) == 4:
        args = (*args, EVIDENTLY)
    return [p for p in compute_window(ctx, *args) if "segment" not in p.labels]  # type: ignore[arg-type]


NUMERICAL = {f["name"] for f in demo_data.SPEC["features"] if f["type"] == "numerical"}


def setup_model(ctx: ServiceContext, n_ref: int) -> tuple[datetime, dict[int, list[dict]]]:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(n_ref).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    rng = np.random.default_rng(5)
    by_hour: dict[int, list[dict]] = {}
    for h, drift in enumerate((0.0, 0.0, 1.0)):
        a = demo_data.applicants(1500, rng, drift)
        scores = demo_data.model_scores(a)
        records = []
        for i, (rec, s) in enumerate(zip(a.records(), scores, strict=True)):
            ts = start + timedelta(hours=h, seconds=i * 2)
            records.append(
                {
                    "prediction_id": f"h{h}-{i}",
                    "timestamp": ts.isoformat(),
                    "features": rec,
                    "prediction": "default" if s >= 0.5 else "repaid",
                    "scores": round(float(s), 5),
                    "latency_ms": round(float(rng.gamma(2.0, 8.0)), 3),
                    "segments": {"channel": "web"},
                }
            )
        by_hour[h] = records
        assert ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME).accepted == 1500
    return start, by_hour


def raw_reference(ctx: ServiceContext) -> dict[str, list]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT features, prediction, scores FROM reference_rows")).all()
    return {
        "features": [r.features for r in rows],
        "prediction": [r.prediction for r in rows],
        "scores": [(r.scores or {}).get("default") for r in rows],
    }


@pytest.mark.parametrize("n_ref", [800, 5000])
def test_window_drift_matches_the_raw_tests(ctx: ServiceContext, n_ref: int) -> None:
    start, by_hour = setup_model(ctx, n_ref)
    assert rollup(ctx, demo_data.MODEL_NAME, None, start, start + timedelta(hours=3)) == 4500
    ref = raw_reference(ctx)
    for hours_, window in (([2], (2, 3)), ([0, 1, 2], (0, 3))):
        w_start, w_end = start + timedelta(hours=window[0]), start + timedelta(hours=window[1])
        points = overall(ctx, demo_data.MODEL_NAME, None, w_start, w_end)
        current = [r for h in hours_ for r in by_hour[h]]
        by_feature = {p.labels["feature"]: p for p in points if p.metric == "feature_drift"}
        assert set(by_feature) == {f["name"] for f in demo_data.SPEC["features"]}
        for name, point in by_feature.items():
            kind = FeatureKind.numerical if name in NUMERICAL else FeatureKind.categorical

            def values(rows: list[dict], name: str = name, kind: FeatureKind = kind) -> np.ndarray:
                vals = [r[name] for r in rows]
                if kind is FeatureKind.categorical:
                    return np.array(
                        [("true" if v else "false") if isinstance(v, bool) else v for v in vals], dtype=object
                    )
                return np.array(vals, dtype=float)

            raw = test_drift(values(ref["features"]), values([r["features"] for r in current]), kind)
            assert point.labels["method"] == raw.test, name
            assert point.sample_size == len(current) and point.reference_size == n_ref
            if raw.test in ("ks", "jensenshannon", "chisquare", "z"):
                assert point.value == pytest.approx(raw.score, rel=1e-9, abs=1e-12), name
            else:
                assert point.value == pytest.approx(raw.score, rel=0.05, abs=0.003), name
            assert point.drifted == raw.drifted or abs(raw.score - raw.threshold) < 0.003, name
        dataset = next(p for p in points if p.metric == "dataset_drift")
        assert dataset.sample_size == len(current)
        assert dataset.value == pytest.approx(sum(p.drifted for p in by_feature.values()) / len(by_feature))
        pred = {p.labels["column"]: p for p in points if p.metric == "prediction_drift"}
        assert set(pred) == {"prediction", "scores.default"}
        raw_pred = test_drift(
            np.array(ref["prediction"], dtype=object),
            np.array([r["prediction"] for r in current], dtype=object),
            FeatureKind.categorical,
        )
        assert pred["prediction"].value == pytest.approx(raw_pred.score, rel=1e-9, abs=1e-12)
    # the drifted hour drifts, the calm ones do not
    calm = overall(ctx, demo_data.MODEL_NAME, None, start, start + timedelta(hours=1))
    drifted = overall(ctx, demo_data.MODEL_NAME, None, start + timedelta(hours=2), start + timedelta(hours=3))
    assert not next(p for p in calm if p.metric == "dataset_drift").drifted
    assert next(p for p in drifted if p.metric == "dataset_drift").drifted


def test_reruns_overwrite_and_settings_apply(ctx: ServiceContext) -> None:
    start, _ = setup_model(ctx, 800)
    end = start + timedelta(hours=3)
    rollup(ctx, demo_data.MODEL_NAME, None, start, end)
    rollup(ctx, demo_data.MODEL_NAME, None, start, end)  # idempotent
    with ctx.engine.connect() as conn:
        per_bucket = conn.execute(
            text(
                "SELECT count(DISTINCT column_name), count(*) FROM bucket_summaries "
                "WHERE segment = '' AND column_name <> '_quality' AND bucket_hours = 1"
            )
        ).one()
        quality = conn.execute(
            text(
                "SELECT count(*) FROM bucket_summaries WHERE segment = '' AND column_name = '_quality' "
                "AND bucket_hours = 1"
            )
        ).scalar_one()
        minutes = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT bucket_start) FROM bucket_summaries "
                "WHERE segment = '' AND column_name = 'latency_ms' AND bucket_hours = 0"
            )
        ).one()
        logged = conn.execute(
            text("SELECT count(DISTINCT date_trunc('minute', ts)) FROM predictions WHERE ts >= :s AND ts < :e"),
            {"s": start, "e": end},
        ).scalar_one()
    assert per_bucket == (COLUMNS, 3 * COLUMNS)  # 3 hours
    assert quality == 3
    assert minutes == (logged, logged)  # recent hours: each minute with rows too, once
    cfg = MonitoringConfig(
        stattest_profile="evidently", fdr=True, feature_tests={"income": FeatureTest(test="psi", threshold=0.2)}
    )
    overall(ctx, demo_data.MODEL_NAME, None, start, end)
    points = overall(ctx, demo_data.MODEL_NAME, None, start, end, cfg)
    with ctx.engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM metric_points WHERE metric = 'feature_drift' AND labels->>'segment' IS NULL")
        ).scalar_one()
        methods = (
            conn.execute(
                text(
                    "SELECT labels->>'method' FROM metric_points "
                    "WHERE labels->>'feature' = 'income' AND metric = 'feature_drift'"
                    " AND labels->>'segment' IS NULL ORDER BY computed_at"
                )
            )
            .scalars()
            .all()
        )
    assert methods == ["ks", "psi"]  # a changed test is another series
    assert n == 9
    income = next(p for p in points if p.labels.get("feature") == "income")
    assert income.threshold == 0.2
    ks_points = [p for p in points if p.metric == "feature_drift" and p.labels["method"] == "ks"]
    assert ks_points and all("fdr" in p.details for p in ks_points)


def test_no_reference_is_a_clear_error(ctx: ServiceContext) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    now = hour_floor(datetime.now(UTC))
    with pytest.raises(Exception, match="has no reference dataset"):
        rollup(ctx, demo_data.MODEL_NAME, None, now - timedelta(hours=1), now)


def _merged_rows(ctx: ServiceContext, hours_: int, *, everything: bool = False) -> int:
    """Stored merged summaries of this many hours: of all rows' columns, or with ``everything``
    of the segments' and the quality summaries too."""
    only = "" if everything else " AND segment = '' AND column_name <> '_quality'"
    with ctx.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM bucket_summaries WHERE bucket_hours = :h" + only), {"h": hours_}
        ).scalar_one()


def test_whole_days_are_read_as_day_summaries(ctx: ServiceContext) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(800).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    day = hour_floor(datetime.now(UTC)).replace(hour=0) - timedelta(days=2)
    rng = np.random.default_rng(8)
    a = demo_data.applicants(24 * 40, rng, 0.5)
    records = [
        {
            "prediction_id": f"d{i}",
            "timestamp": (day + timedelta(minutes=90 * i / 60)).isoformat(),
            "features": rec,
            "prediction": "repaid",
        }
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    window = (day - timedelta(hours=3), day + timedelta(days=1, hours=2))
    rollup(ctx, demo_data.MODEL_NAME, None, *window)
    points = overall(ctx, demo_data.MODEL_NAME, None, *window)

    assert _merged_rows(ctx, 24) == COLUMNS  # the one whole day, merged once, for each of its columns
    ref = raw_reference(ctx)
    age = next(p for p in points if p.labels.get("feature") == "age")
    raw = test_drift(
        np.array([f["age"] for f in ref["features"]], dtype=float),
        np.array([r["features"]["age"] for r in records], dtype=float),
        FeatureKind.numerical,
    )
    assert age.value == pytest.approx(raw.score, rel=1e-9) and age.sample_size == len(records)
    # summarising one of its hours again drops the day's merge; the next window merges it anew
    rollup(ctx, demo_data.MODEL_NAME, None, day + timedelta(hours=5), day + timedelta(hours=6))
    assert _merged_rows(ctx, 24, everything=True) == 0  # segments' and quality's merges too
    again = overall(ctx, demo_data.MODEL_NAME, None, *window)
    assert next(p for p in again if p.labels.get("feature") == "age").value == pytest.approx(age.value, rel=1e-12)
    assert _merged_rows(ctx, 24) == COLUMNS


def _a_week_of_data(ctx: ServiceContext) -> tuple[datetime, tuple[datetime, datetime], list[dict]]:
    """Last week (Monday to Monday) and a few hours either side, 400 predictions, summarised."""
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(800).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    monday = summary_repo.week_of_hour(hour_floor(datetime.now(UTC))) - timedelta(days=7)
    window = (monday - timedelta(hours=5), monday + timedelta(days=7, hours=1))
    a = demo_data.applicants(400, np.random.default_rng(9), 0.5)
    step = (window[1] - window[0]) / 400
    records = [
        {"prediction_id": f"w{i}", "timestamp": (window[0] + i * step).isoformat(), "features": rec}
        | {"prediction": "repaid"}
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    rollup(ctx, demo_data.MODEL_NAME, None, *window)
    return monday, window, records


def test_whole_weeks_are_read_as_week_summaries(ctx: ServiceContext) -> None:
    """A window holding a whole week reads it as one merged summary per column, built from its
    days on first use; summarising an hour of it again drops that week and day, merged anew."""
    monday, window, records = _a_week_of_data(ctx)

    age = next(p for p in overall(ctx, demo_data.MODEL_NAME, None, *window) if p.labels.get("feature") == "age")
    assert _merged_rows(ctx, 168) == COLUMNS and _merged_rows(ctx, 24) == 7 * COLUMNS  # the week, and its days
    ref = raw_reference(ctx)
    raw = test_drift(
        np.array([f["age"] for f in ref["features"]], dtype=float),
        np.array([r["features"]["age"] for r in records], dtype=float),
        FeatureKind.numerical,
    )
    assert age.value == pytest.approx(raw.score, rel=1e-9) and age.sample_size == len(records)
    rollup(ctx, demo_data.MODEL_NAME, None, monday + timedelta(days=3, hours=5), monday + timedelta(days=3, hours=6))
    assert _merged_rows(ctx, 168) == 0 and _merged_rows(ctx, 24) == 6 * COLUMNS  # that week and that day dropped
    again = next(p for p in overall(ctx, demo_data.MODEL_NAME, None, *window) if p.labels.get("feature") == "age")
    assert again.value == pytest.approx(age.value, rel=1e-12) and _merged_rows(ctx, 168) == COLUMNS
    assert _merged_rows(ctx, 24) == 7 * COLUMNS


def test_a_merge_never_keeps_an_hour_summarised_again_while_it_was_built(ctx: ServiceContext) -> None:
    """An hour summarised again in a transaction still open holds its week: a window that must
    merge that week waits, then merges what was committed, instead of storing a merge built
    from the old hour after that transaction dropped it."""
    monday, window, records = _a_week_of_data(ctx)
    vrow = registry.resolve_version(ctx, demo_data.MODEL_NAME, None)
    hour = monday + timedelta(days=2, hours=7)
    late = [
        prediction_record | {"prediction_id": f"late{i}", "timestamp": (hour + timedelta(minutes=i)).isoformat()}
        for i, prediction_record in enumerate(records[:30])
    ]
    ingestion.ingest_predictions(ctx, late, model=demo_data.MODEL_NAME)
    ref = load_reference(ctx, vrow)
    groups = summary_repo.Groups({seg: parse_segment(seg, schema_from_json(vrow.schema)) for seg in ref.columns})
    specs = {seg: _specs(cols) for seg, cols in ref.columns.items()}
    # what rollup does for the hour, held open before its commit
    with ctx.uow() as uow:
        at = (uow.conn, vrow.model_id, vrow.version_id, hour, hour + timedelta(hours=1))
        counts = summary_repo.count_rows(*at, groups)
        parts = summary_repo.summarise_columns(*at, specs, groups, counts)
        series = summary_repo.Series.of(vrow, ref.reference_id)
        summary_repo.replace_bucket(uow.conn, series, hour, 1, counts[""], parts[""])
        summary_repo.drop_merged(uow.conn, series, hour)
        result: list[list[MetricPoint]] = []
        window_job = threading.Thread(target=lambda: result.append(overall(ctx, demo_data.MODEL_NAME, None, *window)))
        window_job.start()
        window_job.join(1.5)
        assert window_job.is_alive()  # waiting for the hour's transaction
        uow.commit()
    window_job.join(30)
    assert not window_job.is_alive()
    age = next(p for p in result[0] if p.labels.get("feature") == "age")
    assert age.sample_size == len(records) + len(late)
    with ctx.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT n_rows FROM bucket_summaries WHERE bucket_hours = 168 AND segment = '' "
                "AND column_name = 'features.age'"
            )
        ).scalar_one()
    in_week = [
        r for r in records + late if monday <= datetime.fromisoformat(r["timestamp"]) < monday + timedelta(days=7)
    ]
    assert stored == len(in_week)  # the merge holds the late rows


def test_latency_percentiles_and_throughput(ctx: ServiceContext) -> None:
    start, by_hour = setup_model(ctx, 800)
    end = start + timedelta(hours=3)
    rollup(ctx, demo_data.MODEL_NAME, None, start, end)
    points = {p.metric: p for p in overall(ctx, demo_data.MODEL_NAME, None, start, end)}
    latencies = np.array([r["latency_ms"] for h in by_hour.values() for r in h])
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        point = points[f"latency.{name}"]
        assert point.value == pytest.approx(np.percentile(latencies, q), rel=0.02), name
        assert point.sample_size == len(latencies)
    assert points["latency.max"].value == pytest.approx(latencies.max())
    assert points["latency.mean"].value == pytest.approx(latencies.mean())
    assert points["throughput.per_minute"].value == pytest.approx(4500 / 180)


def test_data_quality_points(ctx: ServiceContext) -> None:
    start, by_hour = setup_model(ctx, 800)
    now = datetime.now(UTC)
    odd = [
        {
            "prediction_id": "odd1",
            "timestamp": (start + timedelta(minutes=5)).isoformat(),
            "prediction": "repaid",
            "features": {**by_hour[0][0]["features"], "income": 10_000_000.0, "region": "atlantis", "age": None},
        },
    ]
    assert ingestion.ingest_predictions(ctx, odd, model=demo_data.MODEL_NAME).accepted == 1
    bad = [{"prediction_id": "bad1", "features": {"age": "old"}, "prediction": "repaid"}]
    with pytest.raises(Exception, match="invalid"):
        ingestion.ingest_predictions(ctx, bad, model=demo_data.MODEL_NAME)
    rollup(ctx, demo_data.MODEL_NAME, None, start, start + timedelta(hours=1))
    points = overall(ctx, demo_data.MODEL_NAME, None, start, start + timedelta(hours=1))
    by = {(p.metric, p.labels.get("feature") or p.labels.get("field")): p for p in points}
    assert by[("data_quality.missing_share", "age")].value == pytest.approx(1 / 1501)
    assert by[("data_quality.out_of_range_share", "income")].details["outside"] >= 1
    region = by[("data_quality.new_category_share", "region")]
    assert region.details["new_categories"] == {"atlantis": 1} and region.sample_size == 1501
    assert by[("data_quality.missing_share", "employment")].value == 0.0
    # the rejected record is counted in the hour it arrived
    arrived = hour_floor(now)
    live = overall(ctx, demo_data.MODEL_NAME, None, arrived, arrived + timedelta(hours=1))
    rejected = next(p for p in live if p.metric == "data_quality.rejected_records")
    assert rejected.value == 1
    fields = {p.labels["field"] for p in live if p.metric == "data_quality.schema_violations"}
    assert "features.age" in fields


def test_the_calibrated_profile_decides_on_significance_and_materiality(ctx: ServiceContext) -> None:
    """The default profile: hour 2 is drifted (1.5k rows), hours 0 and 1 are not; each point says
    why; a window under the minimum sample size is reported but not decided."""
    start, _ = setup_model(ctx, 800)
    rollup(ctx, demo_data.MODEL_NAME, None, start, start + timedelta(hours=3))

    def window(h: int, cfg: MonitoringConfig) -> dict[str, MetricPoint]:
        points = overall(
            ctx, demo_data.MODEL_NAME, None, start + timedelta(hours=h), start + timedelta(hours=h + 1), cfg
        )
        return {p.labels.get("feature", p.metric): p for p in points if p.metric in ("feature_drift", "dataset_drift")}

    calm, drifted = window(0, MonitoringConfig()), window(2, MonitoringConfig())
    assert calm["dataset_drift"].drifted is False and drifted["dataset_drift"].drifted is True
    assert drifted["dataset_drift"].details["profile"] == "calibrated"
    for name, p in drifted.items():
        if name == "dataset_drift":
            continue
        d = p.details
        assert d["profile"] == "calibrated" and d["fdr"] is True
        assert p.value == d["effect"] and p.labels["method"] == d["stattest"]
        assert p.drifted == (d["significant"] and d["material"])
        # the test is the one the reference's kind of column takes
        assert (d["p_test"], d["stattest"]) == CALIBRATED_TESTS[d["column_kind"]]
        assert (d["column_kind"] in ("continuous", "discrete", "few_valued")) == (name in NUMERICAL)
    assert any(p.drifted for p in drifted.values())

    undecided = window(2, MonitoringConfig(min_sample_size=1501))
    assert undecided["dataset_drift"].drifted is None
    assert all(p.drifted is None for name, p in undecided.items() if name != "dataset_drift")
    assert all(p.value is not None for p in undecided.values())
