"""Rules are data: what a rule is, how it is read from YAML or JSON, and what makes one invalid.

A rule reads metric points (a model, a metric, label matchers; ``*`` and ``?`` wildcards), tests
a condition on each series' newest point — a comparison with a threshold, the drifted flag, or
a change against the same series some time earlier — and, when it holds long enough (``for``),
fires: one alert per series, labelled with the series' labels and the rule's own.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts import templates

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Alertmanager's (and Prometheus's) label names
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
Name = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def parse_duration(text: str | int | float) -> timedelta:
    """'90s', '10m', '1h', '7d' (or a number of seconds)."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like '30s', '10m', '1h' or '7d'")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


Op = Literal[">", ">=", "<", "<=", "==", "!="]
_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def compare(op: str, value: float, threshold: float) -> bool:
    return bool(_OPS[op](value, threshold))


class Change(BaseModel):
    """The value against the same series' value ``baseline`` earlier (its window ending then)."""

    model_config = ConfigDict(extra="forbid")
    baseline: str = Field(description="how far back the baseline window ends, e.g. '7d'")
    op: Op = ">"
    threshold: float
    relative: bool = Field(True, description="compare (value - baseline) / |baseline| rather than the difference")

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, v: str) -> str:
        if parse_duration(v) <= timedelta(0):
            raise ValueError("baseline must be a positive duration")
        return v


