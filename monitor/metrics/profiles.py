"""Mergeable summaries of a feature's values, so a drift test over a month costs what one over
an hour costs.

A numerical feature is summarised on *edges* taken from its reference: every distinct
reference value when there are at most ``MAX_EDGES`` of them, else ``MAX_EDGES`` reference
quantiles, with the outermost intervals cut finer (``reference_edges``). Values are counted
into 2k+1 buckets — below the first edge, exactly at each edge, strictly between two edges,
above the last — plus count, missing, min, max, sum and sum of squares. Summaries of the same
edges add up bucket by bucket (hours into days into months).

From two summaries on the same edges (the tests' summary forms: ``monitor.metrics.bucket_tests``
and the registry in ``monitor.metrics.stattests``):
- KS is exact whenever the edges include all the reference's distinct values (Evidently uses KS
  only for references of at most 1,000 rows, which always qualify): the empirical CDFs can only
  cross between buckets, and every bucket's end points are known;
- the Wasserstein distance is exact at edges and beyond the outer ones (from the tail sums), and
  linear in between (values spread evenly inside an interval): exact for references with few
  distinct values, within 0.0015 of the exact normed distance otherwise, heavy tails included;
- the count-based tests (chi-square, Z, Jensen-Shannon, PSI, KL, Hellinger) read the buckets as
  categories, which is exact for features with few distinct values.

Categorical features are summarised as counts per category.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from math import sqrt
from typing import cast

import numpy as np

from monitor.domain.schema import category_key  # how a category is keyed: the schema's say

MAX_EDGES = 1000
# The outermost 2 % of the intervals between edges, on each side, are cut into 16 equal parts.
# In a heavy tail those intervals are wide and the current window's values inside them are not
# spread evenly, which is what the Wasserstein distance assumes between edges: on t(2), Pareto
# and Cauchy features it was up to 0.03 off (normed) near the 0.1 threshold; with the cuts,
# within 0.0015 (tests/unit/test_profiles.py). Features with few distinct values are left as
# they are: their edges are their values, and the buckets between them stay empty.
TAIL_SHARE = 0.02
TAIL_CUTS = 16
# at most this many distinct values: the edges are the values, no cuts
UNCUT_UP_TO = 20


def reference_edges(values: np.ndarray, max_edges: int = MAX_EDGES) -> tuple[np.ndarray, bool]:
    """Edges for a numerical feature, and whether every distinct reference value is one of them."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    uniq = np.unique(v)
    if len(uniq) <= UNCUT_UP_TO:
        return uniq, True
    every = len(uniq) <= max_edges
    edges = uniq if every else np.unique(np.quantile(v, np.linspace(0, 1, max_edges)))
    return _cut_tails(edges), every


def _cut_tails(edges: np.ndarray) -> np.ndarray:
    k = len(edges)
    t = max(1, int(np.ceil(TAIL_SHARE * (k - 1))))
    outer = [*range(t), *range(max(t, k - 1 - t), k - 1)]
    fractions = np.arange(1, TAIL_CUTS) / TAIL_CUTS
    cuts = edges[outer, None] + np.diff(edges)[outer, None] * fractions
    return np.unique(np.concatenate([edges, cuts.ravel()]))


