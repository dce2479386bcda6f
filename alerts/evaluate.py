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
    """The series' labels, the service's and the rule's own; a label whose value is empty is
    absent, as Alertmanager reads it (so a rule's ``{feature: ""}`` removes the series' label, as a
    Prometheus rule's does, and the fingerprint is of the labels Alertmanager keeps)."""
    labels = {
        **s.labels,
        "alertname": rule.name,
        "model": s.model,
        "metric": s.metric,
        "window": window_name(s.window),
        "severity": rule.severity.value,
        **rule.labels,
    }
    return {k: v for k, v in labels.items() if v != ""}


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


def render(rule: Rule, e: Evaluation, dashboard_url: str = "", *, resolved: bool = False) -> dict[str, str]:
    """The rule's annotations with the evaluation's numbers filled in (``alerts.templates``: named
    values and labels only); a template that cannot be filled keeps its text rather than failing
    the alert. A resolved alert says what holds now: its summary and description are the rule's
    ``resolved_summary`` and ``resolved_description`` if it has them, else words of the service's
    (the firing ones, "late_payments drifted", were repeated on the resolved notification)."""
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
        "drifted_features": drifted_features(s.details),
    }
    annotations = {**default_annotations(rule, e), **rule.annotations}
    if resolved:
        annotations.update(resolved_annotations(rule, e))
    for key in RESOLVED_KEYS.values():
        annotations.pop(key, None)
    return {key: templates.render(text, values, e.labels) for key, text in annotations.items()}


# Drifted features a notification names; the rest are counted (a wide model's list would be a page).
MAX_NAMED_FEATURES = 10


def drifted_features(details: dict[str, Any]) -> str:
    """The drifted features a point's details list, as words: most important first with their
    shares of the model's importance where the reference knows it ("income (62 %), plan (3 %)"),
    else by name; "none" when none drifted, "" when the point lists none at all."""
    ranked = details.get("by_importance")
    if ranked is None:
        ranked = details.get("drifted_features")
    if not isinstance(ranked, list):
        return ""
    names = []
    for item in ranked[:MAX_NAMED_FEATURES]:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], int | float):
            names.append(f"{item[0]} ({100 * item[1]:.0f} % of importance)")
        else:
            names.append(str(item))
    more = len(ranked) - len(names)
    return (", ".join(names) or "none") + (f" and {more:,} more" if more > 0 else "")


# The annotations a rule may give for its resolved notifications, and the ones they replace.
RESOLVED_KEYS = {"summary": "resolved_summary", "description": "resolved_description"}


# Labels every alert has, which a default text leaves out of the series it names.
_NAMING = {"alertname", "model", "metric", "window", "severity"}


def resolved_annotations(rule: Rule, e: Evaluation) -> dict[str, str]:
    """Summary and description of a resolved alert: the rule's ``resolved_*`` annotations, else
    what resolved it — a window that decided the condition no longer holds, or none deciding for
    the rule's ``undecided_for`` since it last held."""
    what = _series_text(rule, e)
    if e.holds is None:
        why = f"no window decided for {rule.undecided_for} since the condition last held: resolved without a decision"
    else:
        why = "{value} in the {window} window to {window_end}: the condition no longer holds"
    own = {key: rule.annotations[name] for key, name in RESOLVED_KEYS.items() if name in rule.annotations}
    return {
        "summary": f"Resolved: {{model}}: {what}: {why} ({{rule}}: {{condition}})",
        "description": f"Model {{model}} version {{version}}, {what}: {why}. {_WHEN_IT_FIRES}",
        **own,
    }


# The last sentence of every default description, firing or resolved.
_WHEN_IT_FIRES = "Rule {rule} ({severity}) fires on {condition}, threshold {threshold}."


def _series_text(rule: Rule, e: Evaluation) -> str:
    """The metric and the labels that name its series (not the ones every alert or the rule has),
    as a template."""
    series = ", ".join(f"{k}={{labels[{k}]}}" for k in sorted(e.labels) if k not in _NAMING | set(rule.labels))
    return "{metric}" + (f" ({series})" if series else "")


def default_annotations(rule: Rule, e: Evaluation) -> dict[str, str]:
    """A summary and a description for a rule without its own (an alert with labels only gave
    notifications without words), from its metric, series, value, condition and window. Worded
    to hold whatever the alert's state (a resolved notification repeats them): they say what the
    window measured and when the rule fires, not that it fired. Templates, so every value goes
    through the same safe filling as a rule's own."""
    what = _series_text(rule, e)
    listed = " Drifted features: {drifted_features}." if drifted_features(e.sample.details) else ""
    return {
        "summary": f"{{model}}: {what} {{value}} in the {{window}} window to {{window_end}}; "
        "{rule} fires on {condition} (threshold {threshold})",
        "description": f"Model {{model}} version {{version}}, {what}: {{value}} on {{sample_size}} rows "
        f"from {{window_start}} to {{window_end}}.{listed} {_WHEN_IT_FIRES}",
    }
