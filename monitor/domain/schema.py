"""What a registered model looks like: its task, features, classes and segment columns."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Task(StrEnum):
    binary_classification = "binary_classification"
    multiclass_classification = "multiclass_classification"
    regression = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not Task.regression


class FeatureType(StrEnum):
    numerical = "numerical"
    categorical = "categorical"
    boolean = "boolean"


class PersonalDataPolicy(StrEnum):
    """What is kept of a value declared personal (``monitor.domain.personal_data``)."""

    keep = "keep"
    hash = "hash"
    summarise_only = "summarise_only"
    drop = "drop"


LABEL_WAIT_HOURS = 72  # a summaries-only model's predictions wait this long for labels, by default


class RowsPolicy(StrEnum):
    """What the log keeps of a model's predictions (``IdentifierPolicies.rows``)."""

    keep = "keep"
    summaries_only = "summaries_only"


class Feature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FieldName
    type: FeatureType
    # A required feature must be present as a key in every record (its value may be null: a
    # missing value is data quality, not a schema violation). Optional ones may be absent.
    required: bool = True
    description: str = ""
    personal_data: PersonalDataPolicy = Field(
        default=PersonalDataPolicy.keep,
        description="keep: stored as sent. hash: stored and summarised as its keyed hash (categorical "
        "features only: drift compares the hashes). summarise_only: counted into the summaries at ingestion, "
        "never stored. drop: accepted and discarded, neither stored nor summarised.",
    )


