"""Model quality against ground truth: classification and regression metrics (scikit-learn's
definitions), always reported with the sample size and label coverage they rest on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm


@dataclass(frozen=True)
class QualityResult:
    """``values``: metric name → value. Per-class metrics are named ``precision.<class>`` etc."""

    values: dict[str, float]
    n_labelled: int
    n_predictions: int
    notes: list[str] = field(default_factory=list)

    @property
    def label_coverage(self) -> float:
        return self.n_labelled / self.n_predictions if self.n_predictions else 0.0


def classification_quality(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    classes: Sequence[str],
    *,
    scores: np.ndarray | None = None,
    positive_class: str | None = None,
    n_predictions: int | None = None,
) -> QualityResult:
    """Accuracy, precision, recall and F1 (per class and macro; binary also for the positive
    class), ROC AUC and log loss when class probabilities are given (``scores``: one column per
    class, in ``classes`` order; rows may be NaN where a prediction carried no scores)."""
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    n = len(yt)
    total = n if n_predictions is None else n_predictions
    if n == 0:
        return QualityResult({}, 0, total, ["no labelled predictions in the window"])
    labels = list(classes)
    values: dict[str, float] = {"accuracy": float(skm.accuracy_score(yt, yp))}
    p, r, f, support = skm.precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    for i, c in enumerate(labels):
        values[f"precision.{c}"] = float(p[i])
        values[f"recall.{c}"] = float(r[i])
        values[f"f1.{c}"] = float(f[i])
        values[f"support.{c}"] = float(support[i])
    mp, mr, mf, _ = skm.precision_recall_fscore_support(yt, yp, labels=labels, average="macro", zero_division=0)
    values.update({"precision.macro": float(mp), "recall.macro": float(mr), "f1.macro": float(mf)})
    if positive_class is not None:
        values["precision"] = values[f"precision.{positive_class}"]
        values["recall"] = values[f"recall.{positive_class}"]
        values["f1"] = values[f"f1.{positive_class}"]
    notes: list[str] = []
    if scores is not None:
        s = np.asarray(scores, dtype=float)
        have = ~np.isnan(s).any(axis=1)
        if have.sum() < n:
            notes.append(f"scores missing on {n - int(have.sum())} of {n} labelled predictions")
        st, ss = yt[have], s[have]
        present = set(st.tolist())
        if len(present) < 2:
            notes.append("ROC AUC needs both outcomes among the scored predictions")
        elif positive_class is not None:
            pos = labels.index(positive_class)
            values["roc_auc"] = float(skm.roc_auc_score(st == positive_class, ss[:, pos]))
        elif present == set(labels):
            values["roc_auc"] = float(skm.roc_auc_score(st, _normalised(ss), labels=labels, multi_class="ovr"))
        else:
            notes.append("ROC AUC (one-vs-rest) needs every class among the scored predictions")
        if len(st):
            # log_loss reads probability columns in sorted label order, whatever ``labels`` says.
            order = sorted(range(len(labels)), key=lambda i: labels[i])
            values["log_loss"] = float(skm.log_loss(st, _normalised(ss)[:, order], labels=[labels[i] for i in order]))
    return QualityResult(values, n, total, notes)


def _normalised(scores: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to one (binary scores often carry only the positive class's)."""
    sums = scores.sum(axis=1, keepdims=True)
    out: np.ndarray = np.divide(scores, sums, out=np.full_like(scores, 1.0 / scores.shape[1]), where=sums > 0)
    return out


def binary_score_matrix(
    positive_probability: Sequence[float], classes: Sequence[str], positive_class: str
) -> np.ndarray:
    """Two columns in ``classes`` order from the probability of the positive class."""
    p = np.asarray(positive_probability, dtype=float)
    out = np.empty((len(p), 2))
    pos = list(classes).index(positive_class)
    out[:, pos] = p
    out[:, 1 - pos] = 1 - p
    return out


def regression_quality(
    y_true: Sequence[float], y_pred: Sequence[float], *, n_predictions: int | None = None
) -> QualityResult:
    """MAE, RMSE, MAPE (over non-zero targets, in %) and R²."""
    yt, yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    n = len(yt)
    total = n if n_predictions is None else n_predictions
    if n == 0:
        return QualityResult({}, 0, total, ["no labelled predictions in the window"])
    err = yp - yt
    values = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mean_error": float(np.mean(err)),
    }
    notes: list[str] = []
    nonzero = yt != 0
    if nonzero.any():
        values["mape"] = float(np.mean(np.abs(err[nonzero] / yt[nonzero])) * 100)
        if not nonzero.all():
            notes.append(f"MAPE leaves out {int((~nonzero).sum())} zero targets")
    if n >= 2:
        values["r2"] = float(skm.r2_score(yt, yp))
    return QualityResult(values, n, total, notes)