class Condition(BaseModel):
    """Exactly one of: ``op`` + ``threshold``; ``drifted: true``; ``change``."""

    model_config = ConfigDict(extra="forbid")
    op: Op | None = None
    threshold: float | None = None
    # what op and threshold compare: the point's value (unset), or a bound of its 95 % interval
    # (``lower``: "better by at least the threshold, with 97.5 % confidence"); a point without
    # that bound does not hold
    on: Literal["lower", "upper"] | None = None
    drifted: bool | None = None
    change: Change | None = None

    @model_validator(mode="after")
    def _one(self) -> Condition:
        kinds = [self.threshold is not None or self.op is not None, self.drifted is not None, self.change is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of: op and threshold, drifted, change")
        if kinds[0] and (self.op is None or self.threshold is None):
            raise ValueError("a comparison needs both op and threshold")
        if self.drifted is False:
            raise ValueError("drifted: true is the only drifted condition")
        if self.on is not None and not kinds[0]:
            raise ValueError("on: lower or upper goes with op and threshold")
        return self

    def describe(self) -> str:
        if self.drifted:
            return "drifted"
        if self.change is not None:
            c = self.change
            what = "relative change" if c.relative else "change"
            return f"{what} vs {c.baseline} earlier {c.op} {c.threshold:g}"
        what = "value" if self.on is None else f"{self.on} bound of its interval"
        return f"{what} {self.op} {self.threshold:g}"


class Retrain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    receiver: str = Field(description="the receiver the model.retrain_requested event goes to")
    cooldown: str = Field("24h", description="at most one trigger per model and rule within this")

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        parse_duration(v)
        return v


# The labels every alert gets from its rule and series, and where they come from.
SERVICE_LABELS = {
    "alertname": "the rule's name",
    "severity": "the rule's severity field",
    "model": "the model the point is of",
    "metric": "the point's metric",
    "window": "the point's window",
}

# A rule's action -> the event it sends when its alert fires.
EVENTS = {
    "retrain": "model.retrain_requested",
    "promote": "model.promotion_suggested",
    "rollback": "model.rollback_suggested",
}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Name
    model: str = Field("*", description="model name; wildcards * and ? allowed")
    metric: str = Field(description="metric name, e.g. dataset_drift, feature_drift, quality.accuracy; wildcards")
    match: dict[str, str] = Field(
        default_factory=dict,
        description="label matchers, e.g. {feature: 'age*'}; '' matches a missing label ({segment: ''}: no segment)",
    )
    window: str | None = Field(None, description="only windows of this length, e.g. '1h', '1d'")
    condition: Condition
    for_: str = Field("0s", alias="for", description="how long the condition must hold before firing")
    keep_firing_for: str = Field("0s", description="how long to stay firing after the condition stops holding")
    undecided_for: str = Field(
        "24h",
        description="how long an alert keeps its state while its windows cannot decide (too few rows, no "
        "decision, no value or baseline) after the condition last held; then it resolves",
    )
    severity: Severity = Severity.warning
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    receivers: list[str] = Field(default_factory=list)
    retrain: Retrain | None = None
    # for comparison rules (comparison.*): tell the deployment pipeline to promote the challenger,
    # or to roll it back; signed events like retraining's, with the same cooldown per model
    promote: Retrain | None = None
    rollback: Retrain | None = None
    min_sample_size: int = Field(
        0, ge=0, description="points resting on fewer rows are undecided: they change no alert's state"
    )

    @field_validator("for_", "keep_firing_for", "undecided_for", "window")
    @classmethod
    def _durations(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @field_validator("labels", "annotations")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        # Alertmanager refuses an alert with any other label or annotation name (400 for the whole
        # request): a name it cannot take is refused here, when the rule is made
        for name in v:
            if not LABEL_NAME.match(name):
                raise ValueError(f"{name!r} is not a name Alertmanager accepts ([a-zA-Z_][a-zA-Z0-9_]*)")
        return v

    @field_validator("labels")
    @classmethod
    def _not_the_service_s(cls, v: dict[str, str]) -> dict[str, str]:
        # these name the alert and its series; a rule's label of the same name replaced them
        # silently (a second rule's alerts then grouped, inhibited and silenced as the first's)
        taken = sorted(set(v) & set(SERVICE_LABELS))
        if taken:
            raise ValueError(
                f"label {taken[0]!r} is set by the service ({SERVICE_LABELS[taken[0]]}): a rule cannot replace it"
            )
        return v

    @field_validator("annotations")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        for key, text in v.items():
            try:
                templates.parse(text)
            except templates.TemplateError as exc:
                raise ValueError(f"annotation {key!r}: {exc}") from None
        return v

    @property
    def for_duration(self) -> timedelta:
        return parse_duration(self.for_)

    @property
    def keep_firing_duration(self) -> timedelta:
        return parse_duration(self.keep_firing_for)

    @property
    def undecided_duration(self) -> timedelta:
        return parse_duration(self.undecided_for)

    def matches(self, model: str, metric: str, labels: dict[str, str], window: timedelta) -> bool:
        if not fnmatchcase(model, self.model) or not fnmatchcase(metric, self.metric):
            return False
        if self.window is not None and parse_duration(self.window) != window:
            return False
        # A missing label reads as "": {segment: ""} selects the series over all predictions.
        return all(fnmatchcase(labels.get(k, ""), pattern) for k, pattern in self.match.items())

    def events(self) -> list[tuple[str, Retrain]]:
        """(event type, action) of each event the rule sends when its alert fires."""
        actions = {"retrain": self.retrain, "promote": self.promote, "rollback": self.rollback}
        return [(EVENTS[name], a) for name, a in actions.items() if a is not None]

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RuleError(ValueError):
    """A refused rule: which one (its position and name when known), which field, and why."""

    def __init__(self, index: int | None, name: str | None, field: str, reason: str) -> None:
        self.index, self.name, self.field, self.reason = index, name, field, reason
        where = f"rule {index}" if index is not None else "rule"
        if name:
            where += f" ({name!r})"
        super().__init__(f"{where}: {field or 'rule'}: {reason}")

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rule": self.name, "field": self.field, "reason": self.reason}


def parse_rule(doc: Any, index: int | None = None) -> Rule:
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(doc, dict):
        raise RuleError(index, None, "", f"expected a mapping, got {type(doc).__name__}")
    try:
        return Rule.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise RuleError(index, name, field, first["msg"]) from None


def parse_rules(docs: Any) -> tuple[list[Rule], list[RuleError]]:
    """Every valid rule and an error for every invalid one: one bad rule never stops the rest.
    Duplicate names: the first wins, the others are errors."""
    if not isinstance(docs, list):
        return [], [RuleError(None, None, "rules", "expected a list of rules")]
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        try:
            rule = parse_rule(doc, i)
        except RuleError as exc:
            errors.append(exc)
            continue
        if rule.name in seen:
            errors.append(RuleError(i, rule.name, "name", "duplicate rule name"))
            continue
        seen.add(rule.name)
        rules.append(rule)
    return rules, errors


class RulesLoader(yaml.SafeLoader):
    """YAML as 1.2 reads it: only true and false are booleans. PyYAML follows YAML 1.1, where
    on, off, yes and no are too, so a condition's `on: lower` (a bound of the interval) arrived
    as `True: lower` and was refused ("Keys should be strings")."""


RulesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RulesLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    """The document of a rules file: ``{rules: [...], receivers: [...]}`` or a bare list of rules."""
    try:
        doc = yaml.load(text, Loader=RulesLoader)  # a SafeLoader with YAML 1.2's booleans
    except yaml.YAMLError as exc:
        raise RuleError(None, None, "", f"not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if isinstance(doc, list):
        return {"rules": doc}
    if not isinstance(doc, dict):
        raise RuleError(None, None, "", "a rules file is a mapping with 'rules' (and 'receivers'), or a list of rules")
    return doc
