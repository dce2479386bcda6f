"""The demo model with a reference, and scored traffic with its truth, for the integration tests
of the jobs (quality, late data, maintenance)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from monitor import demo_data
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion

MODEL = demo_data.MODEL_NAME


def register_demo(ctx: ServiceContext, cfg: MonitoringConfig | None = None, model: str = MODEL) -> None:
    """The demo model (under ``model``: another name for a second one) with its reference."""
    registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "name": model}))
    if cfg is not None:
        registry.set_monitoring(ctx, model, cfg)
    buf = io.BytesIO()
    demo_data.reference_frame(2000).to_csv(buf, index=False)
    upload_reference(ctx, model, buf.getvalue(), TableFormat.csv)


def traffic(
    ctx: ServiceContext,
    start: datetime,
    n: int,
    prefix: str,
    seed: int,
    concept: float = 0.0,
    minutes: int = 60,
    drift: float = 0.0,
    model: str = MODEL,
) -> pd.DataFrame:
    """``n`` scored predictions spread over ``minutes`` from ``start``, of applicants ``drift``
    towards the shifted population; returns them with their truth."""
    rng = np.random.default_rng(seed)
    a = demo_data.applicants(n, rng, drift)
    p = demo_data.model_scores(a)
    truth = np.where(demo_data.true_default(a, rng, concept), "default", "repaid")
    frame = pd.DataFrame(
        {
            "prediction_id": [f"{prefix}{i}" for i in range(n)],
            "ts": [start + timedelta(seconds=minutes * 60 * i / n) for i in range(n)],
            "prediction": np.where(p >= 0.5, "default", "repaid"),
            "score": p.round(6),
            "label": truth,
            "region": [r["region"] for r in a.records()],
        }
    )
    records = [
        {
            "prediction_id": row.prediction_id,
            "timestamp": row.ts.isoformat(),
            "features": rec,
            "prediction": row.prediction,
            # every tenth prediction unscored: AUC and log loss rest on the scored ones only
            "scores": None if i % 10 == 0 else float(row.score),
        }
        for i, (row, rec) in enumerate(zip(frame.itertuples(), a.records(), strict=True))
    ]
    assert not ingestion.ingest_predictions(ctx, records, model=model).errors
    return frame


def label(ctx: ServiceContext, frame: pd.DataFrame, model: str = MODEL) -> None:
    records = [{"prediction_id": pid, "label": y} for pid, y in zip(frame.prediction_id, frame.label, strict=True)]
    assert not ingestion.ingest_labels(ctx, records, model=model).errors