@dataclass
class NumericSummary:
    """Counts on 2k+1 buckets of ``k`` edges: (-inf, e0), [e0], (e0, e1), [e1], ..., [e_k-1], (e_k-1, inf)."""

    edges: np.ndarray
    counts: np.ndarray
    n: int  # non-missing values
    missing: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    total: float = 0.0
    total_sq: float = 0.0
    # Sums of the values below the first edge and above the last: the Wasserstein distance's
    # tails are exact from them, however the values spread out there.
    low_sum: float = 0.0
    high_sum: float = 0.0
    # ±inf values: a data-quality problem of the feature, counted here and left out of every
    # statistic above (``missing`` counts NaN and absent values only)
    non_finite: int = 0

    @classmethod
    def empty(cls, edges: np.ndarray) -> NumericSummary:
        return cls(np.asarray(edges, dtype=float), np.zeros(2 * len(edges) + 1, dtype=np.int64), 0)

    @classmethod
    def of(cls, values: np.ndarray, edges: np.ndarray) -> NumericSummary:
        v = np.asarray(values, dtype=float)
        finite = np.isfinite(v)
        x = v[finite]
        s = cls.empty(edges)
        s.non_finite = int(np.isinf(v).sum())
        s.missing = len(v) - len(x) - s.non_finite
        if len(x):
            s.counts = np.bincount(bucket_index(x, s.edges), minlength=len(s.counts)).astype(np.int64)
            s.n = len(x)
            s.minimum, s.maximum = float(x.min()), float(x.max())
            with np.errstate(over="ignore"):  # checked just below, with a message that says why
                s.total, s.total_sq = float(x.sum()), float(np.square(x).sum())
            if not np.isfinite(s.total_sq):
                # only a value stored before ingestion bounded numbers (2^53) can do this
                raise ArithmeticError(
                    f"values up to {max(abs(s.minimum), abs(s.maximum)):.3g} overflow the sum of squares"
                )
            s.low_sum = float(x[x < s.edges[0]].sum())
            s.high_sum = float(x[x > s.edges[-1]].sum())
        return s

    def merge(self, other: NumericSummary) -> NumericSummary:
        if len(other.edges) != len(self.edges) or not np.array_equal(other.edges, self.edges):
            raise ValueError("summaries on different edges cannot be merged")
        return NumericSummary(
            self.edges,
            self.counts + other.counts,
            self.n + other.n,
            self.missing + other.missing,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.total + other.total,
            self.total_sq + other.total_sq,
            self.low_sum + other.low_sum,
            self.high_sum + other.high_sum,
            self.non_finite + other.non_finite,
        )

    def add_parts(self, stats_: dict[str, object], counts: bytes) -> None:
        """Add a stored summary (see ``summary_to_parts``) into this one, in place: merging a
        month of day summaries allocates nothing per day."""
        self.counts += unpack_counts(counts)
        self.n += int(stats_["n"])  # type: ignore[call-overload]
        self.missing += int(stats_["missing"])  # type: ignore[call-overload]
        if stats_["min"] is not None:
            self.minimum = min(self.minimum, float(stats_["min"]))  # type: ignore[arg-type]
            self.maximum = max(self.maximum, float(stats_["max"]))  # type: ignore[arg-type]
        self.total += float(stats_["total"])  # type: ignore[arg-type]
        self.total_sq += float(stats_["total_sq"])  # type: ignore[arg-type]
        self.low_sum += float(stats_["low_sum"])  # type: ignore[arg-type]
        self.high_sum += float(stats_["high_sum"])  # type: ignore[arg-type]
        self.non_finite += int(stats_.get("non_finite", 0))  # type: ignore[call-overload]

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation, as numpy's default (and Evidently's normalisation)."""
        if not self.n:
            return float("nan")
        return sqrt(max(self.total_sq / self.n - self.mean**2, 0.0))

    def distinct_lower_bound(self) -> int:
        """Distinct values seen: exact on the edges, at least one per non-empty interval."""
        return int(np.count_nonzero(self.counts))


# Latency is summarised on fixed log-spaced edges (10 µs to 10 min): there is no reference for
# it, and 600 edges over 7.8 decades put each percentile within ~1.5 % of the exact one.
LATENCY_EDGES = np.geomspace(0.01, 600_000.0, 600)


def quantile(s: NumericSummary, q: float) -> float:
    """The q-quantile of a summary: exact at edges, linear inside an interval (min and max bound
    the outer ones)."""
    if s.n == 0:
        return float("nan")
    target = q * s.n
    cum = np.cumsum(s.counts)
    j = int(np.searchsorted(cum, target, side="left"))
    if j % 2 == 1:  # a point bucket: the value is the edge itself
        return float(s.edges[(j - 1) // 2])
    i = j // 2  # the interval between edges[i-1] and edges[i]
    lo = float(s.edges[i - 1]) if i > 0 else s.minimum
    hi = float(s.edges[i]) if i < len(s.edges) else s.maximum
    inside = s.counts[j]
    frac = (target - (cum[j] - inside)) / inside if inside else 0.0
    return lo + frac * (hi - lo)


def bucket_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket of each value: 2i+1 when equal to edge i, 2i when between edge i-1 and edge i."""
    left = np.searchsorted(edges, x, side="left")
    # equal to the edge found (one search, not a second one on the right)
    on_edge = edges[np.minimum(left, len(edges) - 1)] == x if len(edges) else np.zeros(len(x), dtype=bool)
    return np.where(on_edge, 2 * left + 1, 2 * left)


