"""Mergeable summaries of a model's labelled predictions, so quality over a month costs what
quality over an hour costs, and a late label changes one hour's summary, not a month of rows.

Classification keeps the confusion counts (accuracy, precision, recall and F1 from them are
exact), the sum of the log loss over scored rows (exact), and per class a histogram of the
normalised score among rows of that class and among the others, on bins the reference places
(``monitor.metrics.score_layout``): ROC AUC from them treats two scores in one bin as tied, which
moves it by at most half the share of positive-negative pairs falling in the same bin.
It also keeps, per minute, labelled rows and errors: the error stream the concept-drift detector
reads (``monitor.metrics.error_stream``).

Regression keeps the sums behind MAE, RMSE, MAPE and the mean error, the target's mean and
centred second moment (merged with Chan's formula, so R² does not lose digits to large
targets), and the residuals on edges taken from the reference's residuals, for the
two-sample test of concept drift.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.metrics.profiles import NumericSummary, pack_counts, summary_to_parts, unpack_counts
from monitor.metrics.quality import QualityResult
from monitor.metrics.score_layout import SCORE_BINS, ScoreLayout, stored_histogram

EPS = float(np.finfo(np.float64).eps)  # probabilities are clipped to [EPS, 1 - EPS], as scikit-learn's log loss

# Column names of the quality summary among a bucket's summaries, and of the reference's quality
# and residuals among its column summaries (a leading underscore: no feature column starts so).
QUALITY_COLUMN = "_quality"
RESIDUALS_COLUMN = "_residuals"


def _confusion_key(y: str, yhat: str) -> str:
    return f"{y}\x1f{yhat}"


def confusion_cells(confusion: Mapping[str, int]) -> Iterator[tuple[str, str, int]]:
    """(truth, prediction, rows) of each cell of a summary's confusion counts."""
    for key, count in confusion.items():
        y, yhat = key.split("\x1f", 1)
        yield y, yhat, count


@dataclass
class ClassificationSummary:
    classes: list[str]
    n_predictions: int = 0  # predictions in the buckets, labelled or not: label coverage's base
    confusion: dict[str, int] = field(default_factory=dict)  # "truth\x1fprediction" -> rows
    n_scored: int = 0
    log_loss_sum: float = 0.0
    # [class, 0 = rows of other classes / 1 = rows of this class, bin]: the class's normalised score
    hist: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, SCORE_BINS), dtype=np.int64))
    minutes: dict[int, list[int]] = field(default_factory=dict)  # epoch minute -> [labelled, errors]
    # the bins of ``hist``: None until scores are added or a stored summary is (then its layout)
    layout: ScoreLayout | None = None

    def __post_init__(self) -> None:
        if self.hist.shape[0] != len(self.classes):
            self.hist = np.zeros((len(self.classes), 2, SCORE_BINS), dtype=np.int64)

    @property
    def n_labelled(self) -> int:
        return sum(self.confusion.values())

    @classmethod
    def of(
        cls,
        classes: list[str],
        y_true: np.ndarray,
        y_pred: np.ndarray,
        minutes: np.ndarray,
        scores: np.ndarray | None = None,
        n_predictions: int | None = None,
        layout: ScoreLayout | None = None,
    ) -> ClassificationSummary:
        """The summary of labelled rows (``scores``: one column per class, NaN rows unscored;
        ``layout``: their bins, the standard layout if None), as the rollup computes it in SQL."""
        s = cls(list(classes), len(y_true) if n_predictions is None else n_predictions)
        s.layout = layout or ScoreLayout.standard(len(s.classes))
        for y, yhat, m in zip(y_true, y_pred, minutes, strict=True):
            s.add_row_counts(str(y), str(yhat), int(m), 1)
        if scores is not None and len(y_true):
            sc = np.asarray(scores, dtype=float)
            ok = ~np.isnan(sc).any(axis=1) & (np.nansum(sc, axis=1) > 0)
            p = sc[ok] / sc[ok].sum(axis=1, keepdims=True)
            truth = np.array([s.classes.index(str(y)) for y in np.asarray(y_true)[ok]], dtype=np.int64)
            s.n_scored = int(ok.sum())
            p_true = np.clip(p[np.arange(len(p)), truth], EPS, 1 - EPS)
            s.log_loss_sum = float(-np.log(p_true).sum())
            bins = s.layout.bins(p)
            for i in range(len(s.classes)):
                own = truth == i
                s.hist[i, 1] += np.bincount(bins[own, i], minlength=SCORE_BINS)
                s.hist[i, 0] += np.bincount(bins[~own, i], minlength=SCORE_BINS)
        return s

    def add_row_counts(self, y: str, yhat: str, minute: int, n: int) -> None:
        key = _confusion_key(y, yhat)
        self.confusion[key] = self.confusion.get(key, 0) + n
        m = self.minutes.setdefault(minute, [0, 0])
        m[0] += n
        if y != yhat:
            m[1] += n

    def to_parts(self) -> tuple[dict[str, Any], bytes]:
        stats = {
            "kind": "classification",
            "n_predictions": self.n_predictions,
            "confusion": self.confusion,
            "n_scored": self.n_scored,
            "log_loss_sum": self.log_loss_sum,
            "minutes": [[m, n, e] for m, (n, e) in sorted(self.minutes.items())],
            "score_layout": (self.layout or ScoreLayout.standard(len(self.classes))).to_json(),
        }
        return stats, pack_counts(self.hist.ravel())

    def add_parts(self, stats: dict[str, Any], counts: bytes | None) -> None:
        self.n_predictions += int(stats["n_predictions"])
        for k, c in stats["confusion"].items():
            self.confusion[k] = self.confusion.get(k, 0) + int(c)
        self.n_scored += int(stats["n_scored"])
        self.log_loss_sum += float(stats["log_loss_sum"])
        if counts is not None:
            stored = stats.get("score_layout")
            if self.layout is None:  # the first summary added: its bins are kept
                k = len(self.classes)
                self.layout = ScoreLayout.standard(k) if stored is None else ScoreLayout.from_json(stored)
            self.hist += stored_histogram(unpack_counts(counts), len(self.classes), stored, self.layout)
        for m, n, e in stats["minutes"]:
            acc = self.minutes.setdefault(int(m), [0, 0])
            acc[0] += int(n)
            acc[1] += int(e)


