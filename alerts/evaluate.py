"""Evaluating rules on metric points: pure, given the points and a way to look up baselines.

``monitor`` hands over its points as ``Sample``s (this package knows no tables); every series —
one (model, metric, labels, window length) — is judged on its newest window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts import templates
from alerts.rules import Rule, compare, parse_duration
from alerts.state import fingerprint


@dataclass(frozen=True)
class Sample:
    model: str
    version: str
    metric: str
    labels: dict[str, str]
    window_start: datetime
    window_end: datetime
    value: float | None
    sample_size: int
    threshold: float | None = None
    drifted: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> timedelta:
        return self.window_end - self.window_start

    def series(self) -> tuple[str, str, tuple[tuple[str, str], ...], timedelta]:
        return self.model, self.metric, tuple(sorted(self.labels.items())), self.window


def window_name(length: timedelta) -> str:
    """'10m', '1h', '7d': the largest unit the length is a whole number of."""
    minutes = int(length.total_seconds() // 60)
    if minutes % 1440 == 0 and minutes:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 and minutes else f"{minutes}m"


@dataclass(frozen=True)
class Evaluation:
    rule: str
    fingerprint: str
    labels: dict[str, str]  # the alert's labels: alertname, model, metric, window, the series', the rule's
    holds: bool | None  # None: undecided (``note`` says why), the alert's state stays as it is
    sample: Sample
    threshold: float | None
    baseline: float | None = None
    note: str = ""  # why a series was not judged (too few rows, no decision, no value, no baseline)


# (sample, how far back) -> the same series' value in the window ending that much earlier
BaselineLookup = Callable[[Sample, timedelta], float | None]


def newest_per_series(samples: Iterable[Sample]) -> list[Sample]:
    newest: dict[Any, Sample] = {}
    for s in samples:
        key = s.series()
        if key not in newest or s.window_end > newest[key].window_end:
            newest[key] = s
    return list(newest.values())


def alert_labels(rule: Rule, s: Sample) -> dict[str, str]:
    return {
        **s.labels,
        "alertname": rule.name,
        "model": s.model,
        "metric": s.metric,
        "window": window_name(s.window),
        "severity": rule.severity.value,
        **rule.labels,
    }


def evaluate(rule: Rule, samples: Iterable[Sample], baseline: BaselineLookup | None = None) -> list[Evaluation]:
    """One evaluation per series the rule matches."""
    out = []
    cond = rule.condition
    for s in newest_per_series(samples):
        if not rule.matches(s.model, s.metric, s.labels, s.window):
            continue
        labels = alert_labels(rule, s)
        fp = fingerprint(rule.name, labels)
        threshold = cond.threshold if cond.threshold is not None else s.threshold
        if s.sample_size < rule.min_sample_size:
            out.append(Evaluation(rule.name, fp, labels, None, s, threshold, note="too few rows"))
            continue
        if cond.drifted:
            # a point that made no decision (too few rows for its test) is undecided, not "no drift"
            note = "no decision" if s.drifted is None else ""
            out.append(Evaluation(rule.name, fp, labels, s.drifted, s, s.threshold, note=note))
            continue
        if s.value is None:
            out.append(Evaluation(rule.name, fp, labels, None, s, threshold, note="no value"))
            continue
        if cond.change is not None:
            c = cond.change
            base = baseline(s, parse_duration(c.baseline)) if baseline else None
            if base is None:
                out.append(Evaluation(rule.name, fp, labels, None, s, c.threshold, note="no baseline"))
                continue
            diff = s.value - base
            if c.relative:
                diff = diff / abs(base) if base else (0.0 if diff == 0 else float("inf") * (1 if diff > 0 else -1))
            out.append(Evaluation(rule.name, fp, labels, compare(c.op, diff, c.threshold), s, c.threshold, base))
            continue
        assert cond.op is not None and cond.threshold is not None
        compared = s.value if cond.on is None else s.details.get(cond.on)
        if not isinstance(compared, int | float):
            out.append(Evaluation(rule.name, fp, labels, None, s, cond.threshold, note=f"no {cond.on} bound"))
            continue
        out.append(Evaluation(rule.name, fp, labels, compare(cond.op, compared, cond.threshold), s, cond.threshold))
    return out


def render(rule: Rule, e: Evaluation, dashboard_url: str = "") -> dict[str, str]:
    """The rule's annotations with the evaluation's numbers filled in (``alerts.templates``: named
    values and labels only); a template that cannot be filled keeps its text rather than failing
    the alert."""
    s = e.sample
    values = {
        "rule": rule.name,
        "model": s.model,
        "version": s.version,
        "metric": s.metric,
        "value": "n/a" if s.value is None else f"{s.value:.4g}",
        "threshold": "n/a" if e.threshold is None else f"{e.threshold:.4g}",
        "baseline": "n/a" if e.baseline is None else f"{e.baseline:.4g}",
        "window_start": s.window_start.isoformat(),
        "window_end": s.window_end.isoformat(),
        "window": window_name(s.window),
        "sample_size": str(s.sample_size),
        "condition": rule.condition.describe(),
        "dashboard_url": dashboard_url,
        "severity": rule.severity.value,
    }
    return {key: templates.render(text, values, e.labels) for key, text in rule.annotations.items()}