@dataclass
class CategoricalSummary:
    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0

    @classmethod
    def of_keys(cls, keys: Sequence[str | None]) -> CategoricalSummary:
        """The summary of values already spelled as categories (``category_key``): counted in C."""
        counts = Counter(keys)
        s = cls()
        s.missing = counts.pop(None, 0)
        s.counts = dict(counts)  # type: ignore[arg-type]
        return s

    @classmethod
    def of(cls, values: Sequence[object]) -> CategoricalSummary:
        s = cls()
        for v in values:
            if v is None or v != v:
                s.missing += 1
            else:
                k = str(v)
                s.counts[k] = s.counts.get(k, 0) + 1
        return s

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def add_parts(self, stats_: dict[str, object]) -> None:
        for k, c in stats_["counts"].items():  # type: ignore[attr-defined]
            self.counts[k] = self.counts.get(k, 0) + c
        self.missing += int(stats_["missing"])  # type: ignore[call-overload]

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        counts = dict(self.counts)
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        return CategoricalSummary(counts, self.missing + other.missing)


# -- storage form ---------------------------------------------------------------------------------

Summary = NumericSummary | CategoricalSummary


def category_keys(values: Iterable[object]) -> list[str | None]:
    """``category_key`` of each value; a string, nearly every category, is its own key and is
    taken as it is (the call per value was most of spelling a batch's categories)."""
    return [v if type(v) is str else category_key(v) for v in values]


def _finite_or_none(x: float) -> float | None:
    return x if np.isfinite(x) else None


def summary_to_json(s: Summary, *, distinct: int | None = None) -> dict[str, object]:
    """The reference's storage form: the statistics plus edges and counts as JSON lists."""
    stats_, _ = summary_to_parts(s)
    if isinstance(s, NumericSummary):
        stats_.update(edges=s.edges.tolist(), counts=s.counts.tolist())
        if distinct is not None:
            stats_["distinct"] = distinct
    return stats_


def summary_from_json(d: dict[str, object]) -> Summary:
    if d["type"] == "categorical":
        return _categorical(d)
    return numeric_from_parts(d, np.asarray(d["edges"], dtype=float), np.asarray(d["counts"], dtype=np.int64))


def _categorical(stats_: dict[str, object]) -> CategoricalSummary:
    counts = cast(dict[str, int], stats_["counts"])
    return CategoricalSummary(dict(counts), int(cast(int, stats_["missing"])))


def numeric_from_parts(stats_: dict[str, object], edges: np.ndarray, counts: np.ndarray) -> NumericSummary:
    return NumericSummary(
        edges,
        counts,
        int(stats_["n"]),  # type: ignore[call-overload]
        int(stats_["missing"]),  # type: ignore[call-overload]
        float("inf") if stats_["min"] is None else float(stats_["min"]),  # type: ignore[arg-type]
        float("-inf") if stats_["max"] is None else float(stats_["max"]),  # type: ignore[arg-type]
        float(stats_["total"]),  # type: ignore[arg-type]
        float(stats_["total_sq"]),  # type: ignore[arg-type]
        float(stats_["low_sum"]),  # type: ignore[arg-type]
        float(stats_["high_sum"]),  # type: ignore[arg-type]
        int(stats_.get("non_finite", 0)),  # type: ignore[call-overload]  # summaries from before it was counted
    )


def reference_summary(values: Sequence[object], numerical: bool) -> dict[str, object]:
    """The stored summary of one reference column, with its edges and distinct-value count."""
    if not numerical:
        return summary_to_json(CategoricalSummary.of([category_key(v) for v in values]))
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    edges, _ = reference_edges(x)
    distinct = len(np.unique(x[np.isfinite(x)]))
    return summary_to_json(NumericSummary.of(x, edges), distinct=distinct)


