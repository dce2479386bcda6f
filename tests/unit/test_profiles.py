"""Drift from mergeable summaries against the same tests on the raw values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.metrics.profiles import (
    CategoricalSummary,
    NumericSummary,
    bucket_index,
    numeric_from_parts,
    reference_edges,
    summary_to_parts,
    unpack_counts,
)
from monitor.metrics.stattests import REGISTRY, FeatureKind, drift_from_summaries, test_drift


def summaries(ref: np.ndarray, cur: np.ndarray) -> tuple[NumericSummary, NumericSummary, int]:
    edges, _ = reference_edges(ref)
    return NumericSummary.of(ref, edges), NumericSummary.of(cur, edges), len(np.unique(ref))


def test_buckets_separate_points_from_intervals() -> None:
    edges = np.array([1.0, 2.0, 4.0])
    x = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 9.0])
    assert bucket_index(x, edges).tolist() == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("seed", range(5))
def test_ks_is_exact_for_small_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(0, 1, 700).round(2)  # repeated values, as real data has
    for cur in (rng.normal(0.1, 1, 900).round(3), rng.normal(0, 1, 20_000), ref[:300]):
        r, c, distinct = summaries(ref, cur)
        got = drift_from_summaries(r, c, ref_distinct=distinct)
        raw = test_drift(ref, cur, FeatureKind.numerical)
        assert got.test == raw.test == "ks"
        assert got.score == pytest.approx(stats.ks_2samp(ref, cur).pvalue, rel=1e-9, abs=1e-15)
        assert got.drifted == raw.drifted


def test_wasserstein_is_exact_when_values_sit_on_edges() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 50, 5000).astype(float)
    cur = rng.integers(5, 60, 8000).astype(float)  # includes values beyond the reference
    cur = cur[cur < 50]
    r, c, distinct = summaries(ref, cur)
    got = drift_from_summaries(r, c, ref_distinct=distinct, test="wasserstein")
    assert got.score == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-9)


@pytest.mark.parametrize(("shift", "scale"), [(0.0, 1.0), (0.05, 1.0), (0.1, 1.0), (0.3, 1.5), (2.0, 1.0)])
def test_wasserstein_is_close_for_large_continuous_references(shift: float, scale: float) -> None:
    rng = np.random.default_rng(7)
    ref = rng.lognormal(3, 0.6, 100_000)
    cur = rng.lognormal(3 + shift, 0.6 * scale, 200_000)
    r, c, distinct = summaries(ref, cur)
    got = drift_from_summaries(r, c, ref_distinct=distinct)
    exact = test_drift(ref, cur, FeatureKind.numerical)
    assert got.test == exact.test == "wasserstein"
    # within 0.003 near the 0.1 threshold; within 5 % for clear drift (mass piled in the widest,
    # outermost reference intervals is where spreading it evenly errs most)
    assert got.score == pytest.approx(exact.score, rel=0.05, abs=0.003)
    assert got.drifted == exact.drifted or abs(exact.score - 0.1) < 0.003


HEAVY_TAILS = {
    "t(2)": lambda r, n: r.standard_t(2, n),
    "t(1.5)": lambda r, n: r.standard_t(1.5, n),
    "lognormal(0, 1.5)": lambda r, n: r.lognormal(0, 1.5, n),
    "pareto(1.1)": lambda r, n: r.pareto(1.1, n),
    "cauchy": lambda r, n: r.standard_cauchy(n),
}


@pytest.mark.parametrize("shape", HEAVY_TAILS)
@pytest.mark.parametrize("n_ref", [800, 5000])
def test_normed_wasserstein_is_within_0_003_on_heavy_tails(shape: str, n_ref: int) -> None:
    """Against scipy on the raw values (normed by the reference's std, as Evidently): the wide
    outermost intervals of a heavy tail are cut finer, where spreading values evenly erred by up
    to 0.03."""
    worst = 0.0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        ref = HEAVY_TAILS[shape](rng, n_ref)
        cur = HEAVY_TAILS[shape](rng, 10_000) * (1 + 0.05 * (seed % 3))
        r, c, distinct = summaries(ref, cur)
        got = drift_from_summaries(r, c, ref_distinct=distinct, test="wasserstein").score
        worst = max(worst, abs(got - stats.wasserstein_distance(ref, cur) / np.std(ref)))
    assert worst < 0.003


def test_merged_summaries_equal_the_summary_of_all_values() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=3000)
    edges, _ = reference_edges(ref)
    parts = [rng.normal(0.2, 1, n) for n in (100, 2000, 1)]
    parts[1][:10] = np.nan
    merged = (
        NumericSummary.of(parts[0], edges)
        .merge(NumericSummary.of(parts[1], edges))
        .merge(NumericSummary.of(parts[2], edges))
    )
    whole = NumericSummary.of(np.concatenate(parts), edges)
    assert np.array_equal(merged.counts, whole.counts)
    assert (merged.n, merged.missing) == (whole.n, 10)
    assert merged.minimum == whole.minimum and merged.maximum == whole.maximum
    assert merged.mean == pytest.approx(whole.mean) and merged.std == pytest.approx(whole.std)
    with pytest.raises(ValueError, match="different edges"):
        merged.merge(NumericSummary.of(parts[0], edges[:-1]))


@pytest.mark.parametrize("n_ref", [400, 5000])
@pytest.mark.parametrize("n_cats", [2, 4])
def test_categorical_drift_equals_the_raw_test(n_ref: int, n_cats: int) -> None:
    rng = np.random.default_rng(n_ref + n_cats)
    cats = np.array([f"c{i}" for i in range(n_cats)], dtype=object)
    ref = rng.choice(cats, n_ref)
    cur = rng.choice(cats, 3000, p=np.linspace(1, 2, n_cats) / np.linspace(1, 2, n_cats).sum())
    got = drift_from_summaries(CategoricalSummary.of(ref), CategoricalSummary.of(cur))
    raw = test_drift(ref, cur, FeatureKind.categorical)
    assert got.test == raw.test
    assert got.score == pytest.approx(raw.score, rel=1e-9, abs=1e-12)
    assert got.drifted == raw.drifted
    merged = CategoricalSummary.of(cur[:1000]).merge(CategoricalSummary.of(cur[1000:]))
    assert merged.counts == CategoricalSummary.of(cur).counts


@pytest.mark.parametrize("test", ["jensenshannon", "chisquare", "psi", "kl_div", "hellinger", "z"])
def test_count_tests_on_few_valued_numerical_features_equal_the_raw_test(test: str) -> None:
    rng = np.random.default_rng(9)
    values = np.array([0.0, 1.0]) if test == "z" else np.array([0.0, 1.0, 2.0, 5.0])
    ref = rng.choice(values, 5000)
    cur = rng.choice(values, 4000, p=np.linspace(1, 3, len(values)) / np.linspace(1, 3, len(values)).sum())
    r, c, distinct = summaries(ref, cur)
    got = drift_from_summaries(r, c, ref_distinct=distinct, test=test)
    raw = test_drift(ref, cur, FeatureKind.numerical, test=test)
    assert got.score == pytest.approx(raw.score, rel=1e-9, abs=1e-12)


def test_missing_values_are_counted_not_tested() -> None:
    s = CategoricalSummary.of(["a", None, float("nan"), "b"])
    assert (s.n, s.missing) == (2, 2)
    with pytest.raises(ValueError, match="at least one non-missing"):
        drift_from_summaries(s, CategoricalSummary.of([None]))


def test_summaries_survive_their_storage_form() -> None:
    import orjson

    from monitor.domain.schema import category_key
    from monitor.metrics.profiles import reference_summary, summary_from_json, summary_to_json

    rng = np.random.default_rng(4)
    ref = reference_summary([*rng.normal(size=2000), None], numerical=True)
    stored = orjson.loads(orjson.dumps(ref))
    s = summary_from_json(stored)
    assert isinstance(s, NumericSummary) and (s.n, s.missing) == (2000, 1) and stored["distinct"] == 2000
    assert summary_to_json(s, distinct=2000) == stored
    empty = summary_from_json(orjson.loads(orjson.dumps(summary_to_json(NumericSummary.empty(s.edges)))))
    assert empty.n == 0 and empty.minimum == float("inf")
    cats = summary_from_json(orjson.loads(orjson.dumps(reference_summary([True, False, True, None], False))))
    assert cats.counts == {"true": 2, "false": 1} and cats.missing == 1
    assert [category_key(v) for v in (True, "x", 3, None, float("nan"))] == ["true", "x", "3", None, None]


def test_adding_stored_parts_in_place_equals_merging() -> None:
    from monitor.metrics.profiles import summary_to_parts

    rng = np.random.default_rng(12)
    edges, _ = reference_edges(rng.normal(size=500))
    parts = [NumericSummary.of(rng.normal(0.1, 1, n), edges) for n in (50, 0, 400)]
    acc = NumericSummary.empty(edges)
    for p in parts:
        acc.add_parts(*summary_to_parts(p))  # type: ignore[arg-type]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert np.array_equal(acc.counts, merged.counts) and acc.n == merged.n == 450
    assert (acc.minimum, acc.maximum, acc.high_sum) == (merged.minimum, merged.maximum, merged.high_sum)
    cat = CategoricalSummary()
    for values in (["a", "b"], ["a", None]):
        cat.add_parts(summary_to_parts(CategoricalSummary.of(values))[0])  # type: ignore[arg-type]
    assert cat.counts == {"a": 2, "b": 1} and cat.missing == 1


@pytest.mark.parametrize("q", [0.01, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_from_a_latency_summary(q: float) -> None:
    from monitor.metrics.profiles import LATENCY_EDGES, quantile

    rng = np.random.default_rng(2)
    latency = rng.lognormal(3, 1, 50_000)
    s = NumericSummary.of(latency, LATENCY_EDGES)
    assert quantile(s, q) == pytest.approx(np.quantile(latency, q), rel=0.015)
    discrete = NumericSummary.of(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert quantile(discrete, 0.5) == 2.0 and quantile(discrete, 1.0) == 3.0
    assert np.isnan(quantile(NumericSummary.empty(LATENCY_EDGES), 0.5))


def test_infinities_are_counted_apart_and_left_out_of_every_statistic() -> None:
    values = np.array([1.0, 2.0, np.inf, 3.0, -np.inf, np.nan, 2.0])
    edges, _ = reference_edges(values)
    s = NumericSummary.of(values, edges)
    finite = np.array([1.0, 2.0, 3.0, 2.0])
    assert np.array_equal(edges, [1.0, 2.0, 3.0])
    assert (s.n, s.missing, s.non_finite) == (4, 1, 2)
    assert s.total == finite.sum() and s.maximum == 3.0 and s.counts.sum() == 4
    # mergeable, through the stored form; summaries stored before the count existed read as 0
    stats_, counts = summary_to_parts(s)
    back = NumericSummary.empty(edges)
    back.add_parts(stats_, counts)
    assert (back.n, back.missing, back.non_finite) == (4, 1, 2)
    assert s.merge(back).non_finite == 4
    old = {k: v for k, v in stats_.items() if k != "non_finite"}
    assert numeric_from_parts(old, edges, unpack_counts(counts)).non_finite == 0


@pytest.mark.parametrize(
    ("test", "kind"), [(name, kind) for name, t in sorted(REGISTRY.items()) for kind in sorted(t.applies_to)]
)
def test_every_registered_test_has_a_summary_form_equal_to_its_sample_form(test: str, kind: FeatureKind) -> None:
    """One registry entry, both forms: on few-valued data the summaries hold every value, so the
    summary form must give the sample form's number."""
    rng = np.random.default_rng(11)
    values = np.array([0.0, 1.0, 2.0, 5.0]) if kind is FeatureKind.numerical else np.array(list("abcd"), dtype=object)
    p = np.linspace(1, 1.3, len(values)) / np.linspace(1, 1.3, len(values)).sum()  # mild: p-values not 0
    ref, cur = rng.choice(values, 900), rng.choice(values, 400, p=p)
    if kind is FeatureKind.numerical:
        r, c, distinct = summaries(ref, cur)
        got = drift_from_summaries(r, c, ref_distinct=distinct, test=test)
    else:
        got = drift_from_summaries(CategoricalSummary.of(ref), CategoricalSummary.of(cur), test=test)
    raw = test_drift(ref, cur, kind, test=test)
    assert got.score == pytest.approx(raw.score, rel=1e-9, abs=1e-12)
    assert got.drifted == raw.drifted


@pytest.mark.parametrize("n", [0, 1, 3, 7, 8, 50, 5000])
def test_numeric_parts_are_the_summarys_storage_form(n: int) -> None:
    """A batch summarised at ingestion goes straight to its storage form, by another way for a
    few values: the same stats and, unpacked, the same counts as the dense summary."""
    from monitor.metrics.profiles import numeric_parts, summary_to_parts, unpack_counts

    rng = np.random.default_rng(n)
    edges = np.unique(np.round(rng.normal(size=300), 2))
    values = np.concatenate([rng.normal(size=n), edges[: n // 3]])[:n]  # on edges too
    if n >= 3:
        values[:3] = [np.nan, np.inf, -50.0]  # missing, not finite, beyond the outer edge
    got_stats, got_counts = numeric_parts(values, edges)
    want_stats, want_counts = summary_to_parts(NumericSummary.of(values, edges))
    assert want_counts is not None
    assert np.array_equal(unpack_counts(got_counts), unpack_counts(want_counts))
    assert got_stats == want_stats


@pytest.mark.parametrize("n", [0, 5, 8, 1000])
def test_numeric_parts_of_columns_are_each_columns_to_the_bit(n: int) -> None:
    """A group's columns summarised together are each column's ``numeric_parts``: the same stats
    to the bit and the same counts, with values beyond either outer edge, on an edge, missing or
    infinite (those columns take the one-column way), and a column whose values overflow."""
    from monitor.metrics.profiles import numeric_parts, numeric_parts_of_columns

    rng = np.random.default_rng(n)
    edges = [np.unique(np.round(rng.normal(scale=s, size=200), 2)) for s in (1.0, 0.5, 2.0, 1.0)]
    m = rng.lognormal(sigma=1.5, size=(n, 4)) - 2.0  # below the first edge, a heavy tail past the last
    if n >= 8:
        m[:3, 1] = edges[1][:3]  # on edges
        m[4, 2] = np.nan
        m[5, 3] = -np.inf
    got = numeric_parts_of_columns(m, edges)
    assert got == [numeric_parts(m[:, j], edges[j]) for j in range(4)]
    if n >= 8:
        m[:, 2] = 1e200
        with pytest.raises(ArithmeticError, match="overflow"):
            numeric_parts_of_columns(m, edges)


@pytest.mark.parametrize("value", ["a", "", "0", 0, 1.5, True, False, None, float("nan"), {"k": 1}, [1, 2]], ids=repr)
def test_category_keys_spell_each_value_as_category_key(value: object) -> None:
    from monitor.domain.schema import category_key
    from monitor.metrics.profiles import category_keys

    assert category_keys([value, value]) == [category_key(value)] * 2


@pytest.mark.parametrize("nonzero", [0, 1, 10, 2000])
def test_counts_pack_and_unpack_whatever_their_form(nonzero: int) -> None:
    from monitor.metrics.profiles import pack_counts, unpack_counts

    counts = np.zeros(4001, dtype=np.int64)
    counts[np.random.default_rng(nonzero).choice(4001, nonzero, replace=False)] = np.arange(1, nonzero + 1)
    packed = pack_counts(counts)
    assert np.array_equal(unpack_counts(packed), counts)
    assert packed[:1] == (b"\x00" if nonzero * 8 <= len(counts) else b"x")  # sparse, or zlib
