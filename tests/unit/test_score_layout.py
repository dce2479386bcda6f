"""Score bins placed by the reference: ROC AUC from binned scores as exact as scikit-learn's on
the raw scores whatever range the scores live in, summaries on different bins still merging, and
summaries stored on earlier bins still read."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitor.metrics.estimation import ScoreSummary
from monitor.metrics.pairs import PairSummary
from monitor.metrics.profiles import pack_counts
from monitor.metrics.quality import binary_score_matrix
from monitor.metrics.quality_summary import ClassificationSummary, classification_metrics
from monitor.metrics.score_layout import (
    OLD_MIDDLES,
    SCORE_BINS,
    SCORE_CEILING,
    ScoreLayout,
    stored_histogram,
)

CLASSES = ["no", "yes"]
KINDS = ["spread", "below 1e-8", "below 1e-200", "within 1e-10 of 1", "a thousandth wide", "rounded"]


def _squashed(kind: str, z: np.ndarray) -> np.ndarray:
    """Scores whose order is the order of ``z``, squeezed into one range."""
    p = 1 / (1 + np.exp(-z))
    if kind == "below 1e-8":
        return 1e-9 * p
    if kind == "below 1e-200":
        return 1e-250 * p
    if kind == "within 1e-10 of 1":
        return 1 - 1e-10 * (1 - p)
    if kind == "a thousandth wide":
        return 0.3 + 0.001 * p
    if kind == "rounded":  # exact zeros and ones, and many ties
        return np.round(p, 1)
    return p


def _rows(kind: str, seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    y = r.random(n) < 0.3
    return y, _squashed(kind, np.where(y, r.normal(1.5, 1.0, n), r.normal(0.0, 1.0, n)))


def _auc(y: np.ndarray, p: np.ndarray, layout: ScoreLayout | None) -> float:
    truth = np.where(y, "yes", "no")
    scores = binary_score_matrix(p, CLASSES, "yes")
    s = ClassificationSummary.of(CLASSES, truth, truth, np.zeros(len(y)), scores, layout=layout)
    return classification_metrics(s, "yes").values["roc_auc"]


@pytest.mark.parametrize("kind", KINDS)
def test_roc_auc_on_the_references_bins_is_sklearns_whatever_the_scores_range(kind: str) -> None:
    """The reference (another sample of the same model) places the bins; the window's AUC is
    within 0.0005 of scikit-learn's on its raw scores. Fixed bins of a logit clipped at 1e-8 gave
    0.5 for all scores under 1e-8, against 0.857."""
    _, ref_p = _rows(kind, seed=1)
    layout = ScoreLayout.of_scores(binary_score_matrix(ref_p, CLASSES, "yes"))
    y, p = _rows(kind, seed=2)
    want = skm.roc_auc_score(y, p)
    assert want > 0.8
    assert _auc(y, p, layout) == pytest.approx(want, abs=5e-4)


@pytest.mark.parametrize("kind", ["spread", "below 1e-8", "within 1e-10 of 1", "rounded"])
def test_the_standard_bins_order_scores_down_to_1e_minus_8_and_up_to_1_minus_1e_minus_10(kind: str) -> None:
    """Without a reference's layout (a reference without scores, or stored before layouts)."""
    y, p = _rows(kind, seed=3)
    assert _auc(y, p, None) == pytest.approx(skm.roc_auc_score(y, p), abs=5e-4)


def test_windows_that_move_far_from_the_reference_are_still_ordered() -> None:
    """Bins placed on scores near 0.3 still order a window whose scores all fell under 1e-6."""
    _, ref_p = _rows("a thousandth wide", seed=4)
    layout = ScoreLayout.of_scores(binary_score_matrix(ref_p, CLASSES, "yes"))
    y, p = _rows("spread", seed=5)
    p = 1e-7 * p
    assert _auc(y, p, layout) == pytest.approx(skm.roc_auc_score(y, p), abs=2e-3)


def test_every_score_has_a_bin_in_order_and_each_middle_lies_in_its_bin() -> None:
    layout = ScoreLayout.of_scores(np.array([[0.7, 0.3], [0.6, 0.4], [0.69, 0.31], [0.72, 0.28]]))
    p = np.array([0.0, 1e-320, 1e-300, 1e-200, 1e-9, 0.3, 0.31, 0.5, 1 - 1e-10, SCORE_CEILING, 1.0])
    bins = layout.bins(p, 1)
    assert bins[0] == 0 and bins[-1] == SCORE_BINS - 1
    assert np.all(np.diff(bins) >= 0) and len(set(bins[2:-1].tolist())) == len(p) - 3
    for k in (0, 1):
        # (the top bins' middles within 1e-12 of 1 round to the same double: bins they cannot hold apart)
        middles = layout.middles(k)
        apart = middles < 1 - 1e-12
        assert apart.sum() > SCORE_BINS - 200
        assert np.array_equal(layout.bins(middles[apart], k), np.arange(SCORE_BINS)[apart])


