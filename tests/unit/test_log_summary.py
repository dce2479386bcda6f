"""Column summaries from decoded chunks of the log (monitor.metrics.log_summary) against the same
values summarised one column at a time."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.log_summary import Chunk, Column, GroupSummaries
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, reference_edges, summary_to_parts

EDGES = reference_edges(np.arange(50.0))[0]


def _chunk(features: list[dict]) -> Chunk:
    n = len(features)
    return Chunk(features, [{"yes": 0.25}] * n, ["yes"] * n, [3.0] * n, [{"region": "EU"}] * n)


@pytest.mark.parametrize("keys", [["a"], ["a", "b"]])
def test_rows_missing_a_key_none_and_infinity_read_as_the_rollup_reads_them(keys: list[str]) -> None:
    rows = [
        {"a": 1.0, "b": 2.0, "c": "x"},
        {"b": 3.0, "c": "y"},  # a absent
        {"a": None, "b": "Infinity", "c": None},
        {"a": "-Infinity", "b": 4.0, "c": "x"},
    ]
    cols = [Column(k, EDGES) for k in (f"features.{k}" for k in keys)] + [Column("features.c", None)]
    cols += [Column("scores.yes", EDGES), Column("latency_ms", EDGES)]
    g = GroupSummaries(cols)
    g.add(_chunk(rows), None, None)
    parts = g.parts()
    expected_a = NumericSummary.of(np.array([1.0, np.nan, np.nan, -np.inf]), EDGES)
    assert parts["features.a"] == summary_to_parts(expected_a)
    assert parts["features.c"] == summary_to_parts(CategoricalSummary.of(["x", "y", None, "x"]))
    assert parts["scores.yes"][0]["n"] == 4 and parts["latency_ms"][0]["total"] == 12.0
    if "b" in keys:
        expected_b = NumericSummary.of(np.array([2.0, 3.0, np.inf, 4.0]), EDGES)
        assert parts["features.b"] == summary_to_parts(expected_b)


def test_a_segments_mask_and_several_chunks_add_up() -> None:
    rng = np.random.default_rng(2)
    rows = [{"a": float(v)} for v in rng.integers(0, 60, 300)]
    regions = rng.choice(["EU", "US"], 300).tolist()
    g = GroupSummaries([Column("features.a", EDGES)])
    for lo in range(0, 300, 70):
        part = Chunk(rows[lo : lo + 70], [None] * 70, [None] * 70, [None] * 70, [{"region": r} for r in regions])
        part.segments = [{"region": r} for r in regions[lo : lo + 70]]
        g.add(part, part.in_segment("region", "EU"), None)
    eu = np.array([r["a"] for r, reg in zip(rows, regions, strict=True) if reg == "EU"])
    assert g.parts()["features.a"] == summary_to_parts(NumericSummary.of(eu, EDGES))
