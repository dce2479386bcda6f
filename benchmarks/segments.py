"""What segments cost: the hourly rollup and the window job with tracked segment values, against
the same rows of a model without segments, in one run.

    python benchmarks/segments.py [--rows 200000] [--values 10] [--label-share 0.5]

Two models with the same 15 numerical and 5 categorical features, the same reference and the
same predictions in one hour; one declares two segment columns (``region``, ``channel``) with
``--values`` values each, all tracked (the default ``segment_top_values`` is 10), so every
metric is computed for all rows and for each of the 2 x values segments. ``--label-share`` of
the predictions get a label, so the quality summaries have work to do. It prints, for each
model, the rollup of the hour (column and quality summaries) and the 1-hour
window job (every metric, written as points), and the ratio segmented / flat. Each segment
value sees 1/values of the rows, so the segments add as much summarising work as all rows
again per segment column; the ratio to aim for is near 1 + 2 columns = 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.window_job import compute_window

sys.path.insert(0, str(Path(__file__).parent))
from drift import CATEGORICAL, NUMERICAL, frame, timed  # the drift benchmark's features and their distributions

SEGMENTS = ["region", "channel"]


def spec(name: str, segmented: bool) -> dict:
    features = [{"name": n, "type": "numerical"} for n in NUMERICAL]
    features += [{"name": c, "type": "categorical"} for c in CATEGORICAL + SEGMENTS]
    out = {"name": name, "task": "binary_classification", "classes": ["0", "1"], "features": features}
    if segmented:
        out["segments"] = SEGMENTS
    return out


def table(n: int, values: int, seed: int, shifted: bool) -> list[dict]:
    df = frame(n, seed, shifted)
    rng = np.random.default_rng(seed + 1)
    for col in SEGMENTS:  # skewed, as real segments are: the first value is the most frequent
        p = 1 / np.arange(1, values + 1)
        df[col] = rng.choice([f"{col}{j}" for j in range(values)], n, p=p / p.sum())
    df["prediction"] = np.where(df["n2"] > 10, "1", "0")
    df["label"] = np.where(rng.random(n) < 0.8, df["prediction"], np.where(df["prediction"] == "1", "0", "1"))
    return df.to_dict("records")


def ingest(ctx: ServiceContext, model: str, rows: list[dict], hour: datetime, label_share: float) -> None:
    step = timedelta(hours=1) / len(rows)
    for start in range(0, len(rows), 20_000):
        part = rows[start : start + 20_000]
        records = [
            {
                "prediction_id": f"p{start + i}",
                "timestamp": (hour + (start + i) * step).isoformat(),
                "features": {k: v for k, v in r.items() if k not in ("prediction", "label")},
                "prediction": r["prediction"],
            }
            for i, r in enumerate(part)
        ]
        body = orjson.dumps({"model": model, "records": records})
        assert ingestion.ingest_prediction_body(ctx, body, "application/json").accepted == len(records)
        labels = [
            {"prediction_id": f"p{start + i}", "label": r["label"]}
            for i, r in enumerate(part)
            if (start + i) % 100 < label_share * 100
        ]
        if labels:
            assert not ingestion.ingest_labels(ctx, labels, model=model).errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000, help="predictions in the hour")
    p.add_argument("--reference", type=int, default=50_000)
    p.add_argument("--values", type=int, default=10, help="values per segment column, all tracked")
    p.add_argument("--label-share", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is printed")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        reference = table(args.reference, args.values, seed=1, shifted=False)
        rows = table(args.rows, args.values, seed=2, shifted=True)
        csv_header = list(reference[0])
        csv = ",".join(csv_header) + "\n" + "".join(",".join(str(r[c]) for c in csv_header) + "\n" for r in reference)
        where = "MONITOR_DATABASE_URL" if settings.database_url else "embedded pgserver"
        print(
            f"Postgres: {where}; {args.rows:,} predictions in one hour ({args.label_share:.0%} labelled), "
            f"{len(NUMERICAL)} numerical + {len(CATEGORICAL) + len(SEGMENTS)} categorical features; "
            f"segmented model: {len(SEGMENTS)} segment columns x {args.values} values"
        )
        results: dict[str, tuple[float, float, int]] = {}
        for name, segmented in (("flat", False), ("segmented", True)):
            registry.register_model(ctx, ModelSpec.model_validate(spec(name, segmented)))
            registry.set_monitoring(ctx, name, MonitoringConfig(windows=["1h"], segment_top_values=args.values))
            upload_reference(ctx, name, csv.encode(), TableFormat.csv)
            ingest(ctx, name, rows, hour, args.label_share)
            end = hour + timedelta(hours=1)
            t_roll = min(timed(lambda n=name, e=end: rollup(ctx, n, None, hour, e))[1] for _ in range(args.repeat))
            points = compute_window(ctx, name, None, hour, end)
            t_window = min(
                timed(lambda n=name, e=end: compute_window(ctx, n, None, hour, e))[1] for _ in range(args.repeat)
            )
            results[name] = (t_roll, t_window, len(points))
            print(
                f"{name:>10}: rollup of the hour {t_roll:6.2f} s ({args.rows / t_roll:8,.0f} rows/s); "
                f"1h window job {t_window * 1000:7.1f} ms, {len(points):,} metric points"
            )
        (roll_f, win_f, _), (roll_s, win_s, _) = results["flat"], results["segmented"]
        print(
            f"segmented / flat: rollup {roll_s / roll_f:.2f}x, window job {win_s / win_f:.2f}x "
            f"({len(SEGMENTS) * args.values} segment values; about {1 + len(SEGMENTS)}x the summarising work)"
        )


if __name__ == "__main__":
    main()