@dataclass
class RegressionSummary:
    n_predictions: int = 0
    n: int = 0  # labelled rows
    sum_error: float = 0.0  # error = prediction - truth
    sum_abs_error: float = 0.0
    sum_sq_error: float = 0.0
    mean_y: float = 0.0
    m2_y: float = 0.0  # Σ (y - mean)²
    sum_ape: float = 0.0  # Σ |error / y| over non-zero targets
    n_nonzero: int = 0
    residuals: NumericSummary | None = None

    @classmethod
    def of(
        cls,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        residual_edges: np.ndarray | None = None,
        n_predictions: int | None = None,
    ) -> RegressionSummary:
        y, yhat = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
        s = cls(len(y) if n_predictions is None else n_predictions)
        s.add_rows(y, yhat, residual_edges)
        return s

    def add_rows(self, y: np.ndarray, yhat: np.ndarray, residual_edges: np.ndarray | None) -> None:
        e = yhat - y
        if len(y):
            self.add_moments(len(y), float(y.mean()), float(np.square(y - y.mean()).sum()))
        self.sum_error += float(e.sum())
        self.sum_abs_error += float(np.abs(e).sum())
        self.sum_sq_error += float(np.square(e).sum())
        nonzero = y != 0
        self.sum_ape += float(np.abs(e[nonzero] / y[nonzero]).sum())
        self.n_nonzero += int(nonzero.sum())
        if residual_edges is not None:
            part = NumericSummary.of(e, residual_edges)
            if self.residuals is None:
                self.residuals = part
            else:
                self.residuals = self.residuals.merge(part)

    def add_moments(self, n: int, mean: float, m2: float) -> None:
        """Chan et al.'s pairwise update of the target's mean and centred second moment."""
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean_y
        self.m2_y += m2 + delta * delta * self.n * n / total
        self.mean_y += delta * n / total
        self.n = total

    def to_parts(self) -> tuple[dict[str, Any], bytes | None]:
        stats: dict[str, Any] = {
            "kind": "regression",
            "n_predictions": self.n_predictions,
            "n": self.n,
            "sum_error": self.sum_error,
            "sum_abs_error": self.sum_abs_error,
            "sum_sq_error": self.sum_sq_error,
            "mean_y": self.mean_y,
            "m2_y": self.m2_y,
            "sum_ape": self.sum_ape,
            "n_nonzero": self.n_nonzero,
        }
        if self.residuals is None:
            return stats, None
        rstats, counts = summary_to_parts(self.residuals)
        stats["residuals"] = rstats
        return stats, counts

    def add_parts(self, stats: dict[str, Any], counts: bytes | None) -> None:
        self.n_predictions += int(stats["n_predictions"])
        self.add_moments(int(stats["n"]), float(stats["mean_y"]), float(stats["m2_y"]))
        self.sum_error += float(stats["sum_error"])
        self.sum_abs_error += float(stats["sum_abs_error"])
        self.sum_sq_error += float(stats["sum_sq_error"])
        self.sum_ape += float(stats["sum_ape"])
        self.n_nonzero += int(stats["n_nonzero"])
        if self.residuals is not None and counts is not None and "residuals" in stats:
            self.residuals.add_parts(stats["residuals"], counts)


