"""Wide models: what each stage costs per value as the number of features grows, in one run.

    python benchmarks/wide.py [--widths 20,100,500,1000,2000] [--values 5000000] [--evidently 1000]

For each width: a model with that many numerical features and 5 categorical ones, a reference of
2,000 rows, and one hour of predictions holding about ``--values`` feature values (20,000 rows up
to 250 features, 5,000 at 1,000, 2,500 at 2,000), ingested through the service in batches of 500.
It prints, per width: ingestion rows/s and values/s; reading the reference's summaries (once per
process: the scheduler keeps them); the rollup of the hour (rows/s, values/s); the 1h window job
(drift of every feature, data quality, writing the points); the dashboard model page's server
build; and the peak memory of the window job (tracemalloc). Then Evidently's ``DataDriftPreset``
on the same reference and hour as DataFrames, at ``--evidently`` features.

Targets: rollup values/s at 1,000 and 2,000 features within 1.5x of the 100-feature figure; a
1,000-feature model's rollup at least as fast as its ingestion; the window job under 1 s at 1,000
features.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from timing import peak_mb, timed

from monitor.config import Settings
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.summary_plan import load_reference
from monitor.services.jobs.window_job import compute_window

N_CAT = 5
REFERENCE_ROWS = 2_000
BATCH = 500


def spec(width: int) -> dict[str, Any]:
    return {
        "name": f"wide-{width}",
        "task": "binary_classification",
        "classes": ["0", "1"],
        "features": [{"name": f"n{i}", "type": "numerical"} for i in range(width)]
        + [{"name": f"c{i}", "type": "categorical"} for i in range(N_CAT)],
    }


def frame(width: int, n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    num = np.round(rng.normal(size=(n, width)) + shift * (np.arange(width) % 10 == 0), 4)
    cols: dict[str, Any] = {f"n{i}": num[:, i] for i in range(width)}
    for i in range(N_CAT):
        cols[f"c{i}"] = rng.choice([f"v{j}" for j in range(3 + i)], n)
    cols["prediction"] = rng.choice(["0", "1"], n)
    return pd.DataFrame(cols)


def ingest(ctx: ServiceContext, model: str, df: pd.DataFrame, hour: datetime) -> float:
    """Seconds to ingest ``df`` through the service, in batches of ``BATCH``."""
    features = [c for c in df.columns if c != "prediction"]
    rows = df[features].to_dict("records")
    step = 3600 / len(df)
    records = [
        {
            "prediction_id": f"p{i}",
            "timestamp": (hour + timedelta(seconds=i * step)).isoformat(),
            "features": rows[i],
            "prediction": df["prediction"].iat[i],
        }
        for i in range(len(df))
    ]
    t = time.perf_counter()
    for i in range(0, len(records), BATCH):
        result = ingestion.ingest_predictions(ctx, records[i : i + BATCH], model=model)
        assert not result.errors, result.errors[:3]
    return time.perf_counter() - t


def page_build(ctx: ServiceContext, model: str) -> float:
    """The dashboard model page's server build (the Dash route's layout: every query and
    figure), in seconds, after one build to warm the caches."""
    from dashboards.pages import model as model_page

    build = lambda: model_page.layout(ctx, model, "?range=24h&window=1h")  # noqa: E731
    build()
    return timed(build)[1]


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in reference.columns if c.startswith("n")]
    categorical = [c for c in reference.columns if c.startswith("c")]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def run() -> None:
        Report([DataDriftPreset()]).run(
            Dataset.from_pandas(current[numerical + categorical], data_definition=definition),
            Dataset.from_pandas(reference[numerical + categorical], data_definition=definition),
        )

    _, t = timed(run)
    return t, peak_mb(run)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="20,100,500,1000,2000")
    p.add_argument("--values", type=int, default=5_000_000, help="feature values in the hour, about")
    p.add_argument("--evidently", type=int, default=1000, help="width Evidently runs on (0: none)")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    print(
        "| features | rows | ingest rows/s (values/s) | reference read s | rollup s | rollup rows/s (values/s) | "
        "window job | page build | window peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    frames: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        for width in widths:
            s = spec(width)
            model = s["name"]
            registry.register_model(ctx, ModelSpec.model_validate(s))
            reference = frame(width, REFERENCE_ROWS, seed=1)
            buf = io.StringIO()
            reference.to_csv(buf, index=False)
            upload_reference(ctx, model, buf.getvalue().encode(), TableFormat.csv)
            n = max(500, min(20_000, args.values // width))
            current = frame(width, n, seed=2, shift=0.5)
            values = n * (width + N_CAT)
            t_ingest = ingest(ctx, model, current, hour)
            # the scheduler reads a reference once per process and keeps it: timed apart
            vrow = registry.resolve_version(ctx, model, None)
            _, t_ref = timed(lambda v=vrow: load_reference(ctx, v))
            _, t_roll = timed(lambda m=model: rollup(ctx, m, None, hour, hour + timedelta(hours=1)))
            window = lambda m=model: compute_window(ctx, m, None, hour, hour + timedelta(hours=1))  # noqa: E731
            window()  # the first run reads the reference into the process's cache
            _, t_window = timed(window)
            peak = peak_mb(window)
            page = f"{page_build(ctx, model) * 1000:,.0f} ms"
            print(
                f"| {width:,} | {n:,} | {n / t_ingest:,.0f} ({values / t_ingest / 1e6:.2f}M) | {t_ref:.1f} "
                f"| {t_roll:.1f} "
                f"| {n / t_roll:,.0f} ({values / t_roll / 1e6:.2f}M) | {t_window * 1000:,.0f} ms | {page} "
                f"| {peak:.1f} MB |",
                flush=True,
            )
            if width == args.evidently:
                frames[width] = (reference, current)
        ctx.close()
    for width, (reference, current) in frames.items():
        t_ev, m_ev = evidently_drift(reference, current)
        print(f"\nEvidently DataDriftPreset at {width:,} features, same reference and hour: ", end="")
        print(f"{t_ev:.1f} s, peak {m_ev:.0f} MB")


if __name__ == "__main__":
    main()
