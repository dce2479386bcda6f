"""Reading reference datasets from CSV, Parquet or JSON into the record shape the validator takes.

Tabular files are flat: one column per feature, plus optional ``prediction``, ``label`` (or
``target``), ``score`` (binary: probability of the positive class) or ``score.<class>`` columns,
``attribution.<feature>`` columns (the feature's attribution: a SHAP value, say), and segment
columns by name. JSON may also hold records in the prediction-log shape
(``{"features": {...}, "prediction": ..., "label": ...}``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import Any

import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from monitor.domain.payloads import loads_json
from monitor.domain.schema import FeatureType, ModelSchema
from monitor.errors import RecordError


class TableFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"
    json = "json"


CONTENT_TYPES = {
    "text/csv": TableFormat.csv,
    "application/csv": TableFormat.csv,
    "application/vnd.apache.parquet": TableFormat.parquet,
    "application/x-parquet": TableFormat.parquet,
    "application/parquet": TableFormat.parquet,
    "application/json": TableFormat.json,
}


class ColumnMapping(BaseModel):
    """Which of a file's columns are what, for data with its own column names (Evidently's
    ``ColumnMapping``, NannyML's ``y_pred``/``y_true``): nothing has to be renamed first. Features
    and segments are read by name unless ``features`` maps them; ``timestamp`` and ``id`` columns
    are read past (a reference has no time); ``ignore`` leaves columns out, ``ignore_unknown``
    every column that is none of these."""

    model_config = ConfigDict(extra="forbid")

    prediction: str | None = Field(None, description="the prediction's column (default: prediction)")
    label: str | None = Field(None, description="the ground truth's column (default: label or target)")
    score: str | None = Field(None, description="binary: the positive class's probability (default: score)")
    scores: dict[str, str] = Field(default_factory=dict, description="class -> its probability's column")
    features: dict[str, str] = Field(default_factory=dict, description="feature -> its column, where they differ")
    attributions: dict[str, str] = Field(
        default_factory=dict, description="feature -> its attribution's column (default: attribution.<feature>)"
    )
    timestamp: str | None = Field(None, description="a time column, read past")
    id: str | None = Field(None, description="a row id column, read past")
    ignore: list[str] = Field(default_factory=list, description="columns to leave out")
    ignore_unknown: bool = Field(False, description="leave out every column that is none of the above")

    def is_empty(self) -> bool:
        return self == ColumnMapping()

    def file_columns(self, schema: ModelSchema) -> Any:
        """Whether a column of the file is one the reader takes or the mapping names (before it
        renames anything)."""
        named = {c for c in (self.prediction, self.label, self.score, self.timestamp, self.id) if c is not None}
        named |= set(self.scores.values()) | set(self.features.values()) | set(self.ignore)
        named |= set(self.attributions.values())
        known = _known_columns(schema)
        return lambda col: col in named or known(col)

    def apply(self, table: pd.DataFrame, schema: ModelSchema) -> list[RecordError]:
        """Rename the mapped columns to the names the reader takes and drop the ignored ones, in
        place; errors name the mapping's field when a column it names is not in the file."""
        columns = {str(c) for c in table.columns}
        errors: list[RecordError] = []
        renames: dict[str, str] = {}
        wanted: list[tuple[str, str | None, str]] = [
            ("prediction", self.prediction, "prediction"),
            ("label", self.label, "label"),
            ("score", self.score, "score"),
            *[(f"scores.{cls}", col, f"score.{cls}") for cls, col in self.scores.items()],
            *[(f"features.{name}", col, name) for name, col in self.features.items()],
            *[(f"attributions.{name}", col, f"{ATTRIBUTION_PREFIX}{name}") for name, col in self.attributions.items()],
        ]
        known = set(schema.feature_names())
        for field, column, target in wanted:
            if column is None:
                continue
            if column not in columns:
                errors.append(RecordError(None, f"mapping.{field}", f"no column {column!r} in the file"))
            elif field.startswith(("features.", "attributions.")) and field.partition(".")[2] not in known:
                errors.append(RecordError(None, f"mapping.{field}", "not a feature of the model"))
            elif column != target:
                renames[column] = target
        dropped = set(self.ignore) | {c for c in (self.timestamp, self.id) if c is not None}
        for column in sorted(dropped - columns):
            errors.append(RecordError(None, "mapping.ignore", f"no column {column!r} in the file"))
        taken = set(renames.values())
        clash = sorted(c for c in columns if c in taken and c not in renames and c not in dropped)
        for column in clash:
            errors.append(RecordError(None, column, "the mapping names another column for this; ignore this one"))
        if errors:
            return errors
        table.drop(columns=[c for c in table.columns if str(c) in dropped], inplace=True)
        table.rename(columns=renames, inplace=True)
        if self.ignore_unknown:
            keep = _known_columns(schema)
            table.drop(columns=[c for c in table.columns if not keep(str(c))], inplace=True)
        return []