QualitySummary = ClassificationSummary | RegressionSummary


# -- metrics from summaries -----------------------------------------------------------------------


def _auc_from_hist(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC from binned scores; a positive and a negative in one bin count half."""
    n_pos, n_neg = pos.sum(), neg.sum()
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def classification_metrics(s: ClassificationSummary, positive_class: str | None = None) -> QualityResult:
    """The metrics of ``monitor.metrics.quality.classification_quality`` from a summary."""
    n = s.n_labelled
    if n == 0:
        return QualityResult({}, 0, s.n_predictions, ["no labelled predictions in the window"])
    k = len(s.classes)
    index = {c: i for i, c in enumerate(s.classes)}
    cm = np.zeros((k, k), dtype=np.int64)  # [truth, prediction]
    for y, yhat, count in confusion_cells(s.confusion):
        cm[index[y], index[yhat]] += count
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # zero_division=0, as scikit-learn's
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1_den = 2 * tp + (predicted - tp) + (actual - tp)
        f1 = np.where(f1_den > 0, 2 * tp / f1_den, 0.0)
    values: dict[str, float] = {"accuracy": float(tp.sum() / n)}
    for i, c in enumerate(s.classes):
        values[f"precision.{c}"] = float(precision[i])
        values[f"recall.{c}"] = float(recall[i])
        values[f"f1.{c}"] = float(f1[i])
        values[f"support.{c}"] = float(actual[i])
    values.update(
        {"precision.macro": float(precision.mean()), "recall.macro": float(recall.mean()), "f1.macro": float(f1.mean())}
    )
    if positive_class is not None:
        for m in ("precision", "recall", "f1"):
            values[m] = values[f"{m}.{positive_class}"]
    notes: list[str] = []
    if s.n_scored:
        if s.n_scored < n:
            notes.append(f"scores missing on {n - s.n_scored} of {n} labelled predictions")
        present = [i for i in range(k) if s.hist[i, 1].sum() > 0]
        if len(present) < 2:
            notes.append("ROC AUC needs both outcomes among the scored predictions")
        elif positive_class is not None:
            i = index[positive_class]
            values["roc_auc"] = _auc_from_hist(s.hist[i, 1], s.hist[i, 0])
        elif len(present) == k:
            values["roc_auc"] = float(np.mean([_auc_from_hist(s.hist[i, 1], s.hist[i, 0]) for i in range(k)]))
        else:
            notes.append("ROC AUC (one-vs-rest) needs every class among the scored predictions")
        values["log_loss"] = s.log_loss_sum / s.n_scored
    return QualityResult(values, n, s.n_predictions, notes)


def regression_metrics(s: RegressionSummary) -> QualityResult:
    """The metrics of ``monitor.metrics.quality.regression_quality`` from a summary."""
    n = s.n
    if n == 0:
        return QualityResult({}, 0, s.n_predictions, ["no labelled predictions in the window"])
    values = {
        "mae": s.sum_abs_error / n,
        "rmse": float(np.sqrt(s.sum_sq_error / n)),
        "mean_error": s.sum_error / n,
    }
    notes: list[str] = []
    if s.n_nonzero:
        values["mape"] = s.sum_ape / s.n_nonzero * 100
        if s.n_nonzero < n:
            notes.append(f"MAPE leaves out {n - s.n_nonzero} zero targets")
    if n >= 2:
        # scikit-learn's r2_score: 1 - SSE/SST, and 0.0 for a constant target fitted exactly.
        if s.m2_y > 0:
            values["r2"] = 1 - s.sum_sq_error / s.m2_y
        else:
            values["r2"] = 1.0 if s.sum_sq_error == 0 else 0.0
    return QualityResult(values, n, s.n_predictions, notes)


def quality_metrics(s: QualitySummary, positive_class: str | None = None) -> QualityResult:
    if isinstance(s, ClassificationSummary):
        return classification_metrics(s, positive_class)
    return regression_metrics(s)