class IdentifierPolicies(BaseModel):
    """Policies of what is not a feature: the prediction ids and the record's own segments."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: PersonalDataPolicy = Field(
        default=PersonalDataPolicy.keep,
        description="keep or hash: stored as its keyed hash; look-ups and labels name the id as sent.",
    )
    segments: dict[FieldName, PersonalDataPolicy] = Field(
        default_factory=dict,
        description="keep or hash, by segment column read from the record's `segments` (a segment that is a "
        "feature follows the feature's policy).",
    )
    rows: RowsPolicy = Field(
        default=RowsPolicy.keep,
        description="keep: every prediction is kept in the log for its retention. summaries_only: every feature "
        "is summarised at ingestion and not stored (but in the sample); a prediction's id, time, prediction, "
        "scores, latency and segments are held `label_wait_hours` for its label to join, then deleted with its "
        "labels. Needs the version's reference before its predictions.",
    )
    label_wait_hours: int = Field(
        default=LABEL_WAIT_HOURS,
        ge=1,
        le=24 * 90,
        description="summaries_only: how long after its time a prediction waits for its label (a label arriving "
        "later finds nothing).",
    )
    sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="summaries_only: the share of predictions kept whole (features too) for the log's retention, "
        "for reports, look-ups and exports; chosen by the stored id's SHA-256, so a retry is chosen alike.",
    )

    @model_validator(mode="after")
    def _only_with_summaries(self) -> IdentifierPolicies:
        # checked by value, not by what was given: a stored schema is read back with its defaults
        if self.rows is RowsPolicy.keep and (self.sample_rate or self.label_wait_hours != LABEL_WAIT_HOURS):
            raise ValueError("label_wait_hours and sample_rate apply to rows: summaries_only only")
        return self


def category_key(value: object) -> str | None:
    """A category as Postgres's ``->>`` spells a JSON value: booleans lower-case, the rest as text."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def class_key(value: Any) -> str | None:
    """A class as the model's ``classes`` hold it: text as is, an integer as its digits (a
    scikit-learn model's ``classes_`` are often ``[0, 1]``), an integral float as that integer
    (``1.0`` is class ``1``: labels read back from a float column), a boolean as ``True`` /
    ``False``. None for anything else (not a class)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if t is bool or t is int:
        return str(value)
    if t is float and value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    return None


class ModelSchema(BaseModel):
    """The part of a model version that validates its records; stored as JSON with the version."""

    model_config = ConfigDict(extra="forbid")

    task: Task
    # wide models (recommendation, fraud, credit) log thousands; the rollup is linear in them
    features: list[Feature] = Field(min_length=1, max_length=5000)
    classes: list[str] | None = Field(
        default=None,
        description="Class labels, required for multiclass (binary: default [0, 1]). Text, integers or booleans "
        "(scikit-learn's classes_); kept as text, so label 1, 1.0 and '1' are one class.",
    )
    positive_class: str | None = Field(
        default=None, description="Binary classification: the class scores refer to (default: the second class)."
    )

    @field_validator("classes", mode="before")
    @classmethod
    def _class_labels(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        keys = [class_key(c) for c in v]
        bad = [c for c, k in zip(v, keys, strict=True) if k is None]
        if bad:
            raise ValueError(f"a class is text, an integer or a boolean, not {bad[0]!r}")
        return keys

    @field_validator("positive_class", mode="before")
    @classmethod
    def _positive_label(cls, v: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        key = class_key(v)
        if key is None:
            raise ValueError(f"a class is text, an integer or a boolean, not {v!r}")
        return key

    segments: list[FieldName] = Field(
        default_factory=list,
        description="Segment columns. A name that is a categorical or boolean feature takes the feature's "
        "value; any other name is read from the record's `segments` object.",
    )
    personal_data: IdentifierPolicies = Field(default_factory=IdentifierPolicies)

    @model_validator(mode="after")
    def _check(self) -> ModelSchema:
        names = [f.name for f in self.features]
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("duplicate segment names")
        numerical = {f.name for f in self.features if f.type is FeatureType.numerical}
        bad_segments = [s for s in self.segments if s in numerical]
        if bad_segments:
            raise ValueError(f"numerical features cannot be segment columns: {', '.join(bad_segments)}")
        self._check_personal_data()
        if self.task is Task.binary_classification and self.classes is None:
            self.classes = ["0", "1"]  # what a scikit-learn binary classifier's classes_ hold
        if self.task.is_classification:
            if not self.classes or len(self.classes) < 2:
                raise ValueError("classification models need `classes` with at least two labels")
            if len(set(self.classes)) != len(self.classes):
                raise ValueError("duplicate class labels")
            if self.task is Task.binary_classification:
                if len(self.classes) != 2:
                    raise ValueError("binary_classification needs exactly two classes")
                if self.positive_class is None:
                    self.positive_class = self.classes[1]
                elif self.positive_class not in self.classes:
                    raise ValueError(f"positive_class {self.positive_class!r} is not one of the classes")
            elif self.positive_class is not None:
                raise ValueError("positive_class applies to binary_classification only")
        else:
            if self.classes:
                raise ValueError("regression models take no classes")
            if self.positive_class is not None:
                raise ValueError("positive_class applies to binary_classification only")
        return self

    def _check_personal_data(self) -> None:
        for f in self.features:
            if f.personal_data is PersonalDataPolicy.hash and f.type is not FeatureType.categorical:
                raise ValueError(
                    f"feature {f.name!r}: only a categorical feature may be hashed (a hashed {f.type.value} "
                    "loses what its drift is measured on); drop it, or keep it"
                )
            if f.personal_data in (PersonalDataPolicy.drop, PersonalDataPolicy.summarise_only) and (
                f.name in self.segments
            ):
                raise ValueError(
                    f"feature {f.name!r} is a segment column: it is kept with each row, so it cannot be "
                    f"{f.personal_data.value.replace('_', '-')}"
                )
        if all(f.personal_data is PersonalDataPolicy.drop for f in self.features):
            raise ValueError("every feature is dropped: nothing would be monitored")
        policies = self.personal_data
        if policies.prediction_id not in (PersonalDataPolicy.keep, PersonalDataPolicy.hash):
            raise ValueError("prediction ids are kept or hashed: a prediction's label finds it by its id")
        features = {f.name for f in self.features}
        for name, policy in policies.segments.items():
            if name not in self.segments or name in features:
                raise ValueError(
                    f"personal_data.segments names {name!r}, not a segment read from the record's `segments` "
                    "(a feature's segment follows the feature's policy)"
                )
            if policy not in (PersonalDataPolicy.keep, PersonalDataPolicy.hash):
                raise ValueError(f"segment {name!r}: a segment is kept or hashed (to drop it, leave it out)")

    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def summaries_only(self) -> bool:
        """Whether the log keeps a prediction's features only in its sample (``IdentifierPolicies.rows``)."""
        return self.personal_data.rows is RowsPolicy.summaries_only

    def carried_features(self) -> frozenset[str]:
        """The features whose summaries the log cannot make again: those only summarised, and
        every one a model keeping summaries only summarises."""
        if self.summaries_only:
            return frozenset(f.name for f in self.features if f.personal_data is not PersonalDataPolicy.drop)
        return self.summarised_only()

    def summarised_only(self) -> frozenset[str]:
        """The features counted into the summaries at ingestion and stored nowhere else."""
        return frozenset(f.name for f in self.features if f.personal_data is PersonalDataPolicy.summarise_only)

    def stored(self) -> ModelSchema:
        """The schema of what a stored row holds: without the features only summarised or dropped
        (what an export and a report's sample have)."""
        monitored, only = self.monitored(), self.summarised_only()
        if not only:
            return monitored
        return monitored.model_copy(update={"features": [f for f in monitored.features if f.name not in only]})

    def monitored(self) -> ModelSchema:
        """The schema without the features it drops: what is stored, summarised and shown."""
        kept = [f for f in self.features if f.personal_data is not PersonalDataPolicy.drop]
        return self if len(kept) == len(self.features) else self.model_copy(update={"features": kept})


class ModelSpec(ModelSchema):
    """Request body of ``POST /v1/models``: a model (or a new version of one) with its schema."""

    name: Name
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-+]{0,63}$")] = "1"
    description: str = ""

    def schema_only(self) -> ModelSchema:
        return ModelSchema.model_validate(self.model_dump(exclude={"name", "version", "description"}))


def schema_from_json(data: dict[str, Any]) -> ModelSchema:
    """A stored schema as monitoring sees it: without the features it drops (``personal_data:
    drop``), which nothing stores or summarises."""
    return ModelSchema.model_validate(data).monitored()


def declared_schema_from_json(data: dict[str, Any]) -> ModelSchema:
    """A stored schema as declared, every feature a record may carry: what validates records."""
    return ModelSchema.model_validate(data)