def _score_class(col: str, schema: ModelSchema) -> str | None:
    """The class a score column holds the probability of (``score``: the positive class's;
    ``score.<class>``), or None when ``col`` is no score column of this model."""
    if col == "score":
        return schema.positive_class
    if col.startswith(("score.", "scores.")) and col.split(".", 1)[1] in (schema.classes or []):
        return col.split(".", 1)[1]
    return None


ATTRIBUTION_PREFIX = "attribution."


def _attributed_feature(col: str, features: Collection[str]) -> str | None:
    """The feature (of ``features``, the schema's names) an ``attribution.<feature>`` column
    holds the attributions to, or None."""
    if col.startswith(ATTRIBUTION_PREFIX) and (name := col.removeprefix(ATTRIBUTION_PREFIX)) in features:
        return name
    return None


def _known_columns(schema: ModelSchema) -> Any:
    features = set(schema.feature_names())
    named = features | set(schema.segments) | {"prediction", "label", "target"}
    return lambda col: (
        col in named or _score_class(col, schema) is not None or _attributed_feature(col, features) is not None
    )


class UnreadableTable(ValueError):
    pass


def format_from(content_type: str | None, filename: str | None = None) -> TableFormat | None:
    if content_type:
        fmt = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if fmt:
            return fmt
    if filename:
        suffix = filename.rsplit(".", 1)[-1].lower()
        if suffix in {f.value for f in TableFormat}:
            return TableFormat(suffix)
        if suffix == "pq":
            return TableFormat.parquet
    return None


def text_columns(schema: ModelSchema) -> set[str]:
    """The columns whose values are categories: categorical features, segment columns and, for a
    classifier, the prediction and the label."""
    out = {f.name for f in schema.features if f.type is FeatureType.categorical} | set(schema.segments)
    if schema.task.is_classification:
        out |= {"prediction", "label", "target"}
    return out


def _as_category(value: Any) -> Any:
    """A category a reader typed as a number: a column of integer codes with an empty cell comes
    back from pandas or Parquet as floats (1.0, NaN). Whole numbers are the codes they were, a
    missing cell is missing; anything else is left for the validator to judge."""
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer():
            return int(value)
    return value


# Every value of a text column spelled like this was written from floats (pandas writes an integer
# column with an empty cell as 1.0, 2.0, ...): the codes are the integers.
_WRITTEN_AS_FLOAT = re.compile(r"-?\d+\.0+")


def _mapped_text_columns(mapping: ColumnMapping, schema: ModelSchema) -> set[str]:
    """The file's own names of columns read as categories (read as written, before renaming)."""
    categorical = {f.name for f in schema.features if f.type is FeatureType.categorical}
    out = {col for name, col in mapping.features.items() if name in categorical}
    if schema.task.is_classification:
        out |= {c for c in (mapping.prediction, mapping.label) if c is not None}
    return out


def _categories_as_read(table: pd.DataFrame, columns: set[str]) -> None:
    for col in columns & set(table.columns):
        values = table[col].tolist()
        if pd.api.types.is_float_dtype(table[col].dtype):
            fixed = [_as_category(v) for v in values]
        else:
            present = [v for v in values if isinstance(v, str)]
            if not present or not all(_WRITTEN_AS_FLOAT.fullmatch(v) for v in present):
                continue
            fixed = [str(int(v.split(".", 1)[0])) if isinstance(v, str) else v for v in values]
        # built as objects: pandas would infer floats again from ints and None
        table[col] = pd.Series(fixed, index=table.index, dtype=object)


UNKNOWN_COLUMN = (
    "unknown column: not a feature, segment, prediction, label, score or attribution "
    "(say what it is with the column mapping, or leave it out with ignore)"
)
# Unknown columns a refusal names before the file is parsed: parsing a header of 100,000
# columns took minutes of CPU to say that they were unknown.
MAX_UNKNOWN_COLUMNS = 100


def _header(data: bytes, fmt: TableFormat) -> list[str] | None:
    """A flat file's column names, read without parsing its rows (None: not known before)."""
    try:
        if fmt is TableFormat.csv:
            line = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
            return next(csv.reader([line]), [])
        if fmt is TableFormat.parquet:
            import pyarrow.parquet as pq  # only where a Parquet file comes

            return list(pq.read_schema(io.BytesIO(data)).names)
    except Exception:  # unreadable: the full read says why
        return None
    return None


