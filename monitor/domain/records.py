"""Validation of prediction, label and reference records against a model's schema.

Pure functions over plain Python values (as decoded from JSON or read from a table). Every
problem is reported with the record's index, the field and the reason; a record is either
returned whole, normalised, or not at all. Compiled once per schema because ingestion
validates every field of every record on the hot path.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from monitor.domain.schema import FeatureType, ModelSchema, Task, class_key
from monitor.domain.unstorable import find_unstorable
from monitor.errors import RecordError

MAX_ID_LENGTH = 256
MAX_CATEGORY_LENGTH = 1024
# The largest magnitude a stored number may have: 2^53, past which float64 no longer holds every
# integer. Sums of squares over a billion such values stay far inside float8's range, so no value
# that is accepted can overflow the rollup's sums; 1e200 or a 400-digit integer is refused here.
MAX_MAGNITUDE = 2**53
MAGNITUDE_REASON = f"expected a finite number of magnitude at most 2^53 ({MAX_MAGNITUDE:,})"
# ±inf in a numerical feature is data, not a broken record: it is kept as the strings protobuf's
# JSON mapping uses ("Infinity", "-Infinity"), since neither JSON nor jsonb has a number for it.
# The rollup reads them back as float8's infinities and counts them apart, out of drift
# (``data_quality.non_finite_share``). A feature arrives as ±inf from a JSON ``Infinity``
# literal, a number past float64's range (1e400), a table reader, or those strings themselves.
POS_INF, NEG_INF = "Infinity", "-Infinity"
_NUMBER_STRINGS: dict[str, str | None] = {POS_INF: POS_INF, NEG_INF: NEG_INF, "NaN": None}
PREDICTION_KEYS = frozenset(
    {
        "prediction_id",
        "timestamp",
        "features",
        "prediction",
        "scores",
        "latency_ms",
        "segments",
        "model",
        "version",
        "request_id",
        "subject",
        "attributions",
    }
)
LABEL_KEYS = frozenset({"prediction_id", "label", "timestamp", "model"})


@dataclass(slots=True)
class PredictionRow:
    prediction_id: str
    ts: datetime
    features: dict[str, Any]
    prediction: Any
    scores: dict[str, float] | None
    latency_ms: float | None
    segments: dict[str, str | None] | None
    # the serving request it answered: the same for versions that scored one request (shadow)
    request_id: str | None = None
    # the person the prediction is about, as the client names them; never stored as given: the
    # service keeps only its keyed hash (monitor.secret_box), by which it can be erased
    subject: str | None = None
    # each feature's contribution to the prediction (SHAP values, say), as the serving system
    # computed it; None when it sent none
    attributions: dict[str, float] | None = None


@dataclass(slots=True)
class LabelRow:
    prediction_id: str
    label: Any
    ts: datetime


@dataclass(slots=True)
class ReferenceRow:
    features: dict[str, Any]
    prediction: Any
    scores: dict[str, float] | None
    label: Any
    segments: dict[str, str | None] | None
    attributions: dict[str, float] | None = None


@dataclass(slots=True, frozen=True)
class TimeBounds:
    """Accepted timestamps: not older than retention, not further ahead than the clock skew."""

    now: datetime
    earliest: datetime
    latest: datetime
    retention_days: int
    skew_seconds: int


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}.get(
        type(value), type(value).__name__
    )


# A converter returns (normalised value, None) or (None, reason). None input never reaches it.
Converter = Callable[[Any], tuple[Any, str | None]]


def _numerical(value: Any) -> tuple[Any, str | None]:
    """A finite number (a regression model's prediction or label)."""
    t = type(value)
    if t is float or t is int:
        # abs() of an int of any size is exact; of a float, nan compares false and fails too
        if abs(value) <= MAX_MAGNITUDE:
            return value, None
        return None, MAGNITUDE_REASON
    return None, f"expected a number, got {_type_name(value)}"


def _numerical_feature(value: Any) -> tuple[Any, str | None]:
    """A numerical feature: a finite number, or ±inf kept as its string (see ``POS_INF``)."""
    t = type(value)
    if t is float and math.isinf(value):
        return (POS_INF if value > 0 else NEG_INF), None
    if t is str and value in _NUMBER_STRINGS:
        return _NUMBER_STRINGS[value], None  # "NaN": missing, as a NaN number is
    return _numerical(value)


def stored_number(value: Any) -> Any:
    """A stored numerical feature's value as a number: ±inf for the strings that keep them."""
    if value == POS_INF:
        return math.inf
    if value == NEG_INF:
        return -math.inf
    return value


def _categorical(value: Any) -> tuple[Any, str | None]:
    t = type(value)
    if t is str:
        if len(value) > MAX_CATEGORY_LENGTH:
            return None, f"category longer than {MAX_CATEGORY_LENGTH} characters"
        return value, None
    if t is int:
        return str(value), None
    return None, f"expected a string category, got {_type_name(value)}"


def _boolean(value: Any) -> tuple[Any, str | None]:
    if type(value) is bool:
        return value, None
    if type(value) is int and value in (0, 1):
        return bool(value), None
    return None, f"expected a boolean, got {_type_name(value)}"


_CONVERTERS: dict[FeatureType, Converter] = {
    FeatureType.numerical: _numerical_feature,
    FeatureType.categorical: _categorical,
    FeatureType.boolean: _boolean,
}


NoneType = type(None)
_NUMERICAL_TYPES = frozenset({float, int, NoneType})
_CATEGORICAL_TYPES = frozenset({str, NoneType})
_BOOLEAN_TYPES = frozenset({bool, NoneType})


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``names`` as a tuple (KeyError if one is absent)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        name = names[0]
        return lambda d: (d[name],)
    return itemgetter(*names)


def _present(values: tuple[Any, ...]) -> list[Any]:
    return [v for v in values if v is not None]


def _is_missing(value: Any) -> bool:
    # NaN is how tabular readers spell a missing cell; JSON cannot carry one.
    return value is None or (type(value) is float and value != value)


def parse_timestamp(value: Any) -> datetime:
    """ISO 8601 (naive means UTC) or Unix epoch seconds; epochs above 1e11 are read as milliseconds."""
    t = type(value)
    if t is str:
        ts = datetime.fromisoformat(value)
    elif t is int or t is float:
        if not math.isfinite(value):
            raise ValueError("not a finite epoch")
        seconds = value / 1000 if abs(value) > 1e11 else value
        ts = datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, datetime):
        ts = value
    else:
        raise ValueError(f"expected an ISO 8601 string or epoch seconds, got {_type_name(value)}")
    # In UTC: an offset Python reads (up to ±23:59) but Postgres does not (past ±15:59) must not
    # reach the COPY, and every timestamp stored reads the same way.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _as_id(value: Any) -> tuple[str | None, str | None]:
    t = type(value)
    if t is int:
        return str(value), None
    if t is not str:
        return None, f"expected a string, got {_type_name(value)}"
    if not value or len(value) > MAX_ID_LENGTH:
        return None, f"must be 1 to {MAX_ID_LENGTH} characters"
    return value, None


