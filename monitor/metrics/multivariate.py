"""Multivariate drift: how badly a model of the reference's joint distribution rebuilds a window's
rows (data-reconstruction error, NannyML's method), which moves when the features stop moving
together as they did, even while every feature's own distribution stays put.

Fitted on the reference: numerical features standardised (a missing or infinite value takes the
mean), categorical ones encoded by their share of the reference (an unseen category 0, a missing
value the share of missing ones), then standardised too; principal components keep
``EXPLAINED_VARIANCE`` of the variance. A row's error is the Euclidean distance between it and its
reconstruction from those components.

Mergeable: an hour keeps the number of rows and the sum and sum of squares of their errors.

The decision needs no threshold chosen by hand: the reference's rows, each scored by components
fitted without it (5-fold), give the error's mean and spread on data like the reference; a
window's mean error over n rows is drifted when it is further than ``Z`` standard errors from that
mean (the standard error of both means, the reference's and the window's). In-sample errors would
be too small: the components were fitted to exactly those rows.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from math import sqrt
from typing import Any

import numpy as np

RECONSTRUCTION_COLUMN = "_reconstruction"  # the bucket summary, and the reference's fitted model
BASELINE_COLUMN = "_reconstruction_baseline"  # a segment's reference error, among its extras
EXPLAINED_VARIANCE = 0.65  # NannyML's default
FOLDS = 10  # out-of-fold errors from components fitted on 90 % of the rows: within a tenth of
Z = 3.0
# The widest model the reconstruction is fitted for: its features in schema order (components of
# 5,000 columns are 5,000 x k numbers stored with the reference and multiplied per row).
MAX_FEATURES = 500


@dataclass(frozen=True)
class Reconstruction:
    numerical: list[str]
    categorical: list[str]
    center: np.ndarray  # per encoded column (numerical, then categorical)
    scale: np.ndarray
    shares: list[dict[str, float]]  # per categorical feature: its reference share per category
    missing_share: list[float]
    components: np.ndarray  # k x encoded columns

    @property
    def width(self) -> int:
        return len(self.numerical) + len(self.categorical)

    def encode(self, numbers: np.ndarray, categories: Sequence[Sequence[str | None]]) -> np.ndarray:
        """Standardised rows x columns: ``numbers`` rows x numerical features (NaN, ±inf missing),
        ``categories`` one list of values per categorical feature."""
        k = len(self.numerical)
        x = _unscaled(numbers, categories, self.center[:k], self.shares, self.missing_share)
        out: np.ndarray = (x - self.center) / self.scale
        return out

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Each standardised row's distance from its reconstruction."""
        return _errors(x, self.components)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "reconstruction",
            "numerical": self.numerical,
            "categorical": self.categorical,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "shares": self.shares,
            "missing_share": self.missing_share,
            "components": self.components.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Reconstruction:
        width = len(d["numerical"]) + len(d["categorical"])
        return cls(
            list(d["numerical"]),
            list(d["categorical"]),
            np.asarray(d["center"], dtype=float),
            np.asarray(d["scale"], dtype=float),
            [dict(s) for s in d["shares"]],
            [float(v) for v in d["missing_share"]],
            np.asarray(d["components"], dtype=float).reshape(-1, width),
        )


def _rows(numbers: np.ndarray, categories: Sequence[Sequence[str | None]]) -> int:
    return len(numbers) if numbers.size or not categories else len(categories[0])


def _unscaled(
    numbers: np.ndarray,
    categories: Sequence[Sequence[str | None]],
    fill: np.ndarray,
    shares: list[dict[str, float]],
    missing_share: list[float],
) -> np.ndarray:
    """Rows x columns before standardising, as the model reads them: a numerical value missing or
    ±inf takes ``fill`` (the reference's mean), a category its share of the reference (unseen 0,
    a missing value the share of missing ones)."""
    k = len(fill)
    x = np.empty((_rows(numbers, categories), k + len(categories)))
    if k:
        nums = np.where(np.isfinite(numbers), numbers, np.nan)
        x[:, :k] = np.where(np.isnan(nums), fill, nums)
    for j, values in enumerate(categories):
        share, missing = shares[j], missing_share[j]
        x[:, k + j] = [missing if v is None else share.get(v, 0.0) for v in values]
    return x