def _read_frame(
    data: bytes, fmt: TableFormat, text: set[str], usecols: list[str] | None = None
) -> pd.DataFrame | list[dict[str, Any]]:
    try:
        if fmt is TableFormat.csv:
            # categories as written ("007" stays "007"); an empty cell is missing either way
            return pd.read_csv(io.BytesIO(data), dtype=dict.fromkeys(text, str), usecols=usecols)
        if fmt is TableFormat.parquet:
            return pd.read_parquet(io.BytesIO(data), columns=usecols)
        doc = loads_json(data)  # Python's Infinity and NaN literals too, as ingestion reads them
    except orjson.JSONDecodeError as exc:
        raise UnreadableTable(f"malformed JSON: {exc}") from exc
    except Exception as exc:  # pandas and pyarrow raise many kinds
        raise UnreadableTable(f"cannot read the {fmt.value} file: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("records"), list):
        doc = doc["records"]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise UnreadableTable('JSON reference data must be a list of objects or {"records": [...]}')
    if doc and "features" in doc[0]:
        return doc  # already in the nested record shape
    try:
        return pd.DataFrame.from_records(doc)
    except OverflowError:
        # an integer past float64 (JSON reads it exactly): kept as it is, so that the validator
        # refuses it with its row and column
        return pd.DataFrame(doc, dtype=object)


def read_reference(
    data: bytes, fmt: TableFormat, schema: ModelSchema, mapping: ColumnMapping | None = None
) -> tuple[list[dict[str, Any]], list[RecordError]]:
    """Records in the nested shape, or column-level errors (index None) when the columns do not fit."""
    mapping = mapping or ColumnMapping()
    text = text_columns(schema) | _mapped_text_columns(mapping, schema)
    header, usecols = _header(data, fmt), None
    if header is not None:
        keep = mapping.file_columns(schema)
        if mapping.ignore_unknown:  # the others are never parsed
            usecols = [c for c in header if keep(c)]
        else:
            unknown = [c for c in header if not keep(c)]
            if len(unknown) > MAX_UNKNOWN_COLUMNS:
                named = [RecordError(None, c, UNKNOWN_COLUMN) for c in unknown[:MAX_UNKNOWN_COLUMNS]]
                why = f"{len(unknown):,} columns are none of the model's: the file was not read past its header"
                return [], [*named, RecordError(None, "columns", why)]
    table = _read_frame(data, fmt, text, usecols)
    if isinstance(table, list):
        if not mapping.is_empty():
            return [], [RecordError(None, "mapping", "a column mapping applies to flat tables, not nested records")]
        return table, []
    table.columns = [str(c) for c in table.columns]
    mapping_errors = mapping.apply(table, schema)
    if mapping_errors:
        return [], mapping_errors
    _categories_as_read(table, text_columns(schema))
    roles, errors = _column_roles(list(table.columns), schema)
    if errors:
        return [], errors
    return _nested_records(table, schema, roles), []


@dataclass(frozen=True)
class ColumnRoles:
    """The columns of a flat table that are neither features, segments nor the targets."""

    scores: dict[str, str] = dataclass_field(default_factory=dict)  # column -> the class it holds the score of
    attributions: dict[str, str] = dataclass_field(default_factory=dict)  # column -> the feature it attributes


def _column_roles(columns: list[str], schema: ModelSchema) -> tuple[ColumnRoles, list[RecordError]]:
    """The score and attribution columns of a flat table, or what is wrong with its columns:
    one that is nothing of the model's, a required feature missing, both a label and a target."""
    features = set(schema.feature_names())
    errors: list[RecordError] = []
    roles = ColumnRoles()
    for col in columns:
        if col in features or col in schema.segments or col in ("prediction", "label", "target"):
            continue
        if (cls := _score_class(col, schema)) is not None:
            roles.scores[col] = cls
        elif (feature := _attributed_feature(col, features)) is not None:
            roles.attributions[col] = feature
        else:
            errors.append(RecordError(None, col, UNKNOWN_COLUMN))
    missing = [f.name for f in schema.features if f.required and f.name not in columns]
    errors.extend(RecordError(None, name, "required feature column is missing") for name in missing)
    if "label" in columns and "target" in columns:
        errors.append(RecordError(None, "target", "give either a label or a target column, not both"))
    return roles, errors


def _nested_records(table: pd.DataFrame, schema: ModelSchema, roles: ColumnRoles) -> list[dict[str, Any]]:
    """A flat table's rows in the nested record shape the validator takes."""
    columns = list(table.columns)
    features = set(schema.feature_names())
    segments = [s for s in schema.segments if s not in features]
    label_col = "label" if "label" in columns else "target" if "target" in columns else None
    feature_cols = [c for c in columns if c in features]
    out = []
    for row in table.to_dict("records"):
        rec: dict[str, Any] = {"features": {c: row[c] for c in feature_cols}}
        if "prediction" in row:
            rec["prediction"] = row["prediction"]
        if label_col:
            rec["label"] = row[label_col]
        if roles.scores:
            scores = {cls: row[c] for c, cls in roles.scores.items() if row[c] == row[c]}
            rec["scores"] = scores or None
        if roles.attributions:
            rec["attributions"] = {name: row[c] for c, name in roles.attributions.items()}
        if segments:
            rec["segments"] = {s: row.get(s) for s in segments if s in row}
        out.append(rec)
    return out
