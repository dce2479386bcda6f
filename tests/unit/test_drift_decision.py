"""The decision rules of the stat-test profiles, on summaries as the window job passes them:
calibrated (significant and material, Benjamini-Hochberg across features, no decision on too few
rows) and evidently (Evidently's test and threshold, to the number)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.metrics.drift_decision import ColumnTest, Rule, decide
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
    assert d.drifted is True and d.method == "wasserstein" and d.kind == "distance"
    assert d.details["p_test"] == "ks" and d.details["significant"] and d.details["material"]
    assert d.value == d.details["effect"] >= d.threshold == 0.1


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
    assert d.method == "jensenshannon" and d.details["p_test"] == "chisquare_2samp"
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
    cols["features.weak"] = numeric(rng.normal(0, 1, 3000), rng.normal(0.14, 1, 3000))
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
    assert (as_effect.method, as_effect.threshold, as_effect.details["p_test"]) == ("psi", 0.2, "ks")
    as_test = decide(cols, {"features.x"}, CALIBRATED, {"features.x": ColumnTest("chisquare_2samp")})["features.x"]
    assert (as_test.method, as_test.details["p_test"]) == ("wasserstein", "chisquare_2samp")


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
    cols = {
        f"features.x{i}": numeric(rng.normal(0, 1, 2000), rng.normal(0.02 * i, 1 + 0.01 * i, 1500)) for i in range(40)
    }
    fast = decide(cols, set(cols), CALIBRATED)
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
