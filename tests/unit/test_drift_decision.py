"""The decision rules of the stat-test profiles, on summaries as the window job passes them:
calibrated (significant and material, Benjamini-Hochberg across features, no decision on too few
rows) and evidently (Evidently's test and threshold, to the number)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.drift_decision import CALIBRATED_TESTS, ColumnTest, Rule, column_kind, decide
from monitor.metrics.profiles import NumericSummary, reference_summary, summary_from_json
from monitor.metrics.stattests import benjamini_hochberg, drift_from_summaries

CALIBRATED = Rule("calibrated", alpha=0.05, min_sample_size=100)


def numeric(ref: np.ndarray, cur: np.ndarray) -> tuple:
    """(reference summary, current summary on the reference's edges, the reference's distinct values)."""
    stored = reference_summary(ref.tolist(), numerical=True)
    r = summary_from_json(stored)
    assert isinstance(r, NumericSummary)
    return r, NumericSummary.of(cur, r.edges), stored["distinct"]


def categorical(ref: list[str], cur: list[str]) -> tuple:
    return (
        summary_from_json(reference_summary(ref, numerical=False)),
        summary_from_json(reference_summary(cur, numerical=False)),
        None,
    )


def test_significant_and_material_drifts() -> None:
    rng = np.random.default_rng(1)
    cols = {"features.x": numeric(rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000))}
    d = decide(cols, {"features.x"}, CALIBRATED)["features.x"]
    assert d.drifted is True and d.method == "quantile_wasserstein" and d.kind == "distance"
    assert d.details["p_test"] == "anderson" and d.details["significant"] and d.details["material"]
    assert d.details["column_kind"] == "continuous"
    assert d.value == d.details["effect"] >= d.threshold == 0.025


def test_significant_but_trivial_is_not_drift() -> None:
    """A large window finds a 0.03 sigma shift significant; it is not worth paging anyone for."""
    rng = np.random.default_rng(2)
    cols = {"features.x": numeric(rng.normal(0, 1, 100_000), rng.normal(0.03, 1, 200_000))}
    d = decide(cols, {"features.x"}, CALIBRATED)["features.x"]
    assert d.details["p_value"] < 0.05 and d.details["significant"]
    assert not d.details["material"] and d.drifted is False


def test_large_but_noisy_is_not_drift() -> None:
    """A small window of a many-valued category: a large distance, from noise alone."""
    rng = np.random.default_rng(3)
    cats = [f"c{i}" for i in range(12)]
    cols = {"features.c": categorical(rng.choice(cats, 800).tolist(), rng.choice(cats, 120).tolist())}
    d = decide(cols, {"features.c"}, CALIBRATED)["features.c"]
    assert d.method == "largest_share_change" and d.details["p_test"] == "categories_2samp"
    assert d.details["material"] and not d.details["significant"] and d.drifted is False


def test_too_few_rows_make_no_decision_but_report_their_numbers() -> None:
    rng = np.random.default_rng(4)
    cols = {"features.x": numeric(rng.normal(0, 1, 2000), rng.normal(3, 1, 40))}
    d = decide(cols, {"features.x"}, CALIBRATED)["features.x"]
    assert d.drifted is None and d.n_current == 40
    assert d.details["significant"] and d.details["material"] and d.details["min_sample_size"] == 100
    assert decide(cols, {"features.x"}, Rule("calibrated", min_sample_size=40))["features.x"].drifted is True


def test_significance_is_held_across_the_window_s_features() -> None:
    rng = np.random.default_rng(5)
    cols = {f"features.f{i}": numeric(rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)) for i in range(30)}
    cols["features.moved"] = numeric(rng.normal(0, 1, 3000), rng.normal(0.4, 1, 3000))
    cols["features.weak"] = numeric(rng.normal(0, 1, 3000), rng.normal(0.12, 1, 3000))
    features = set(cols)
    out = decide(cols, features, CALIBRATED)
    p_values = [out[c].details["p_value"] for c in cols]
    assert [out[c].details["significant"] for c in cols] == benjamini_hochberg(p_values, 0.05)
    assert out["features.moved"].drifted is True
    weak = out["features.weak"].details
    assert 0.05 / len(cols) < weak["p_value"] < 0.05 and not weak["significant"]  # alone it would be
    # a column outside the family (a prediction) is tested at alpha on its own
    lone = decide({"prediction": cols["features.f0"]}, set(), CALIBRATED)["prediction"]
    assert lone.details["fdr"] is False and lone.details["significant"] == (lone.details["p_value"] < 0.05)


def test_an_override_replaces_the_test_of_its_kind() -> None:
    rng = np.random.default_rng(6)
    cols = {"features.x": numeric(rng.normal(0, 1, 3000), rng.normal(0.3, 1, 3000))}
    as_effect = decide(cols, {"features.x"}, CALIBRATED, {"features.x": ColumnTest("psi", 0.2)})["features.x"]
    assert (as_effect.method, as_effect.threshold, as_effect.details["p_test"]) == ("psi", 0.2, "anderson")
    as_test = decide(cols, {"features.x"}, CALIBRATED, {"features.x": ColumnTest("ks")})["features.x"]
    assert (as_test.method, as_test.details["p_test"]) == ("quantile_wasserstein", "ks")


@pytest.mark.parametrize("fdr", [False, True])
def test_the_evidently_profile_is_evidently_s_test_to_the_number(fdr: bool) -> None:
    rng = np.random.default_rng(7)
    cols = {
        "features.x": numeric(rng.normal(0, 1, 800), rng.normal(0.1, 1, 300)),
        "features.c": categorical(rng.choice(["a", "b", "c"], 800).tolist(), rng.choice(["a", "b"], 30).tolist()),
    }
    out = decide(cols, set(cols), Rule("evidently", fdr=fdr))
    for col, (ref, cur, distinct) in cols.items():
        theirs = drift_from_summaries(ref, cur, ref_distinct=distinct)
        d = out[col]
        assert (d.value, d.method, d.threshold) == (theirs.score, theirs.test, theirs.threshold)
        assert d.drifted == theirs.drifted or fdr  # with fdr the decision is BH's
        assert d.details["profile"] == "evidently" and ("fdr" in d.details) == (fdr and theirs.kind == "p_value")


def test_exact_ks_p_values_only_where_they_can_decide_and_the_same_decisions() -> None:
    """The exact KS distribution is computed where Smirnov's p-value is at most 0.25; above it the
    asymptotic one is reported. No decision changes: a p-value above alpha decides nothing."""
    rng = np.random.default_rng(9)
    # rounded values: discrete columns, which KS tests
    cols = {
        f"features.x{i}": numeric(
            np.round(rng.normal(0, 1, 2000), 1), np.round(rng.normal(0.02 * i, 1 + 0.01 * i, 1500), 1)
        )
        for i in range(40)
    }
    fast = decide(cols, set(cols), CALIBRATED)
    assert {d.details["p_test"] for d in fast.values()} == {"ks"}
    exact = {}
    for col, (ref, cur, distinct) in cols.items():
        exact[col] = drift_from_summaries(ref, cur, ref_distinct=distinct, test="ks").score
    assert len({d.details["p_exact_below"] for d in fast.values()}) == 1
    adjusted = dict(zip(cols, benjamini_hochberg(list(exact.values()), 0.05), strict=True))
    for col, d in fast.items():
        assert d.details["significant"] == adjusted[col]
        if exact[col] <= 0.2:
            assert d.details["p_value"] == exact[col]  # scipy's own, to the digit
        else:
            assert d.details["p_value"] == pytest.approx(exact[col], abs=0.05)
    assert any(e > 0.3 for e in exact.values()) and any(e < 0.01 for e in exact.values())


def test_equal_summaries_are_decided_once_and_different_ones_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.metrics import drift_decision

    made = []
    real = drift_decision._calibrated
    monkeypatch.setattr(drift_decision, "_calibrated", lambda *a: made.append(1) or real(*a))
    monkeypatch.setattr(drift_decision, "_MEMO", type(drift_decision._MEMO)())
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 1, 3000), rng.normal(0.3, 1, 3000)
    first = decide({"features.x": numeric(ref, cur)}, {"features.x"}, CALIBRATED)
    first["features.x"].details["mine"] = True  # a caller adding to its details
    again = decide({"features.x": numeric(ref, cur.copy())}, {"features.x"}, CALIBRATED)  # new, equal objects
    assert len(made) == 1 and "mine" not in again["features.x"].details
    assert again["features.x"].value == first["features.x"].value
    moved = cur.copy()
    moved[0] += 1e-3  # one value moved: another summary (its sum), decided again
    decide({"features.x": numeric(ref, moved)}, {"features.x"}, CALIBRATED)
    decide({"features.x": numeric(ref, cur)}, {"features.x"}, Rule("calibrated", alpha=0.01))  # another rule
    assert len(made) == 3


def test_the_reference_fixes_the_test_a_stray_value_does_not() -> None:
    """A count whose reference holds 0-4: a window with a stray 9 is tested as the others are."""
    rng = np.random.default_rng(12)
    ref = np.minimum(rng.poisson(0.3, 5000), 4).astype(float)
    assert len(np.unique(ref)) == 5
    cur = rng.poisson(0.3, 5000).astype(float)
    cur[cur > 4] = 3.0
    stray = cur.copy()
    stray[:2] = 9.0
    plain = decide({"features.n": numeric(ref, cur)}, {"features.n"}, CALIBRATED)["features.n"]
    odd = decide({"features.n": numeric(ref, stray)}, {"features.n"}, CALIBRATED)["features.n"]
    for d in (plain, odd):
        assert (d.details["column_kind"], d.details["p_test"], d.method) == (
            "few_valued",
            "categories_2samp",
            "largest_share_change",
        )
    assert plain.drifted is odd.drifted is False


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (lambda r: r.normal(0, 1, 3000), "continuous"),
        (lambda r: r.lognormal(0, 2, 200), "continuous"),
        (lambda r: r.poisson(3, 3000).astype(float), "discrete"),  # 12 values, each of many rows
        (lambda r: np.where(r.random(3000) < 0.8, 0.0, r.exponential(5, 3000)), "discrete"),  # a mode at 0
        (lambda r: r.integers(0, 5, 3000).astype(float), "few_valued"),
    ],
)
def test_a_column_s_kind_is_read_off_its_reference(values, kind: str) -> None:  # type: ignore[no-untyped-def]
    ref, cur, distinct = numeric(values(np.random.default_rng(13)), values(np.random.default_rng(14)))
    assert column_kind(ref, distinct) == kind
    assert column_kind(ref, None) == kind  # a reference stored without its count: its summary
    expected = CALIBRATED_TESTS[kind]
    d = decide({"features.x": (ref, cur, distinct)}, {"features.x"}, CALIBRATED)["features.x"]
    assert (d.details["p_test"], d.method) == expected
    assert column_kind(categorical(["a", "b"], ["a"])[0], None) == "categorical"


def _moved(p: np.ndarray, points: float) -> np.ndarray:
    q = p.copy()
    q[0] += points
    q[1:] *= (p[1:].sum() - points) / p[1:].sum()
    return q


CHANGES = {
    # (reference rows, current rows, sampler of the reference, sampler of the changed window)
    "lognormal sigma 2 x1.5": (5000, 5000, lambda r, n: r.lognormal(0, 2, n), lambda r, n: 1.5 * r.lognormal(0, 2, n)),
    "pareto 1.5 x1.3": (5000, 5000, lambda r, n: r.pareto(1.5, n) + 1, lambda r, n: 1.3 * (r.pareto(1.5, n) + 1)),
    "poisson 0.3 -> 0.45": (
        5000,
        5000,
        lambda r, n: r.poisson(0.3, n).astype(float),
        lambda r, n: r.poisson(0.45, n).astype(float),
    ),
    "5 levels, +5 points": (
        10_000,
        10_000,
        lambda r, n: r.choice(np.array(list("abcde"), dtype=object), n),
        lambda r, n: r.choice(np.array(list("abcde"), dtype=object), n, p=_moved(np.full(5, 0.2), 0.05)),
    ),
    "200-level zipf, top +5 points": (
        10_000,
        10_000,
        lambda r, n: r.choice(ZIPF_LEVELS, n, p=ZIPF),
        lambda r, n: r.choice(ZIPF_LEVELS, n, p=_moved(ZIPF, 0.05)),
    ),
}
ZIPF = 1.0 / np.arange(1, 201) / (1.0 / np.arange(1, 201)).sum()
ZIPF_LEVELS = np.array([f"z{i}" for i in range(200)], dtype=object)


def _column(ref: np.ndarray, cur: np.ndarray) -> tuple:
    return numeric(ref, cur) if ref.dtype.kind == "f" else categorical(ref.tolist(), cur.tolist())


@pytest.mark.calibration
@pytest.mark.parametrize("change", list(CHANGES))
def test_material_changes_in_heavy_tails_counts_and_categories_are_found_and_no_change_is_not(change: str) -> None:
    """Ten windows with the change, ten without, among 19 unchanged normal features: every changed
    window flags the feature, no unchanged one flags anything."""
    n_ref, n_cur, before, after = CHANGES[change]
    found = quiet = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        others = {f"features.f{i}": numeric(rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)) for i in range(19)}
        ref = before(rng, n_ref)
        changed = {**others, "features.x": _column(ref, after(rng, n_cur))}
        same = {**others, "features.x": _column(ref, before(rng, n_cur))}
        found += decide(changed, set(changed), CALIBRATED)["features.x"].drifted is True
        quiet += not any(d.drifted for d in decide(same, set(same), CALIBRATED).values())
    assert (found, quiet) == (10, 10)


def test_summaries_and_raw_rows_give_the_same_decisions() -> None:
    """The calibrated decisions from the window job's summaries against the same tests run on the
    raw rows (``test_drift``) with Benjamini-Hochberg: equal, changed and unchanged features alike,
    where the summaries are exact: the reference's edges are its values and the window's values
    are among them (counts, few-valued features, categories)."""
    from monitor.metrics.stattests import FeatureKind, test_drift

    draws = {
        "count": lambda r, n, s: r.poisson(3 + s, n).astype(float),
        "binomial": lambda r, n, s: r.binomial(30, 0.3 + s / 20, n).astype(float),
        "few": lambda r, n, s: r.binomial(3, 0.4 + s / 10, n).astype(float),
        "colour": lambda r, n, s: r.choice(
            np.array(list("abcdef"), dtype=object), n, p=_moved(np.full(6, 1 / 6), s / 10)
        ),
    }
    agree = flagged = total = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        raw, cols = {}, {}
        for name, draw in draws.items():
            for shift in (0.0, 0.3 * (seed % 3)):
                col = f"features.{name}{shift}"
                ref, cur = draw(rng, 900, 0.0), draw(rng, 700, shift)
                cur = cur[np.isin(cur, ref)]  # every value an edge: the summaries are exact
                raw[col] = (ref, cur)
                cols[col] = _column(ref, cur)
        decided = decide(cols, set(cols), CALIBRATED)
        tests = {c: (d.details["p_test"], d.method, d.threshold) for c, d in decided.items()}
        p = {}
        for c, (ref, cur) in raw.items():
            kind = FeatureKind.numerical if ref.dtype.kind == "f" else FeatureKind.categorical
            p[c] = test_drift(ref, cur, kind, test=tests[c][0]).score
        significant = dict(zip(p, benjamini_hochberg(list(p.values()), 0.05), strict=True))
        for c, (ref, cur) in raw.items():
            kind = FeatureKind.numerical if ref.dtype.kind == "f" else FeatureKind.categorical
            effect = test_drift(ref, cur, kind, test=tests[c][1]).score
            # KS: above 0.25 the service keeps Smirnov's asymptotic p-value (it decides nothing there)
            close = {"rel": 1e-9, "abs": 1e-300} if p[c] < 0.25 or tests[c][0] != "ks" else {"abs": 0.05}
            assert decided[c].details["p_value"] == pytest.approx(p[c], **close)
            assert decided[c].value == pytest.approx(effect, rel=1e-9, abs=1e-12)
            agree += decided[c].drifted == (significant[c] and effect >= tests[c][2])
            flagged += bool(decided[c].drifted)
            total += 1
    assert agree == total and 0.2 * total < flagged < 0.8 * total, (agree, flagged, total)