# Bucket summaries are stored without edges (they are the reference's) and with the counts as
# zlib-compressed int64 bytes: an hour's counts are mostly zeros and small numbers, so a month of
# day summaries is a few hundred kilobytes to read, and merging them is a few numpy additions.
_STATS = ("n", "missing", "total", "total_sq", "low_sum", "high_sum", "non_finite")


# A few rows' counts (a batch summarised at ingestion, a quiet hour) are nearly all zeros: kept as
# their non-zero cells instead, which costs no compression (zlib was most of summarising a small
# batch) and is smaller still. A zlib stream never begins with a zero byte, which marks this form.
_SPARSE = b"\x00"


def pack_counts(counts: np.ndarray) -> bytes:
    c = np.asarray(counts, dtype="<i8")
    nonzero = np.flatnonzero(c)
    if _sparse_is_smaller(len(nonzero), len(c)):
        return pack_cells(len(c), nonzero, c[nonzero])
    return zlib.compress(c.tobytes(), 1)


def pack_cells(size: int, cells: Sequence[int] | np.ndarray, values: Sequence[int] | np.ndarray) -> bytes:
    """``pack_counts`` of ``size`` counts given as their non-zero ``cells`` (ascending) and
    ``values``, without making the dense counts unless zlib's form is the smaller."""
    if _sparse_is_smaller(len(cells), size):
        header = _SPARSE + np.array([size], dtype="<u4").tobytes()
        return header + np.asarray(cells, dtype="<u4").tobytes() + np.asarray(values, dtype="<i8").tobytes()
    dense = np.zeros(size, dtype="<i8")
    dense[np.asarray(cells, dtype=np.intp)] = values
    return zlib.compress(dense.tobytes(), 1)


def _sparse_is_smaller(cells: int, size: int) -> bool:
    return cells * 8 <= size


def unpack_counts(data: bytes) -> np.ndarray:
    if data[:1] == _SPARSE:
        size = int(np.frombuffer(data, dtype="<u4", count=1, offset=1)[0])
        k = (len(data) - 5) // 12
        out = np.zeros(size, dtype="<i8")
        out[np.frombuffer(data, dtype="<u4", count=k, offset=5)] = np.frombuffer(data, dtype="<i8", offset=5 + 4 * k)
        return out
    return np.frombuffer(zlib.decompress(data), dtype="<i8")


def numeric_parts(values: np.ndarray, edges: np.ndarray) -> tuple[dict[str, object], bytes]:
    """``summary_to_parts(NumericSummary.of(values, edges))``, without the dense counts: a few
    values touch a few cells, which are packed as they are (``pack_counts``'s sparse form when
    that is the smaller). The same stats, the same counts once unpacked."""
    if len(values) < 8:
        return _few_numeric_parts([float(a) for a in values], edges)
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    x = v[finite]
    non_finite = int(np.isinf(v).sum())
    size = 2 * len(edges) + 1
    stats_: dict[str, object] = {
        "n": len(x),
        "missing": len(v) - len(x) - non_finite,
        "total": 0.0,
        "total_sq": 0.0,
        "low_sum": 0.0,
        "high_sum": 0.0,
        "non_finite": non_finite,
        "type": "numerical",
        "min": None,
        "max": None,
    }
    if not len(x):
        return stats_, pack_cells(size, [], [])
    packed = pack_cells(size, *np.unique(bucket_index(x, edges), return_counts=True))
    with np.errstate(over="ignore"):
        total, total_sq = float(x.sum()), float(np.square(x).sum())
    if not np.isfinite(total_sq):
        raise ArithmeticError(
            f"values up to {max(abs(float(x.min())), abs(float(x.max()))):.3g} overflow the sum of squares"
        )
    stats_.update(
        total=total,
        total_sq=total_sq,
        low_sum=float(x[x < edges[0]].sum()),
        high_sum=float(x[x > edges[-1]].sum()),
        min=_finite_or_none(float(x.min())),
        max=_finite_or_none(float(x.max())),
    )
    return stats_, packed


