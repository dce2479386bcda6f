"""How a model is monitored: its schedule, its windows and its drift tests."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The stat tests a column may name: those ``monitor.metrics.stattests`` registers, kept here so
# that validating a configuration needs none of the maths (registering a test of another name
# fails, and tests/unit/test_stattests.py holds the two equal).
STAT_TESTS = frozenset(
    {"anderson", "categories_2samp", "chisquare", "chisquare_2samp", "hellinger", "jensenshannon", "kl_div", "ks"}
    | {"largest_share_change", "psi", "quantile_wasserstein", "wasserstein", "z"}
)
QUALITY_METRICS = frozenset(
    {"accuracy", "precision", "recall", "f1", "f1.macro", "precision.macro", "recall.macro", "roc_auc", "log_loss"}
    | {"mae", "rmse", "mape", "r2"}
)
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# A window longer than this reads more summaries than the log holds (the log's retention is
# shorter), and an integer count of minutes past it is surely a mistake.
MAX_WINDOW = timedelta(days=366)


def parse_window(spec: str) -> timedelta:
    """'10m', '6h', '1d', '30d': whole minutes, because summaries are kept by the minute (for
    the last day) and by the hour."""
    m = _DURATION.match(spec)
    if not m or int(m.group(1)) == 0 or int(m.group(1)) > 1_000_000:
        raise ValueError(f"window {spec!r} must be a whole number of minutes, hours or days, like '10m', '1h', '7d'")
    length = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if length > MAX_WINDOW:
        raise ValueError(f"window {spec!r} is longer than {MAX_WINDOW.days} days")
    return length


class FeatureTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str | None = Field(
        None,
        description="a stat test name. Profile evidently: the feature's test. Profile calibrated: a p-value test "
        "replaces the significance test, a distance the effect size",
    )
    threshold: float | None = Field(None, gt=0, description="the named test's threshold")

    @field_validator("test")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in STAT_TESTS:
            raise ValueError(f"unknown stat test {v!r}; known: {', '.join(sorted(STAT_TESTS))}")
        return v


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule_seconds: int = Field(
        30,
        ge=10,
        description="how often the model's metrics are computed: a run costs what arrived since the last one",
    )
    windows: list[str] = Field(default_factory=lambda: ["1h", "1d"], min_length=1, max_length=10)
    stattest_profile: Literal["calibrated", "evidently"] = Field(
        "calibrated",
        description="calibrated: a feature drifts when its change is significant (two-sample test, Benjamini-"
        "Hochberg across the window's features at fdr_alpha) and material (effect size at least its threshold). "
        "evidently: Evidently's choice of test and threshold, to the number",
    )
    min_sample_size: int = Field(
        100,
        ge=1,
        description="fewer rows in a window than this (labelled rows, for the quality drop): drift and the quality "
        "drop are reported but not decided (drifted null)",
    )
    drift_share: float = Field(0.5, gt=0, le=1, description="dataset drift when this share of features drifts")
    fdr: bool = Field(
        False, description="profile evidently: Benjamini-Hochberg across p-value tests (the calibrated profile always)"
    )
    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="the significance level, across the window's features")
    feature_tests: dict[str, FeatureTest] = Field(
        default_factory=dict, description="per column ('age', 'prediction', 'scores.<class>'): test and threshold"
    )
    quality_tolerance: float = Field(
        0.01,
        ge=0,
        description="relative quality drop that counts as concept drift, when it is also significant at fdr_alpha "
        "(accuracy, recall, precision, ROC AUC, MAE); for metrics without a standard error the tolerance alone decides",
    )
    concept_drift_detector: Literal["adwin", "ddm"] = Field(
        "adwin",
        description="the change detector run on the labelled predictions' error stream, minute by minute across "
        "windows: adwin (ADWIN, the default: no more false alarms than River's on SEA and Agrawal streams) or ddm",
    )
    quality_metric: str | None = Field(
        None,
        description="the metric the quality drop is measured on; default accuracy (classification) or mae (regression)",
    )
    segment_top_values: int = Field(
        10,
        ge=0,
        le=100,
        description="segment values tracked per segment column: the reference's most frequent, chosen at its upload",
    )
    comparison_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1,
        description="the confidence of a challenger's comparison intervals (and 1 - it the significance of its "
        "decision): a rule on the lower bound says 'better by at least x with (1 + confidence) / 2 one-sided "
        "confidence'",
    )
    protected_attributes: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="segment columns that are protected attributes: each window gets, for a binary classifier, "
        "Fairlearn's fairness measures across their tracked values (demographic parity, equal opportunity, "
        "equalized odds, each group's selection, true and false positive rates)",
    )
    fairness_ratio_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="a fairness ratio is decided violating (drifted) when its 95 % interval lies wholly below this "
        "(0.8: the four-fifths rule)",
    )
    fairness_difference_threshold: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="a fairness difference is decided violating (drifted) when its 95 % interval lies wholly "
        "above this",
    )

    @field_validator("quality_metric")
    @classmethod
    def _quality_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in QUALITY_METRICS:
            raise ValueError(f"unknown quality metric {v!r}; known: {', '.join(sorted(QUALITY_METRICS))}")
        return v

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        lengths = [parse_window(w) for w in v]
        if len(set(lengths)) != len(lengths):
            raise ValueError("duplicate windows (the same length written twice, e.g. '60m' and '1h')")
        return v

    def window_lengths(self) -> list[timedelta]:
        return [parse_window(w) for w in self.windows]