def test_the_layout_is_centred_on_the_references_scores_and_as_fine_as_their_spread() -> None:
    r = np.random.default_rng(6)
    z = r.normal(-20.0, 0.5, 4000)
    layout = ScoreLayout.of_scores(binary_score_matrix(1 / (1 + np.exp(-z)), CLASSES, "yes"))
    assert layout.centres[1] == pytest.approx(-20.0, abs=0.05)
    assert layout.scales[1] == pytest.approx(0.5, rel=0.1)
    # the middle half of the reference's scores spans at least 400 bins
    q = np.quantile(1 / (1 + np.exp(-z)), [0.25, 0.75])
    assert np.diff(layout.bins(q, 1))[0] >= 400
    # a constant score (or one value over most rows) still gets a usable scale
    constant = ScoreLayout.of_scores(np.array([[0.9, 0.1]] * 50 + [[0.8, 0.2]]))
    assert all(s > 0 and np.isfinite(s) for s in constant.scales)
    assert ScoreLayout.from_json(layout.to_json()) == layout


def test_summaries_on_different_bins_merge_onto_the_first_ones() -> None:
    """A window whose hours were summarised against two references (two layouts): each bin's
    count moves to the bin of its middle, and the AUC stays within 0.001 of scikit-learn's."""
    y, p = _rows("spread", seed=7)
    half = len(y) // 2
    one = ScoreLayout.of_scores(binary_score_matrix(_rows("spread", seed=8)[1], CLASSES, "yes"))
    two = ScoreLayout((0.4, -0.4), (2.0, 2.0))
    truth, scores = np.where(y, "yes", "no"), binary_score_matrix(p, CLASSES, "yes")
    parts = [
        ClassificationSummary.of(CLASSES, truth[s], truth[s], np.zeros(half), scores[s], layout=layout)
        for s, layout in ((slice(0, half), one), (slice(half, None), two))
    ]
    merged = ClassificationSummary(CLASSES)
    for part in parts:
        merged.add_parts(*part.to_parts())
    assert merged.layout == one and merged.hist.sum() == 2 * len(y)
    auc = classification_metrics(merged, "yes").values["roc_auc"]
    assert auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-3)
    # the label-free score summaries merge the same way
    predicted = (p > 0.5).astype(float)
    a = ScoreSummary.of(scores[:half], predicted[:half], one)
    b = ScoreSummary.from_parts(*ScoreSummary.of(scores[half:], predicted[half:], two).to_parts())
    both = a.merge(b)
    assert both.layout == one and both.n == len(y)


@pytest.mark.parametrize("old_bins", sorted(OLD_MIDDLES))
def test_summaries_stored_on_earlier_bins_are_still_read(old_bins: int) -> None:
    """Summaries stored before layouts (1,000 equal bins of [0, 1]; 4,096 equal bins of the logit
    clipped at 1e-8): each bin's count moves to the bin of its middle, so a month of old and new
    hours still merges."""
    old = np.zeros((2, 2, old_bins), dtype=np.int64)
    high, low = int(old_bins * 0.9), int(old_bins * 0.1)
    old[1, 1, high] = 7  # seven positives scored high
    old[1, 0, low] = 5
    s = ClassificationSummary(CLASSES)
    s.add_parts(ClassificationSummary(CLASSES).to_parts()[0] | {"score_layout": None}, pack_counts(old.ravel()))
    standard = ScoreLayout.standard(2)
    assert s.layout == standard and s.hist.sum() == 12 and s.hist.shape == (2, 2, SCORE_BINS)
    assert s.hist[1, 1, standard.bins(OLD_MIDDLES[old_bins][high : high + 1], 1)[0]] == 7
    assert s.hist[1, 0, standard.bins(OLD_MIDDLES[old_bins][low : low + 1], 1)[0]] == 5
    again = stored_histogram(old.ravel(), 2, None, standard)
    assert np.array_equal(again, s.hist)


def test_pair_summaries_keep_their_bins_and_read_the_ones_stored_before() -> None:
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    r = np.random.default_rng(9)
    y = r.random(400) < 0.4
    champion_p, shadow_p = (1e-9 / (1 + np.exp(-(y * 1.5 + r.normal(0, 1, 400)))) for _ in range(2))
    champion = [(t, f"r{i}", "yes", "yes" if y[i] else "no", float(champion_p[i])) for i in range(400)]
    shadow = [(t, f"r{i}", "yes", None, float(shadow_p[i])) for i in range(400)]
    layout = ScoreLayout.of_scores(binary_score_matrix(champion_p, CLASSES, "yes")).only(1)
    s = PairSummary.of(champion, shadow, "yes", layout)
    again = PairSummary.from_parts(*s.to_parts())
    assert again.layout == layout and np.array_equal(again.keys, s.keys)
    pairs = again.pairs()
    assert pairs.champion_scores is not None and len(np.unique(pairs.champion_scores)) > 100  # not one bin
    stats, blob = s.to_parts()
    stats.pop("score_layout")
    old = PairSummary.from_parts(stats, blob)  # read as the 4,096 logit bins' quarters
    assert old.layout == ScoreLayout.standard(1) and old.weights.sum() == s.weights.sum()