def _few_numeric_parts(values: list[float], edges: np.ndarray) -> tuple[dict[str, object], bytes]:
    """``numeric_parts`` of fewer than eight values (a single record's batch), in plain Python:
    numpy's fixed cost per call was most of it. Sums run left to right, as numpy's do below
    eight values, so the stats are the same to the bit."""
    x = [a for a in values if math.isfinite(a)]
    non_finite = sum(1 for a in values if math.isinf(a))
    size = 2 * len(edges) + 1
    cells: dict[int, int] = {}
    for a in x:
        i = bisect.bisect_left(edges, a)
        cell = 2 * i + 1 if i < len(edges) and edges[i] == a else 2 * i
        cells[cell] = cells.get(cell, 0) + 1
    order = sorted(cells)
    packed = pack_cells(size, order, [cells[c] for c in order])
    lo, hi = float(edges[0]), float(edges[-1])
    total_sq = sum(a * a for a in x)
    if not math.isfinite(total_sq):
        raise ArithmeticError(f"values up to {max(abs(a) for a in x):.3g} overflow the sum of squares")
    return {
        "n": len(x),
        "missing": len(values) - len(x) - non_finite,
        "total": float(sum(x)),
        "total_sq": float(total_sq),
        "low_sum": float(sum(a for a in x if a < lo)),
        "high_sum": float(sum(a for a in x if a > hi)),
        "non_finite": non_finite,
        "type": "numerical",
        "min": min(x) if x else None,
        "max": max(x) if x else None,
    }, packed


def numeric_parts_of_columns(m: np.ndarray, edges: Sequence[np.ndarray]) -> list[tuple[dict[str, object], bytes]]:
    """``numeric_parts`` of each column of ``m`` on its own ``edges``, the same to the bit, in a
    few numpy calls for all columns at once: a batch summarised at ingestion holds a thousand rows
    of a few dozen columns per group, where numpy's fixed cost per call, a dozen calls per column,
    was most of the work. A column with a missing or infinite value takes ``numeric_parts``."""
    n, k = m.shape
    if n < 8 or k == 0:
        return [numeric_parts(m[:, j], edges[j]) for j in range(k)]
    cols = np.ascontiguousarray(m.T)  # a column's values contiguous: its sums are the 1-D sums
    finite = np.isfinite(cols).all(axis=1)
    out: list[tuple[dict[str, object], bytes] | None] = [
        None if finite[j] else numeric_parts(m[:, j], edges[j]) for j in range(k)
    ]
    todo = np.flatnonzero(finite)
    if not len(todo):
        return cast(list[tuple[dict[str, object], bytes]], out)
    x = cols[todo]
    with np.errstate(over="ignore"):
        totals, squares = x.sum(axis=1), np.square(x).sum(axis=1)
    lows, highs = x.min(axis=1), x.max(axis=1)
    for i, j in enumerate(todo.tolist()):
        e = edges[j]
        if not math.isfinite(squares[i]):
            raise ArithmeticError(f"values up to {max(abs(lows[i]), abs(highs[i])):.3g} overflow the sum of squares")
        row = x[i]
        cells = bucket_index(row, e)
        counts = np.bincount(cells, minlength=2 * len(e) + 1)
        nonzero = np.flatnonzero(counts)
        # values beyond the outer edges are few or none: summed only where there are some
        low_sum = float(row[row < e[0]].sum()) if lows[i] < e[0] else 0.0
        high_sum = float(row[row > e[-1]].sum()) if highs[i] > e[-1] else 0.0
        stats_: dict[str, object] = {
            "n": n,
            "missing": 0,
            "total": float(totals[i]),
            "total_sq": float(squares[i]),
            "low_sum": low_sum,
            "high_sum": high_sum,
            "non_finite": 0,
            "type": "numerical",
            "min": float(lows[i]),
            "max": float(highs[i]),
        }
        out[j] = (stats_, pack_cells(len(counts), nonzero, counts[nonzero]))
    return cast(list[tuple[dict[str, object], bytes]], out)


def summary_to_parts(s: Summary) -> tuple[dict[str, object], bytes | None]:
    if isinstance(s, CategoricalSummary):
        return {"type": "categorical", "counts": s.counts, "missing": s.missing}, None
    stats_ = {k: getattr(s, k) for k in _STATS}
    stats_.update(type="numerical", min=_finite_or_none(s.minimum), max=_finite_or_none(s.maximum))
    return stats_, pack_counts(s.counts)
