"""A shadow's pairs with the champion, summarised by the hour: hours merged give what pairing the
whole window gives, each pair is judged on the label either version has, and the paired ROC AUC
from the joint score histogram stays within a bin of DeLong's on the raw scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitor.metrics.comparison import PAIR_COUNTS, auc_paired
from monitor.metrics.pairs import PairingRow, PairSummary

START = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _rows(n: int, seed: int) -> tuple[list[PairingRow], list[PairingRow], np.ndarray]:
    """n requests over three hours, the shadow answering each 20 s after the champion (some across
    an hour's end), labels on the champion's rows of even requests and on the shadow's of every
    third; the shadow's scores rank the positives better."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.4
    champion, shadow = [], []
    for i in range(n):
        at = START + timedelta(seconds=10_800 * i / n)
        y = "leave" if truth[i] else "stay"
        a = float(np.clip(0.5 + 0.15 * (truth[i] - 0.5) + 0.2 * rng.standard_normal(), 0.001, 0.999))
        b = float(np.clip(0.5 + 0.35 * (truth[i] - 0.5) + 0.2 * rng.standard_normal(), 0.001, 0.999))
        champion.append((at, f"r{i}", "leave" if a > 0.5 else "stay", y if i % 2 == 0 else None, a))
        shadow.append(
            (at + timedelta(seconds=20), f"r{i}", "leave" if b > 0.5 else "stay", y if i % 3 == 0 else None, b)
        )
    return champion, shadow, truth


def _hour(rows: list[PairingRow], start: datetime, end: datetime) -> list[PairingRow]:
    return [r for r in rows if start <= r[0] < end]


def _by_hand(champion: list[PairingRow], shadow: list[PairingRow]) -> dict[str, int]:
    mine = {r[1]: r for r in shadow}
    counts = dict.fromkeys(PAIR_COUNTS, 0)
    for c in champion:
        s = mine[c[1]]
        counts["pairs"] += 1
        counts["agree"] += c[2] == s[2]
        y = c[3] or s[3]
        if y is None:
            continue
        counts[
            {(1, 1): "both_right", (1, 0): "champion_only", (0, 1): "challenger_only", (0, 0): "both_wrong"}[
                (int(c[2] == y), int(s[2] == y))
            ]
        ] += 1
        counts[f"cell_{int(y == 'leave')}{int(c[2] == 'leave')}{int(s[2] == 'leave')}"] += 1
    return counts


def test_hourly_pair_summaries_merge_to_the_pairs_of_the_whole_window() -> None:
    champion, shadow, _ = _rows(1500, 1)
    whole = PairSummary.of(champion, shadow, "leave")
    hours = [
        # an hour's champion rows with the shadow's an hour either side, stored and read back
        PairSummary.from_parts(
            *PairSummary.of(_hour(champion, h, h + HOUR), _hour(shadow, h - HOUR, h + 2 * HOUR), "leave").to_parts()
        )
        for h in (START + k * HOUR for k in range(4))
    ]
    merged = PairSummary.merged(hours)
    assert merged.counts == whole.counts == _by_hand(champion, shadow)
    assert merged.counts["pairs"] == 1500
    np.testing.assert_array_equal(merged.keys, whole.keys)
    np.testing.assert_array_equal(merged.weights, whole.weights)
    assert int(merged.weights.sum()) == sum(
        merged.counts[k] for k in ("both_right", "champion_only", "challenger_only", "both_wrong")
    )


def test_pairs_are_judged_on_the_label_either_version_has() -> None:
    at = START
    champion = [(at, "a", "leave", "leave", None), (at, "b", "stay", None, None), (at, "c", "stay", None, None)]
    shadow = [(at, "a", "stay", None, None), (at, "b", "leave", "leave", None), (at, "x", "stay", "stay", None)]
    s = PairSummary.of(champion, shadow, "leave")
    assert s.counts["pairs"] == 2 and s.counts["agree"] == 0  # "c" and "x" have no partner
    assert (s.counts["champion_only"], s.counts["challenger_only"]) == (1, 1)
    assert s.counts["cell_110"] == 1 and s.counts["cell_101"] == 1
    assert s.pairs().truth is None  # nothing scored


def test_a_request_answered_twice_pairs_with_the_answer_nearest_in_time() -> None:
    champion = [(START + HOUR, "a", "leave", "leave", None)]
    shadow = [(START, "a", "stay", None, None), (START + HOUR + timedelta(seconds=1), "a", "leave", None, None)]
    s = PairSummary.of(champion, shadow, "leave")
    assert s.counts["pairs"] == 1 and s.counts["agree"] == 1 and s.counts["both_right"] == 1


@pytest.mark.parametrize("seed", [2, 3])
def test_the_paired_auc_from_the_joint_histogram_is_delongs_within_a_bin(seed: int) -> None:
    champion, shadow, truth = _rows(3000, seed)
    pairs = PairSummary.of(champion, shadow, "leave").pairs()
    assert pairs.truth is not None and pairs.weights is not None
    assert pairs.champion_scores is not None and pairs.challenger_scores is not None
    from_cells = auc_paired(pairs.truth, pairs.champion_scores, pairs.challenger_scores, weights=pairs.weights)
    labelled = np.array([c[3] is not None or s[3] is not None for c, s in zip(champion, shadow, strict=True)])
    raw = auc_paired(
        truth[labelled],
        np.array([c[4] for c in champion])[labelled],
        np.array([s[4] for s in shadow])[labelled],
    )
    assert from_cells is not None and raw is not None and from_cells.n == raw.n == int(labelled.sum())
    theirs = roc_auc_score(truth[labelled], np.array([c[4] for c in champion])[labelled])
    assert from_cells.champion_value == pytest.approx(theirs, abs=1e-3)
    assert from_cells.value == pytest.approx(raw.value, abs=1e-3)
    assert from_cells.upper - from_cells.lower == pytest.approx(raw.upper - raw.lower, rel=0.02)
    assert from_cells.p_value < 0.05 and raw.p_value < 0.05
