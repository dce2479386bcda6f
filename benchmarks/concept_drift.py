"""Concept drift on the error stream: this service's detectors, as the scheduler runs them, against
River's on River's own SEA and Agrawal streams with a known change point.

    pip install river            # the baseline; not a dependency of the service
    python benchmarks/concept_drift.py [--seeds 30] [--rows-per-minute 20,200]

For each stream and seed: a model (a decision tree) is trained on 3,000 rows of the first
concept; then it predicts a stream of ``--rows`` rows whose concept changes abruptly at row
``--change`` (30,000 stable rows first: false alarms on a long stable stream are what page
people); its 0/1 errors are the error stream. River's ADWIN and DDM read it a row at a time.
This service's detectors read what the hourly quality summaries keep: per minute of prediction
time, labelled rows and errors (``--rows-per-minute`` labelled rows a minute), one minute at a
time (``monitor.metrics.error_stream.run_minutes``), with their state carried across hours and
windows as the scheduler carries it.

River's detections are also shown moved to the end of their minute: the earliest the scheduler
could report a change it can only see minute by minute, so the delays compare the detectors
rather than the resolution.

It prints, per stream and detector: false alarms before the change (mean per stream, and the
share of streams with any), the share of changes found, and the median and 90th-percentile
delay (rows from the change to the detection; for a minute, its last row).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from monitor.metrics.error_stream import Adwin, StreamDDM, run_minutes

try:
    from river import drift as river_drift
    from river.datasets import synth
except ImportError as e:  # pragma: no cover - the message is the point
    raise SystemExit("the baseline needs River: pip install river") from e

TRAIN_ROWS = 3_000


def _take(stream: Iterable[tuple[dict, object]], n: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i, (x, y) in enumerate(stream):
        if i == n:
            break
        xs.append(list(x.values()))
        ys.append(int(y))
    return np.asarray(xs, dtype=float), np.asarray(ys)


STREAMS: dict[str, tuple[Callable[[int], Iterable], Callable[[int], Iterable]]] = {
    # (first concept, second concept), each seeded
    "SEA 0->3, 10% noise": (
        lambda s: synth.SEA(variant=0, noise=0.1, seed=s),
        lambda s: synth.SEA(variant=3, noise=0.1, seed=s + 10_000),
    ),
    "Agrawal f0->f2, 10% perturbation": (
        lambda s: synth.Agrawal(classification_function=0, perturbation=0.1, seed=s),
        lambda s: synth.Agrawal(classification_function=2, perturbation=0.1, seed=s + 10_000),
    ),
}


def error_stream(name: str, seed: int, rows: int, change: int) -> np.ndarray:
    first, second = STREAMS[name]
    x_train, y_train = _take(first(seed + 50_000), TRAIN_ROWS)
    model = DecisionTreeClassifier(max_depth=8, random_state=seed).fit(x_train, y_train)
    x0, y0 = _take(first(seed), change)
    x1, y1 = _take(second(seed), rows - change)
    x, y = np.vstack([x0, x1]), np.concatenate([y0, y1])
    return (model.predict(x) != y).astype(np.int64)


def river_detections(detector: object, errors: np.ndarray) -> list[int]:
    found = []
    for i, e in enumerate(errors):
        detector.update(int(e))  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            found.append(i)
    return found


def minute_detections(detector: Adwin | StreamDDM, errors: np.ndarray, per_minute: int) -> list[int]:
    """Detections as row indices: the last row of the minute in which each was found."""
    n_min = -(-len(errors) // per_minute)
    minutes = list(range(n_min))
    rows = [min(per_minute, len(errors) - m * per_minute) for m in minutes]
    errs = [int(errors[m * per_minute : (m + 1) * per_minute].sum()) for m in minutes]
    return [min((d.minute + 1) * per_minute, len(errors)) - 1 for d in run_minutes(detector, minutes, rows, errs)]


def at_minute_end(detections: list[int], per_minute: int) -> list[int]:
    """River's detections as the scheduler could report them at the earliest: at the end of the
    minute of the row where each was found."""
    return [(d // per_minute + 1) * per_minute - 1 for d in detections]


def score(detections: list[list[int]], change: int) -> dict[str, float]:
    false = [sum(1 for d in ds if d < change) for ds in detections]
    delays = [next((d - change for d in ds if d >= change), None) for ds in detections]
    found = [d for d in delays if d is not None]
    return {
        "false_per_stream": float(np.mean(false)),
        "streams_with_false": float(np.mean([f > 0 for f in false])),
        "found": len(found) / len(delays),
        "median_delay": float(np.median(found)) if found else float("nan"),
        "p90_delay": float(np.percentile(found, 90)) if found else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--change", type=int, default=30_000, help="the row where the concept changes")
    ap.add_argument("--rows-per-minute", default="20,200")
    args = ap.parse_args()
    per_minute = [int(v) for v in args.rows_per_minute.split(",")]
    change = args.change
    print(f"{args.seeds} seeds, {args.rows:,} rows per stream, abrupt change at row {change:,}\n")
    header = "| stream | detector | false alarms / stream | streams with one | found | median delay | p90 delay |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    for name in STREAMS:
        t0 = time.perf_counter()
        streams = [error_stream(name, seed, args.rows, change) for seed in range(args.seeds)]
        rates = [(e[:change].mean(), e[change:].mean()) for e in streams]
        river_adwin = [river_detections(river_drift.ADWIN(), e) for e in streams]
        river_ddm = [river_detections(river_drift.binary.DDM(), e) for e in streams]
        runs: dict[str, list[list[int]]] = {"River ADWIN, per row": river_adwin, "River DDM, per row": river_ddm}
        for pm in per_minute:
            runs[f"River ADWIN, {pm} rows/min (found at its minute's end)"] = [
                at_minute_end(d, pm) for d in river_adwin
            ]
            runs[f"River DDM, {pm} rows/min (found at its minute's end)"] = [at_minute_end(d, pm) for d in river_ddm]
            runs[f"ADWIN, {pm} rows/min"] = [minute_detections(Adwin(), e, pm) for e in streams]
            runs[f"DDM, {pm} rows/min"] = [minute_detections(StreamDDM(), e, pm) for e in streams]
        for det, ds in runs.items():
            s = score(ds, change)
            print(
                f"| {name} | {det} | {s['false_per_stream']:.2f} | {s['streams_with_false']:.0%} | {s['found']:.0%} "
                f"| {s['median_delay']:,.0f} | {s['p90_delay']:,.0f} |"
            )
        before, after = np.mean([r[0] for r in rates]), np.mean([r[1] for r in rates])
        print(f"|   | error rate {before:.3f} before, {after:.3f} after ({time.perf_counter() - t0:.1f} s) | | | | | |")


if __name__ == "__main__":
    main()