def _errors(x: np.ndarray, components: np.ndarray) -> np.ndarray:
    # the standardised data is centred on the reference: reconstruction is a projection
    residual = x - (x @ components.T) @ components
    out: np.ndarray = np.sqrt(np.einsum("ij,ij->i", residual, residual))
    return out


def _components(x: np.ndarray, n: float | int = EXPLAINED_VARIANCE) -> np.ndarray:
    """The principal components keeping ``n`` of the variance (a share) or ``n`` of them."""
    from sklearn.decomposition import PCA  # scikit-learn's import costs ~0.5 s; only here

    with warnings.catch_warnings():
        # a reference with no variance at all divides 0 by 0 in its explained-variance ratios: the
        # one component kept then rebuilds every row exactly, which is what such a reference says
        warnings.simplefilter("ignore", RuntimeWarning)
        pca = PCA(n_components=n, svd_solver="full").fit(x)
    comps: np.ndarray = pca.components_
    return comps


@dataclass(frozen=True)
class Baseline:
    """The reconstruction error of reference rows scored by components fitted without them."""

    mean: float
    sd: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "reconstruction_baseline", "mean": self.mean, "sd": self.sd, "n": self.n}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Baseline:
        return cls(float(d["mean"]), float(d["sd"]), int(d["n"]))

    @classmethod
    def of(cls, errors: np.ndarray) -> Baseline:
        return cls(float(errors.mean()), float(errors.std(ddof=1)) if len(errors) > 1 else 0.0, len(errors))


def fit_reconstruction(
    numerical: list[str],
    numbers: np.ndarray,
    categorical: list[str],
    categories: Sequence[Sequence[str | None]],
    seed: int = 0,
) -> tuple[Reconstruction, np.ndarray] | None:
    """The reconstruction model of the reference's rows, and each row's out-of-fold error (what
    baselines are taken from). None when there are fewer than two features or ``2 x FOLDS`` rows."""
    n = _rows(numbers, categories)
    if len(numerical) + len(categorical) < 2 or n < 2 * FOLDS:
        return None
    shares, missing = [], []
    for values in categories:
        counted = Counter(v for v in values if v is not None)
        shares.append({v: c / n for v, c in counted.items()})
        missing.append((n - sum(counted.values())) / n)
    nums = np.where(np.isfinite(numbers), numbers, np.nan)
    means = np.array([np.nanmean(c) if (~np.isnan(c)).any() else 0.0 for c in nums.T])
    raw = _unscaled(numbers, categories, means, shares, missing)
    center = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x = (raw - center) / scale
    model = Reconstruction(numerical, categorical, center, scale, shares, missing, _components(x))
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    out_of_fold = np.empty(n)
    for f in range(FOLDS):
        held = folds == f
        # as many components as the model: chosen again by variance, a fold could keep one more
        # or one fewer, and its errors be on another scale
        out_of_fold[held] = _errors(x[held], _components(x[~held], len(model.components)))
    return model, out_of_fold


@dataclass
class ReconstructionSummary:
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, errors: np.ndarray) -> ReconstructionSummary:
        e = np.asarray(errors, dtype=float)
        return cls(len(e), float(e.sum()), float(np.square(e).sum()))

    def merge(self, other: ReconstructionSummary) -> ReconstructionSummary:
        return ReconstructionSummary(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    def to_parts(self) -> tuple[dict[str, Any], None]:
        return {"type": "reconstruction", "n": self.n, "sum": self.total, "sum_sq": self.total_sq}, None

    @classmethod
    def from_parts(cls, stats: dict[str, Any], counts: bytes | None = None) -> ReconstructionSummary:
        return cls(int(stats["n"]), float(stats["sum"]), float(stats["sum_sq"]))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")


@dataclass(frozen=True)
class ReconstructionTest:
    value: float  # the window's mean error
    lower: float
    upper: float
    drifted: bool


def reconstruction_test(s: ReconstructionSummary, baseline: Baseline, z: float = Z) -> ReconstructionTest:
    """The window's mean error against the reference's, ``z`` standard errors either way."""
    se = baseline.sd * sqrt(1 / s.n + 1 / baseline.n)
    lower, upper = baseline.mean - z * se, baseline.mean + z * se
    return ReconstructionTest(s.mean, lower, upper, not lower <= s.mean <= upper)
