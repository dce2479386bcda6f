"""A window's stored predictions as a flat table (Arrow record batches), written as Parquet or CSV.

The columns are the reference upload's (one per feature, ``prediction``, ``score.<class>``,
``label``, segment columns), so an export can be uploaded again as a reference, plus what the
log keeps beside them: ``prediction_id``, ``timestamp``, ``version``, ``latency_ms``,
``label_timestamp`` and ``label_revision``. Typed as the schema says: a numerical feature is a
float (±inf as itself, missing as null), a categorical one text, a boolean one a boolean.

Pure: rows in, batches and bytes out. Memory is what one chunk of rows takes: the writer keeps
nothing between chunks but Parquet's footer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitor.domain.feature_values import feature_block
from monitor.domain.schema import FeatureType, ModelSchema, Task, category_key

# The log's own columns, before the features; a feature or segment of one of these names (or of
# the reference columns after them) is written as ``feature.<name>`` / ``segment.<name>``.
LEADING = ("prediction_id", "timestamp", "version")
TRAILING = ("prediction", "latency_ms", "label", "label_timestamp", "label_revision")
RESERVED = frozenset((*LEADING, *TRAILING, "target", "score"))
# A text cell a spreadsheet would run as a formula (OWASP's list for CSV injection).
FORMULA_START = r"^[=+\-@\t\r]"


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


MEDIA_TYPES = {ExportFormat.parquet: "application/vnd.apache.parquet", ExportFormat.csv: "text/csv; charset=utf-8"}


# A stored prediction with its label, as the export reads it (JSON columns as text):
# prediction_id, ts, version, features, prediction, scores, latency_ms, segments, label,
# label_ts, label_revision.
ExportRow = tuple[Any, ...]


def _text(value: Any) -> str | None:
    """A category as the metrics spell it (``category_key``), text itself the fast way."""
    return value if type(value) is str else category_key(value)


class ExportTable:
    """The columns of a model's export, from the schemas of the versions it covers (their
    features united, in order of first appearance), and each chunk of rows as a record batch."""

    def __init__(self, schemas: Sequence[ModelSchema], spreadsheet_safe: bool = False) -> None:
        self.task = schemas[0].task  # every version of a model has its task
        self.classes: list[str] = []
        kinds: dict[str, FeatureType] = {}
        segments: list[str] = []
        for s in schemas:
            for f in s.features:  # a feature whose type changed between versions is written as text
                kinds[f.name] = f.type if kinds.get(f.name, f.type) is f.type else FeatureType.categorical
            segments += [g for g in s.segments if g not in kinds and g not in segments]
            self.classes += [c for c in s.classes or [] if c not in self.classes]
        self.kinds = kinds
        self.numerical = [n for n, k in kinds.items() if k is FeatureType.numerical]
        self.segments = segments
        self.spreadsheet_safe = spreadsheet_safe
        self.schema = self._arrow_schema()

    @staticmethod
    def _name(prefix: str, name: str, taken: set[str]) -> str:
        out = f"{prefix}.{name}" if name in RESERVED or name.startswith("score.") or name in taken else name
        taken.add(out)
        return out

    def _arrow_schema(self) -> pa.Schema:
        ts = pa.timestamp("us", tz="UTC")
        regression = self.task is Task.regression
        value = pa.float64() if regression else pa.string()
        types = {
            FeatureType.numerical: pa.float64(),
            FeatureType.categorical: pa.string(),
            FeatureType.boolean: pa.bool_(),
        }
        taken: set[str] = set()
        fields = [pa.field("prediction_id", pa.string()), pa.field("timestamp", ts), pa.field("version", pa.string())]
        fields += [pa.field(self._name("feature", n, taken), types[k]) for n, k in self.kinds.items()]
        fields.append(pa.field("prediction", value))
        fields += [pa.field(f"score.{c}", pa.float64()) for c in self.classes]
        fields.append(pa.field("latency_ms", pa.float64()))
        fields += [pa.field(self._name("segment", g, taken), pa.string()) for g in self.segments]
        fields += [
            pa.field("label", value),
            pa.field("label_timestamp", ts),
            pa.field("label_revision", pa.int32()),
        ]
        return pa.schema(fields)

    def batch(self, rows: Sequence[ExportRow]) -> pa.RecordBatch:
        loads = orjson.loads
        (
            ids,
            ts,
            versions,
            feature_docs,
            predictions,
            score_docs,
            latency,
            segment_docs,
            labels,
            label_ts,
            revisions,
        ) = zip(*rows, strict=True) if rows else [()] * 11
        features = [loads(d) for d in feature_docs]
        numbers = feature_block(features, self.numerical)
        column = {n: j for j, n in enumerate(self.numerical)}
        arrays: list[pa.Array] = [
            pa.array(ids, pa.string()),
            pa.array(ts, self.schema.field("timestamp").type),
            pa.array(versions, pa.string()),
        ]
        for name, kind in self.kinds.items():
            if kind is FeatureType.numerical:
                values = numbers[:, column[name]]
                arrays.append(pa.array(values, pa.float64(), mask=np.isnan(values)))
            elif kind is FeatureType.boolean:
                arrays.append(pa.array([d.get(name) for d in features], pa.bool_()))
            else:
                arrays.append(pa.array([_text(d.get(name)) for d in features], pa.string()))
        arrays.append(self._outcomes([loads(p) for p in predictions]))
        if self.classes:
            scores = [{} if s is None else loads(s) for s in score_docs]
            arrays += [pa.array([s.get(c) for s in scores], pa.float64()) for c in self.classes]
        arrays.append(pa.array(latency, pa.float64()))
        if self.segments:
            segments = [{} if s is None else loads(s) for s in segment_docs]
            arrays += [pa.array([_text(s.get(g)) for s in segments], pa.string()) for g in self.segments]
        arrays.append(self._outcomes([None if v is None else loads(v) for v in labels]))
        arrays.append(pa.array(label_ts, self.schema.field("label_timestamp").type))
        arrays.append(pa.array(revisions, pa.int32()))
        if self.spreadsheet_safe:
            arrays = [_defused(a) for a in arrays]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _outcomes(self, values: list[Any]) -> pa.Array:
        if self.task is Task.regression:
            return pa.array(values, pa.float64())
        return pa.array([_text(v) for v in values], pa.string())


def _defused(array: pa.Array) -> pa.Array:
    """Text cells a spreadsheet would run as formulas, prefixed with ' (shown, not run)."""
    if not pa.types.is_string(array.type):
        return array
    risky = pc.fill_null(pc.match_substring_regex(array, FORMULA_START), False)
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


class _Sink:
    """A file for pyarrow's writers whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def encode(table: ExportTable, chunks: Iterator[Sequence[ExportRow]], fmt: ExportFormat) -> Iterator[bytes]:
    """The file, piece by piece: a Parquet row group or a CSV block per chunk of rows. An empty
    window is a file with the header (CSV) or the schema (Parquet) and no rows."""
    sink = _Sink()
    if fmt is ExportFormat.parquet:
        writer: Any = pq.ParquetWriter(sink, table.schema, compression="zstd")
    else:
        writer = pa_csv.CSVWriter(sink, table.schema, write_options=pa_csv.WriteOptions(quoting_style="needed"))
    try:
        for rows in chunks:
            writer.write_batch(table.batch(rows))
            yield sink.take()
    finally:
        writer.close()
    yield sink.take()
