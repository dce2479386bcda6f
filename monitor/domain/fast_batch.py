"""One-pass decoding and validation of a JSON batch for one model version, in C (msgspec).

The ingestion hot path. For a version's schema we build msgspec types that accept exactly the
records the Python validator (``monitor.domain.records``) accepts without converting anything:
features of the right types, a prediction among the classes, probabilities in [0, 1], known
fields only. Decoding a batch then parses and validates it in one pass, several times faster
than parsing to Python objects and checking them value by value.

Anything else — a record the Python validator would convert (an integer category, 0/1 for a
boolean, an epoch timestamp), reject, or that names another model or version — makes the
decoder answer None, and the caller takes the full path, which explains every problem by
record, field and reason. So this module only ever speeds up; it never decides differently.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

import msgspec

from monitor.domain.records import MAX_CATEGORY_LENGTH, MAX_ID_LENGTH, MAX_MAGNITUDE, PredictionRow, TimeBounds
from monitor.domain.schema import FeatureType, ModelSchema, Task

Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Category = Annotated[str, msgspec.Meta(max_length=MAX_CATEGORY_LENGTH)]
PredictionId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
# Numbers within the same magnitude as the Python validator's (records.MAX_MAGNITUDE): anything
# else leaves the fast path, and the full path names the record and field.
_BOUND = msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)
Number = Union[Annotated[int, _BOUND], Annotated[float, _BOUND]]  # noqa: UP007
Latency = Union[  # noqa: UP007
    Annotated[int, msgspec.Meta(ge=0, le=MAX_MAGNITUDE)], Annotated[float, msgspec.Meta(ge=0, le=MAX_MAGNITUDE)]
]

_FEATURE_TYPES: dict[FeatureType, Any] = {
    FeatureType.numerical: Union[Number, None],  # noqa: UP007
    FeatureType.categorical: Union[Category, None],  # noqa: UP007
    FeatureType.boolean: Union[bool, None],  # noqa: UP007
}


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    records: msgspec.Raw
    model: str | None = None
    version: str | None = None


def peek_batch(body: bytes) -> tuple[str, str | None, msgspec.Raw] | None:
    """``{"model", "version", "records": [...]}`` → (model, version, the records still encoded)."""
    try:
        env = msgspec.json.decode(body, type=_Envelope)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None  # the full path explains (JSON nested past its depth limit included)
    if env.model is None:
        return None
    return env.model, env.version, env.records


class BatchDecoder:
    def __init__(self, schema: ModelSchema) -> None:
        self.schema = schema
        feature_fields: list[tuple[Any, ...]] = [
            (f.name, _FEATURE_TYPES[f.type]) if f.required else (f.name, _FEATURE_TYPES[f.type], msgspec.UNSET)
            for f in schema.features
        ]
        # gc=False: decoded records hold only scalars, strings and flat dicts, never cycles, so the
        # cyclic collector need not track the thousands of them a batch creates.
        features = msgspec.defstruct("Features", feature_fields, forbid_unknown_fields=True, gc=False)
        # attributions: an object of numbers (null: missing); its names are checked after
        # decoding, a set comparison in C (a struct of every feature cost a getattr per value)
        self._feature_names = names = frozenset(f.name for f in schema.features)
        self._feature_segments = [s for s in schema.segments if s in names]
        self._record_segments = [s for s in schema.segments if s not in names]
        segments: Any = None
        if self._record_segments:
            segments = msgspec.defstruct(
                "Segments",
                [(s, Union[str, None], None) for s in self._record_segments],  # noqa: UP007
                forbid_unknown_fields=True,
                gc=False,
            )
        self._integer_classes = False
        if schema.task is Task.regression:
            prediction: Any = Number
            scores: Any = None
        else:
            classes = tuple(schema.classes or ())
            cls = Literal[classes]  # type: ignore[valid-type]
            # integer classes (scikit-learn's 0, 1) arrive as JSON numbers: taken as they are and
            # turned into the class's text below
            numbers = tuple(int(c) for c in classes if c.lstrip("-").isdigit() and str(int(c)) == c)
            prediction = Literal[classes + numbers] if numbers else cls
            self._integer_classes = bool(numbers)
            scores = dict[cls, Probability]
            if schema.task is Task.binary_classification:
                scores = Union[Probability, scores]  # noqa: UP007
        record_fields: list[tuple[Any, ...]] = [
            ("features", features),
            ("prediction", prediction),
            ("prediction_id", Union[PredictionId, None], None),  # noqa: UP007
            ("timestamp", Union[datetime, None], None),  # noqa: UP007
            ("scores", Union[scores, None], None),  # noqa: UP007
            ("latency_ms", Union[Latency, None], None),  # noqa: UP007
            ("segments", Union[segments, None], None),  # noqa: UP007
            ("model", Union[str, None], None),  # noqa: UP007
            ("version", Union[str, None], None),  # noqa: UP007
            ("request_id", Union[PredictionId, None], None),  # noqa: UP007
            ("subject", Union[PredictionId, None], None),  # noqa: UP007
            ("attributions", Union[dict[str, Union[Number, None]], None], None),  # noqa: UP007
        ]
        self._record = msgspec.defstruct("Record", record_fields, forbid_unknown_fields=True, gc=False)
        self._decoder = msgspec.json.Decoder(list[self._record])  # type: ignore[name-defined]
        self._positive = schema.positive_class
        self._binary = schema.task is Task.binary_classification

    def decode(
        self, records: msgspec.Raw | bytes, model: str, version: str | None, bounds: TimeBounds
    ) -> list[PredictionRow] | None:
        """The batch's rows, or None when any record needs the full path."""
        try:
            decoded = self._decoder.decode(records)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        earliest, latest, now = bounds.earliest, bounds.latest, bounds.now
        feature_segments, record_segments = self._feature_segments, self._record_segments
        integer_classes = self._integer_classes
        feature_names = self._feature_names
        rows = []
        for r in decoded:
            if (r.model is not None and r.model != model) or (r.version is not None and r.version != version):
                return None
            ts = r.timestamp
            if ts is None:
                ts = now
            else:
                ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)  # as parse_timestamp
                if not earliest <= ts <= latest:
                    return None
            scores = r.scores
            if scores is not None:
                if type(scores) is float:
                    scores = {self._positive: scores}
                elif not scores:  # {} is an error for the full path to explain
                    return None
            attributions = r.attributions
            if attributions is not None:
                if not attributions.keys() <= feature_names:
                    return None  # a name the schema lacks: the full path names it
                attributions = attributions_given(attributions)
            segments: dict[str, Any] | None = None
            if record_segments or feature_segments:
                segments = {}
                f = r.features
                for name in feature_segments:
                    v = getattr(f, name)
                    segments[name] = None if v is None or v is msgspec.UNSET else str(v)
                s = r.segments
                for name in record_segments:
                    segments[name] = None if s is None else getattr(s, name)
            rows.append(
                PredictionRow(
                    r.prediction_id or uuid.uuid4().hex,
                    ts,
                    r.features,
                    str(r.prediction) if integer_classes and type(r.prediction) is int else r.prediction,
                    scores,
                    None if r.latency_ms is None else float(r.latency_ms),
                    segments,
                    r.request_id,
                    r.subject,
                    attributions,
                )
            )
        return rows


def attributions_given(attributions: dict[str, Any]) -> dict[str, Any] | None:
    """Decoded attributions as the Python validator gives them: a null one is missing, and an
    object without any given is none."""
    if None in attributions.values():
        attributions = {k: v for k, v in attributions.items() if v is not None}
    return attributions or None


def features_as_dict(features: Any) -> dict[str, Any]:
    """A decoded Features struct as the dict the Python validator would have produced."""
    if isinstance(features, dict):
        return features
    return {k: v for k in features.__struct_fields__ if (v := getattr(features, k)) is not msgspec.UNSET}
