"""A wide model through the real rollup: its stored hourly summaries equal the summaries of the same
values taken column by column, for all rows and for a tracked segment, with missing values,
absent optional features and ±inf among them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from monitor.db import summary_repo
from monitor.domain.schema import ModelSpec, category_key
from monitor.domain.tabular import TableFormat
from monitor.metrics import log_summary
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, summary_to_parts, unpack_counts
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import hour_floor

WIDTH = 400
MODEL = "wide"
SPEC = {
    "name": MODEL,
    "task": "binary_classification",
    "classes": ["no", "yes"],
    "features": [{"name": f"n{i}", "type": "numerical", "required": False} for i in range(WIDTH)]
    + [{"name": "plan", "type": "categorical"}, {"name": "region", "type": "categorical"}],
    "segments": ["region"],
}


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    cols: dict[str, Any] = {f"n{i}": np.round(rng.normal(i % 7, 1 + i % 3, n), 3) for i in range(WIDTH)}
    cols["plan"] = rng.choice(["basic", "pro", "max"], n)
    cols["region"] = rng.choice(["EU", "US"], n, p=[0.7, 0.3])
    cols["prediction"] = rng.choice(["no", "yes"], n)
    return pd.DataFrame(cols)


def _stored(ctx: ServiceContext, segment: str) -> dict[str, tuple[dict[str, Any], bytes | None]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, stats, counts FROM bucket_summaries "
                "WHERE bucket_hours = 1 AND segment = :s AND column_name <> '_quality'"
            ),
            {"s": segment},
        ).all()
    return {c: (st, None if ct is None else bytes(ct)) for c, st, ct in rows}


def test_a_wide_models_summaries_equal_its_columns_summarised_one_by_one(ctx: ServiceContext) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(SPEC))
    rng = np.random.default_rng(3)
    buf = io.StringIO()
    _frame(rng, 500).to_csv(buf, index=False)
    upload_reference(ctx, MODEL, buf.getvalue().encode(), TableFormat.csv)
    hour = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    current = _frame(rng, 700)
    records = []
    for i, row in enumerate(current.to_dict("records")):
        features = {k: v for k, v in row.items() if k != "prediction"}
        if i % 5 == 0:
            features[f"n{i % WIDTH}"] = None  # missing
        if i % 7 == 0:
            del features[f"n{(i + 1) % WIDTH}"]  # absent (optional)
        if i % 11 == 0:
            features[f"n{(i + 2) % WIDTH}"] = float("inf") if i % 2 else float("-inf")
        records.append(
            {
                "prediction_id": f"w{i}",
                "timestamp": (hour + timedelta(seconds=5 * i)).isoformat(),
                "features": features,
                "prediction": row["prediction"],
            }
        )
    assert not ingestion.ingest_predictions(ctx, records, model=MODEL).errors
    # summaries read the log a chunk at a time and count a few chunks at once: make both small
    # enough to need several
    saved = summary_repo.VALUES_PER_CHUNK, log_summary.PENDING_VALUES
    summary_repo.VALUES_PER_CHUNK = 100_000  # 248 rows of 403 columns a chunk
    log_summary.PENDING_VALUES = 150_000  # counted every second chunk
    try:
        rollup(ctx, MODEL, None, hour, hour + timedelta(hours=1))
    finally:
        summary_repo.VALUES_PER_CHUNK, log_summary.PENDING_VALUES = saved

    with ctx.engine.connect() as conn:
        reference = {
            (seg, col): s
            for seg, col, s in conn.execute(text("SELECT segment, column_name, summary FROM reference_summaries"))
        }
    for segment, rows in (("", records), ("region=EU", [r for r in records if r["features"]["region"] == "EU"])):
        stored = _stored(ctx, segment)
        # the features, the prediction, the latency, the scores and the reconstruction errors
        assert len(stored) == WIDTH + 3 + 1 + 2
        for i in range(WIDTH):
            col = f"features.n{i}"
            edges = np.asarray(reference[(segment, col)]["edges"], dtype=float)
            values = np.array([r["features"].get(f"n{i}") for r in rows], dtype=float)
            expected, _ = summary_to_parts(NumericSummary.of(values, edges))
            stats, counts = stored[col]
            assert counts is not None
            assert np.array_equal(unpack_counts(counts), NumericSummary.of(values, edges).counts), col
            for key in ("n", "missing", "non_finite", "min", "max"):
                assert stats[key] == expected[key], (col, key)
            for key in ("total", "total_sq", "low_sum", "high_sum"):
                assert np.isclose(stats[key], expected[key], rtol=1e-12, atol=1e-9), (col, key)
        for name in ("plan", "region"):
            expected_c, _ = summary_to_parts(CategoricalSummary.of([category_key(r["features"][name]) for r in rows]))
            assert stored[f"features.{name}"][0] == expected_c
    assert sum(1 for r in records for v in r["features"].values() if isinstance(v, float) and np.isinf(v)) > 0