class RecordValidator:
    """Validates records of one model version. Build once per schema and reuse."""

    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        self.task = schema.task
        self._features: list[tuple[str, Converter, bool]] = [
            (f.name, _CONVERTERS[f.type], f.required) for f in schema.features
        ]
        self._feature_names = frozenset(f.name for f in schema.features)
        self._feature_segments = [s for s in schema.segments if s in self._feature_names]
        self._record_segments = [s for s in schema.segments if s not in self._feature_names]
        self._record_segment_names = frozenset(self._record_segments)
        self._classes = {c: c for c in schema.classes or []}
        self._binary = schema.task is Task.binary_classification
        self._positive = schema.positive_class or ""
        self._n_features = len(schema.features)
        self._get_nums = _getter([f.name for f in schema.features if f.type is FeatureType.numerical])
        self._get_cats = _getter([f.name for f in schema.features if f.type is FeatureType.categorical])
        self._get_bools = _getter([f.name for f in schema.features if f.type is FeatureType.boolean])

    # -- parts shared by all record kinds ------------------------------------------------------

    def _already_clean(self, raw: dict[str, Any]) -> bool:
        """The hot path: every value has its schema type already, so the dict is stored as sent.

        Most records are clean. Checking them by whole groups of values (types collected with
        C-level ``map``) instead of a Python call per value makes validation several times
        cheaper; anything unusual (absent optional features, conversions, errors) takes the
        full path, which explains every problem.
        """
        if len(raw) != self._n_features:
            return False
        try:
            nums, cats, bools = self._get_nums(raw), self._get_cats(raw), self._get_bools(raw)
        except KeyError:  # an unknown name in place of a known one
            return False
        types = set(map(type, nums))
        if not types <= _NUMERICAL_TYPES:
            return False
        present = nums if NoneType not in types else _present(nums)
        if present and (max(present) > MAX_MAGNITUDE or min(present) < -MAX_MAGNITUDE):
            return False  # also NaN and the infinities: the full path names them
        if float in types and not all(map(math.isfinite, present)):
            return False
        types = set(map(type, cats))
        if not types <= _CATEGORICAL_TYPES:
            return False
        # default: every category may be missing (all None), which is valid
        if cats and max(map(len, cats if NoneType not in types else _present(cats)), default=0) > MAX_CATEGORY_LENGTH:
            return False
        return set(map(type, bools)) <= _BOOLEAN_TYPES

    def _check_features(self, index: int | None, raw: Any, errors: list[RecordError]) -> dict[str, Any] | None:
        if type(raw) is not dict:
            errors.append(RecordError(index, "features", f"expected an object, got {_type_name(raw)}"))
            return None
        if self._already_clean(raw):
            return raw
        out: dict[str, Any] = {}
        n_errors = len(errors)
        for name, convert, required in self._features:
            if name not in raw:
                if required:
                    errors.append(RecordError(index, f"features.{name}", "required feature is missing"))
                continue
            value = raw[name]
            if _is_missing(value):
                out[name] = None
                continue
            converted, reason = convert(value)
            if reason is not None:
                errors.append(RecordError(index, f"features.{name}", reason))
            else:
                out[name] = converted
        if len(raw) > len(out) or len(errors) > n_errors:
            for name in raw:
                if name not in self._feature_names:
                    errors.append(RecordError(index, f"features.{name}", "unknown feature (not in the model schema)"))
        return out

    def _target(self, index: int | None, field: str, value: Any, errors: list[RecordError]) -> Any:
        """A prediction or a label: a class of the model, or a number for regression."""
        if _is_missing(value):
            errors.append(RecordError(index, field, "is required"))
            return None
        if self.task is Task.regression:
            converted, reason = _numerical(value)
            if reason is not None:
                errors.append(RecordError(index, field, reason))
            return converted
        key = class_key(value)
        if key is None or key not in self._classes:
            shown = value if key is None else key
            errors.append(RecordError(index, field, f"{shown!r} is not one of the model's classes"))
            return None
        return key

    def _scores(self, index: int | None, raw: Any, errors: list[RecordError]) -> dict[str, float] | None:
        if type(raw) is float and self._binary and 0.0 <= raw <= 1.0:  # the common binary case
            return {self._positive: raw}
        if _is_missing(raw):
            return None
        if self.task is Task.regression:
            errors.append(RecordError(index, "scores", "regression models take no scores"))
            return None
        if self.task is Task.binary_classification and type(raw) in (int, float):
            raw = {self.schema.positive_class: raw}
        if type(raw) is not dict or not raw:
            errors.append(
                RecordError(index, "scores", f"expected an object of class probabilities, got {_type_name(raw)}")
            )
            return None
        out: dict[str, float] = {}
        for cls, p in raw.items():
            if cls not in self._classes:
                errors.append(RecordError(index, f"scores.{cls}", "not one of the model's classes"))
            elif type(p) not in (int, float) or not 0.0 <= p <= 1.0:
                errors.append(RecordError(index, f"scores.{cls}", "expected a probability between 0 and 1"))
            else:
                out[cls] = float(p)
        return out

    def _attributions(self, index: int | None, raw: Any, errors: list[RecordError]) -> dict[str, float] | None:
        """Per-feature attributions: an object of the schema's features, each a finite number
        (bounded as a feature is); a null or NaN one is missing, not zero. None when none is given."""
        if _is_missing(raw):
            return None
        if type(raw) is not dict:
            errors.append(RecordError(index, "attributions", f"expected an object, got {_type_name(raw)}"))
            return None
        out: dict[str, float] = {}
        for name, value in raw.items():
            if name not in self._feature_names:
                errors.append(RecordError(index, f"attributions.{name}", "unknown feature (not in the model schema)"))
            elif not _is_missing(value):
                number, reason = _numerical(value)
                if reason is not None:
                    errors.append(RecordError(index, f"attributions.{name}", reason))
                else:
                    out[name] = number  # as given, as a numerical feature is
        return out or None

    def _segments(
        self, index: int | None, raw: Any, features: dict[str, Any] | None, errors: list[RecordError]
    ) -> dict[str, str | None] | None:
        if not self.schema.segments:
            if not _is_missing(raw) and raw != {}:
                errors.append(RecordError(index, "segments", "the model declares no segment columns"))
            return None
        out: dict[str, str | None] = {}
        for name in self._feature_segments:
            value = features.get(name) if features else None
            out[name] = None if value is None else str(value)
        if _is_missing(raw):
            raw = {}
        elif type(raw) is not dict:
            errors.append(RecordError(index, "segments", f"expected an object, got {_type_name(raw)}"))
            raw = {}
        for name, value in raw.items():
            if name not in self._record_segment_names:
                errors.append(RecordError(index, f"segments.{name}", "unknown segment column"))
            elif _is_missing(value):
                out[name] = None
            elif type(value) in (str, int, bool):
                out[name] = str(value)
            else:
                errors.append(RecordError(index, f"segments.{name}", f"expected a string, got {_type_name(value)}"))
        for name in self._record_segments:
            out.setdefault(name, None)
        return out

    @staticmethod
    def _timestamp(
        index: int, raw: Any, bounds: TimeBounds, errors: list[RecordError], field: str = "timestamp"
    ) -> datetime:
        if raw is None:
            return bounds.now
        try:
            ts = parse_timestamp(raw)
        except (ValueError, OverflowError, OSError) as exc:
            errors.append(RecordError(index, field, f"unparseable timestamp {raw!r}: {exc}"))
            return bounds.now
        if ts < bounds.earliest:
            errors.append(
                RecordError(
                    index, field, f"{ts.isoformat()} is older than the retention period ({bounds.retention_days} days)"
                )
            )
        elif ts > bounds.latest:
            errors.append(
                RecordError(index, field, f"{ts.isoformat()} is more than {bounds.skew_seconds} s in the future")
            )
        return ts

    # -- record kinds ---------------------------------------------------------------------------

    def prediction(self, index: int, raw: Any, bounds: TimeBounds, errors: list[RecordError]) -> PredictionRow | None:
        """Validate one prediction record; append its problems to ``errors``, return it if clean."""
        if type(raw) is not dict:
            errors.append(RecordError(index, "", f"expected a JSON object, got {_type_name(raw)}"))
            return None
        if (unstorable := find_unstorable(raw)) is not None:
            errors.append(RecordError(index, *unstorable))
            return None
        n_errors = len(errors)
        if not raw.keys() <= PREDICTION_KEYS:
            for key in sorted(raw.keys() - PREDICTION_KEYS):
                errors.append(RecordError(index, key, "unknown field"))

        raw_id = raw.get("prediction_id")
        if raw_id is None:
            pid: str | None = uuid.uuid4().hex
        else:
            pid, reason = _as_id(raw_id)
            if reason is not None:
                errors.append(RecordError(index, "prediction_id", reason))

        ts = self._timestamp(index, raw.get("timestamp"), bounds, errors)
        if "features" not in raw:
            errors.append(RecordError(index, "features", "is required"))
            features = None
        else:
            features = self._check_features(index, raw["features"], errors)
        prediction = self._target(index, "prediction", raw.get("prediction"), errors)
        scores = self._scores(index, raw.get("scores"), errors)

        latency = raw.get("latency_ms")
        if latency is not None:
            if type(latency) not in (int, float) or not 0 <= latency <= MAX_MAGNITUDE:
                errors.append(RecordError(index, "latency_ms", "expected a non-negative number at most 2^53"))
            else:
                latency = float(latency)
        segments = self._segments(index, raw.get("segments"), features, errors)
        attributions = self._attributions(index, raw.get("attributions"), errors)
        request_id = None
        if raw.get("request_id") is not None:
            request_id, reason = _as_id(raw["request_id"])
            if reason is not None:
                errors.append(RecordError(index, "request_id", reason))

        subject = None
        if raw.get("subject") is not None:
            subject, reason = _as_id(raw["subject"])
            if reason is not None:
                errors.append(RecordError(index, "subject", reason))

        if len(errors) > n_errors:
            return None
        assert pid is not None and features is not None
        return PredictionRow(
            pid, ts, features, prediction, scores, latency, segments, request_id, subject, attributions
        )

    def label(self, index: int, raw: Any, bounds: TimeBounds, errors: list[RecordError]) -> LabelRow | None:
        if type(raw) is not dict:
            errors.append(RecordError(index, "", f"expected a JSON object, got {_type_name(raw)}"))
            return None
        if (unstorable := find_unstorable(raw)) is not None:
            errors.append(RecordError(index, *unstorable))
            return None
        n_errors = len(errors)
        if not raw.keys() <= LABEL_KEYS:
            for key in sorted(raw.keys() - LABEL_KEYS):
                errors.append(RecordError(index, key, "unknown field"))
        pid: str | None = None
        if raw.get("prediction_id") is None:
            errors.append(RecordError(index, "prediction_id", "is required"))
        else:
            pid, reason = _as_id(raw["prediction_id"])
            if reason is not None:
                errors.append(RecordError(index, "prediction_id", reason))
        label = self._target(index, "label", raw.get("label"), errors)
        ts = bounds.now
        if raw.get("timestamp") is not None:
            try:
                ts = parse_timestamp(raw["timestamp"])
            except (ValueError, OverflowError, OSError) as exc:
                errors.append(RecordError(index, "timestamp", f"unparseable timestamp {raw['timestamp']!r}: {exc}"))
        if len(errors) > n_errors:
            return None
        assert pid is not None
        return LabelRow(pid, label, ts)

    def reference(self, index: int, raw: dict[str, Any], errors: list[RecordError]) -> ReferenceRow | None:
        """One row of a reference dataset: features plus optional prediction, scores, label, segments."""
        if (unstorable := find_unstorable(raw)) is not None:
            errors.append(RecordError(index, *unstorable))
            return None
        n_errors = len(errors)
        features = self._check_features(index, raw.get("features"), errors)
        prediction = None
        if not _is_missing(raw.get("prediction")):
            prediction = self._target(index, "prediction", raw["prediction"], errors)
        label = None
        if not _is_missing(raw.get("label")):
            label = self._target(index, "label", raw["label"], errors)
        scores = self._scores(index, raw.get("scores"), errors)
        segments = self._segments(index, raw.get("segments"), features, errors)
        attributions = self._attributions(index, raw.get("attributions"), errors)
        if len(errors) > n_errors:
            return None
        assert features is not None
        return ReferenceRow(features, prediction, scores, label, segments, attributions)


def time_bounds(now: datetime, retention_days: int, skew_seconds: int) -> TimeBounds:
    return TimeBounds(
        now=now,
        earliest=now - timedelta(days=retention_days),
        latest=now + timedelta(seconds=skew_seconds),
        retention_days=retention_days,
        skew_seconds=skew_seconds,
    )
