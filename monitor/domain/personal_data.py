"""What the service keeps of values the schema declares personal: the policy of each feature,
segment and of the prediction ids, applied to every record before anything is stored or
summarised. Pure functions; the keyed hash comes from ``monitor.secret_box``.

- ``keep``: as sent (the default).
- ``hash``: its keyed hash (``SecretBox.value_hash``), everywhere: the log, the summaries, the
  reference, metric labels. Equal values hash equally, so a categorical feature's drift, a
  segment's windows and a prediction's look-up and label join work on the hashes; nothing can be
  tied back to a value without the keys. Categorical features, segments and prediction ids only:
  a hashed number loses its order, and with it every drift test of numbers.
- ``summarise_only`` (features): counted into the summaries at ingestion (and into the
  reference's at upload), then left out of the row before it is stored. An hour summarised again
  from the log keeps what ingestion counted of these features (``monitor.services.jobs.rollup``).
- ``drop`` (features): accepted and discarded at once: neither stored nor summarised.

A model may also keep summaries only (``personal_data.rows: summaries_only``): every feature is
then summarised at ingestion and stored only for the predictions in its sample
(``monitor.domain.row_sample``); the rest of a row (id, time, prediction, scores, latency,
segments) is held for its label and deleted after the model's label wait
(``monitor.services.jobs.compaction``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from monitor.domain.fast_batch import features_as_dict
from monitor.domain.records import LabelRow, PredictionRow, ReferenceRow
from monitor.domain.row_sample import in_sample, sample_threshold
from monitor.domain.schema import ModelSchema, category_key
from monitor.domain.schema import PersonalDataPolicy as Policy

Hasher = Callable[[str], str]  # a value's keyed hash, as stored


@dataclass(frozen=True)
class PersonalData:
    """A schema's policies, ready to apply: which features, segments and whether prediction ids
    are hashed or dropped (everything else is kept)."""

    hashed_features: frozenset[str] = frozenset()
    dropped_features: frozenset[str] = frozenset()
    hashed_segments: frozenset[str] = frozenset()
    hashed_ids: bool = False
    summarised_only: frozenset[str] = frozenset()  # features summarised at ingestion, never stored
    summaries_only: bool = False  # a row's features are stored only in the sample
    sample: bytes | None = None  # the sample's threshold (``row_sample.sample_threshold``)

    @classmethod
    def of(cls, schema: ModelSchema) -> PersonalData:
        hashed = frozenset(f.name for f in schema.features if f.personal_data is Policy.hash)
        dropped = frozenset(f.name for f in schema.features if f.personal_data is Policy.drop)
        own = schema.personal_data.segments
        # a segment that is a feature carries the feature's value: hashed with it
        hashed_segments = {s for s in schema.segments if s in hashed or own.get(s) is Policy.hash}
        return cls(
            hashed_features=hashed,
            dropped_features=dropped,
            hashed_segments=frozenset(hashed_segments),
            hashed_ids=schema.personal_data.prediction_id is Policy.hash,
            summarised_only=schema.summarised_only(),
            summaries_only=schema.summaries_only,
            sample=sample_threshold(schema.personal_data.sample_rate),
        )

    @property
    def keeps_everything(self) -> bool:
        return not (self.hashed_features or self.dropped_features or self.hashed_segments or self.hashed_ids)

    def prediction(self, row: PredictionRow, hasher: Hasher) -> PredictionRow:
        if self.keeps_everything:
            return row
        return replace(
            row,
            prediction_id=self.prediction_id(row.prediction_id, hasher),
            features=self._features(row.features, hasher),
            segments=self._segments(row.segments, hasher),
            attributions=self._attributions(row.attributions, self.dropped_features),
        )

    def stored(self, row: PredictionRow) -> PredictionRow:
        """The row as the log keeps it: without the features only summarised, and with none when
        the model keeps summaries only and the row is not in its sample (``prediction`` gives the
        row that is summarised). ``row``'s id is as stored (hashed, if ids are)."""
        if self.summaries_only and not in_sample(row.prediction_id, self.sample):
            return replace(row, features={}, attributions=None)
        if not self.summarised_only:
            return row
        features = features_as_dict(row.features)
        return replace(
            row,
            features={k: v for k, v in features.items() if k not in self.summarised_only},
            attributions=self._attributions(row.attributions, self.summarised_only),
        )

    def stored_reference(self, row: ReferenceRow) -> ReferenceRow:
        """A reference row as stored (its summaries are made from the whole row)."""
        if not self.summarised_only:
            return row
        return replace(
            row,
            features={k: v for k, v in row.features.items() if k not in self.summarised_only},
            attributions=self._attributions(row.attributions, self.summarised_only),
        )

    def label(self, row: LabelRow, hasher: Hasher) -> LabelRow:
        return replace(row, prediction_id=hasher(row.prediction_id)) if self.hashed_ids else row

    def reference(self, row: ReferenceRow, hasher: Hasher) -> ReferenceRow:
        if self.keeps_everything:
            return row
        return replace(
            row,
            features=self._features(row.features, hasher),
            segments=self._segments(row.segments, hasher),
            attributions=self._attributions(row.attributions, self.dropped_features),
        )

    def stored_ids(self, prediction_id: str, hashes: Callable[[str], list[str]]) -> list[str]:
        """The ids a prediction sent as ``prediction_id`` may be stored under: itself, or (ids
        hashed) its hash under each secret key, the current one first (``SecretBox.value_hashes``):
        one stored before a key rotation keeps the hash of its time."""
        return hashes(prediction_id) if self.hashed_ids else [prediction_id]

    def prediction_id(self, prediction_id: str, hasher: Hasher) -> str:
        return hasher(prediction_id) if self.hashed_ids else prediction_id

    def _features(self, features: Any, hasher: Hasher) -> Any:
        """The features as kept (a dict, or the one-pass decoder's struct, read as the dict)."""
        if not (self.hashed_features or self.dropped_features):
            return features
        out = {}
        for name, value in features_as_dict(features).items():
            if name in self.dropped_features:
                continue
            out[name] = hash_value(value, hasher) if name in self.hashed_features else value
        return out

    @staticmethod
    def _attributions(attributions: dict[str, float] | None, without: frozenset[str]) -> dict[str, float] | None:
        """Attributions without those to ``without``: a feature the log does not keep has none
        kept either (an attribution says how its value moved the prediction)."""
        if attributions is None or not without:
            return attributions
        return {k: v for k, v in attributions.items() if k not in without} or None

    def _segments(self, segments: dict[str, str | None] | None, hasher: Hasher) -> dict[str, str | None] | None:
        if segments is None or not self.hashed_segments:
            return segments
        return {name: hash_value(v, hasher) if name in self.hashed_segments else v for name, v in segments.items()}


def hash_value(value: Any, hasher: Hasher) -> Any:
    """A category's hash, of its text as summaries key it (``category_key``: a number's digits);
    a missing value stays missing (data quality counts it, and it names nobody)."""
    key = category_key(value)
    return None if key is None else hasher(key)
