"""Column summaries of a window of the prediction log, built from its rows a chunk at a time.

The rows arrive decoded (features, scores and segments as dicts, the prediction, the latency),
each row once whatever the number of features or tracked segments: a chunk's numerical columns
become one matrix, and every group (all rows, each tracked segment value) takes its rows of it on
its own reference's edges. The cost is linear in rows x columns. (Summarising inside Postgres, one
``features ->> key`` per row and column, decompressed a wide row's document once per column:
quadratic in the number of features, 0.07M values/s at 500 features.)

Values read as the rollup always read them: a JSON null or an absent key is missing, the strings
"Infinity" and "-Infinity" are ±inf (counted apart, see ``NumericSummary.non_finite``), a
category is spelled as Postgres's ``->>`` spells it (``category_key``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np

from monitor.domain.feature_values import feature_block
from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN, AttributionSummary, attribution_matrix
from monitor.metrics.estimation import SCORES_COLUMN, ScoreSummary, score_matrix
from monitor.metrics.multivariate import RECONSTRUCTION_COLUMN, Reconstruction, ReconstructionSummary
from monitor.metrics.profiles import (
    CategoricalSummary,
    NumericSummary,
    Summary,
    category_keys,
    numeric_parts_of_columns,
    summary_to_parts,
)
from monitor.metrics.score_layout import ScoreLayout

# (stats, counts): the storage form of one column's summary (see monitor.metrics.profiles).
Parts = tuple[dict[str, Any], bytes | None]


@dataclass(frozen=True)
class Column:
    name: str  # "features.age", "prediction", "scores.default", "latency_ms"
    edges: np.ndarray | None  # a numerical column's reference edges; None for a categorical one

    @property
    def source_and_key(self) -> tuple[str, str]:
        source, _, key = self.name.partition(".")
        return source, key


@dataclass
class Chunk:
    """Decoded rows of the log, in the same order in every list."""

    features: list[dict[str, Any]]
    scores: list[dict[str, Any] | None]
    predictions: list[Any]
    latency_ms: list[float | None]
    segments: list[dict[str, Any] | None]
    attributions: list[dict[str, Any] | None] = field(default_factory=list)  # empty: none logged
    _read: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # columns read, by name
    _spelled: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # segment columns' values
    _categories: dict[str, list[str | None]] = field(default_factory=dict, repr=False)  # by column name

    def __len__(self) -> int:
        return len(self.features)

    def values(self, column: Column) -> list[Any]:
        source, key = column.source_and_key
        if source == "features":
            return [d.get(key) for d in self.features]
        if source == "scores":
            return [(d or {}).get(key) for d in self.scores]
        if source == "latency_ms":
            return list(self.latency_ms)
        return list(self.predictions)

    def numbers(self, columns: Sequence[Column]) -> np.ndarray:
        """The columns' values as a rows x columns float matrix: None is NaN, "Infinity" ±inf.
        Features are read row by row (one list per row: the fast way through many dicts), the
        few other columns one by one. Columns read once are kept: the reconstruction error reads
        the features the drift columns read already."""
        names = [c.name for c in columns]
        if names and all(n in self._read for n in names):
            return np.column_stack([self._read[n] for n in names])
        out = self._numbers(columns)
        for j, n in enumerate(names):
            self._read[n] = out[:, j]
        return out

    def _numbers(self, columns: Sequence[Column]) -> np.ndarray:
        out = np.empty((len(self), len(columns)), dtype=float)
        features = [(j, c.source_and_key[1]) for j, c in enumerate(columns) if c.source_and_key[0] == "features"]
        if features:
            keys = [k for _, k in features]
            out[:, [j for j, _ in features]] = feature_block(self.features, keys)
        for j, c in enumerate(columns):
            if c.source_and_key[0] != "features":
                out[:, j] = np.array(self.values(c), dtype=float)
        return out

    def in_segment(self, column: str, value: str) -> np.ndarray:
        """Which rows a segment holds: their ``segments`` value of ``column`` spelled as ``value``.
        Each row's value is spelled once per chunk, whatever the number of the column's values."""
        key = f"segments.{column}"
        spelled = self._spelled.get(key)
        if spelled is None:
            spelled = self._spelled[key] = np.array(
                category_keys([(s or {}).get(column) for s in self.segments]), dtype=object
            )
        return np.asarray(spelled == value, dtype=bool)

    def categories(self, column: Column) -> list[str | None]:
        """A column's values spelled as categories (``category_key``), once per chunk: every
        group summarising the column reads the same list."""
        spelled = self._categories.get(column.name)
        if spelled is None:
            spelled = self._categories[column.name] = category_keys(self.values(column))
        return spelled


class RowSummary(Protocol):
    """A mergeable summary of something computed per row (not a column of the log)."""

    def to_parts(self) -> tuple[dict[str, Any], bytes | None]: ...

    def merge(self, other: Self) -> Self: ...


class Derived(Protocol):
    """A summary of values computed from each row: computed once per chunk, each group summarising
    its own rows of them. Stored, like a column's summary, under ``name``."""

    @property
    def name(self) -> str: ...

    def rows(self, chunk: Chunk) -> np.ndarray: ...

    def summarise(self, values: np.ndarray) -> RowSummary | None:
        """The summary of a group's rows of ``rows``' values; None when they hold nothing to
        summarise (nothing is stored then)."""
        ...


@dataclass(frozen=True)
class ScoresOfRows:
    """Every prediction's normalised scores and predicted class, for label-free estimation."""

    classes: list[str]
    layout: ScoreLayout
    name: str = SCORES_COLUMN

    def rows(self, chunk: Chunk) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        p = score_matrix(chunk.scores, self.classes)
        predicted = [index.get(k or "", -1) for k in category_keys(chunk.predictions)]
        return np.column_stack([p, np.asarray(predicted, dtype=float)])

    def summarise(self, values: np.ndarray) -> ScoreSummary:
        return ScoreSummary.of(values[:, :-1], values[:, -1], self.layout)


@dataclass(frozen=True)
class ReconstructionOfRows:
    """Each row's reconstruction error under the reference's model (multivariate drift)."""

    model: Reconstruction
    name: str = RECONSTRUCTION_COLUMN

    def rows(self, chunk: Chunk) -> np.ndarray:
        numbers = chunk.numbers([Column(f"features.{f}", None) for f in self.model.numerical])
        categories = [chunk.categories(Column(f"features.{f}", None)) for f in self.model.categorical]
        return self.model.errors(self.model.encode(numbers, categories))

    def summarise(self, values: np.ndarray) -> ReconstructionSummary:
        return ReconstructionSummary.of(values)


@dataclass(frozen=True)
class AttributionsOfRows:
    """The attributions rows carry, per feature (``features``: the model's): most models log
    none, and a chunk without any costs a scan of its rows."""

    features: tuple[str, ...]
    name: str = ATTRIBUTIONS_COLUMN

    def rows(self, chunk: Chunk) -> np.ndarray:
        return attribution_matrix(chunk.attributions, self.features)

    def summarise(self, values: np.ndarray) -> AttributionSummary | None:
        if values.shape[1] == 0:
            return None
        return AttributionSummary.of(values, self.features)


# How a stored per-row summary is read back, by the name it is stored under.
ROW_SUMMARIES: dict[str, Callable[[dict[str, Any], bytes | None], RowSummary]] = {
    SCORES_COLUMN: ScoreSummary.from_parts,
    RECONSTRUCTION_COLUMN: ReconstructionSummary.from_parts,
    ATTRIBUTIONS_COLUMN: AttributionSummary.from_parts,
}


# Numbers a group holds before it counts them: the rows of several decoded chunks are counted in
# one pass per column, so a wide model's few rows per chunk do not pay a column's fixed cost
# (searching its edges, allocating its counts) chunk after chunk. 4M values are 32 MB.
PENDING_VALUES = 4_000_000


class GroupSummaries:
    """One group's column summaries, added up chunk by chunk."""

    def __init__(self, columns: Sequence[Column], derived: Sequence[Derived] = ()) -> None:
        self.numerical = [c for c in columns if c.edges is not None]
        self.categorical = [c for c in columns if c.edges is None]
        self.derived = list(derived)
        self.summaries: dict[str, Summary] = {}
        self.row_summaries: dict[str, RowSummary] = {}
        self._pending: list[np.ndarray] = []
        self._pending_values = 0

    def add(
        self,
        chunk: Chunk,
        rows: np.ndarray | None,
        matrix: np.ndarray | None,
        derived_values: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Add the chunk's ``rows`` (a mask; None for all) of this group's columns. ``matrix``:
        the chunk's values of ``self.numerical``, as ``Chunk.numbers`` makes them;
        ``derived_values``: each derived summary's per-row values of the chunk, computed once for
        every group (``summary_repo`` does)."""
        if rows is not None and not rows.any():
            return
        for d in self.derived:
            per_row = (derived_values or {})[d.name]
            part = d.summarise(per_row if rows is None else per_row[rows])
            if part is None:
                continue
            held = self.row_summaries.get(d.name)
            self.row_summaries[d.name] = part if held is None else held.merge(part)
        if self.numerical:
            m = chunk.numbers(self.numerical) if matrix is None else matrix
            self._pending.append(m if rows is None else m[rows])
            self._pending_values += self._pending[-1].size
            if self._pending_values >= PENDING_VALUES:
                self._count_pending()
        if self.categorical:
            chosen = None if rows is None else np.flatnonzero(rows).tolist()
            for c in self.categorical:
                values = chunk.categories(c)
                if chosen is not None:
                    values = [values[i] for i in chosen]
                part_c = CategoricalSummary.of_keys(values)
                s_c = self.summaries.get(c.name)
                self.summaries[c.name] = part_c if s_c is None else s_c.merge(part_c)  # type: ignore[arg-type]

    def _count_pending(self) -> None:
        if not self._pending:
            return
        m = self._pending[0] if len(self._pending) == 1 else np.vstack(self._pending)
        self._pending, self._pending_values = [], 0
        for j, c in enumerate(self.numerical):
            part = NumericSummary.of(m[:, j], np.asarray(c.edges, dtype=float))
            s = self.summaries.get(c.name)
            assert s is None or isinstance(s, NumericSummary)  # a numerical column's
            self.summaries[c.name] = part if s is None else s.merge(part)

    def parts(self) -> dict[str, Parts]:
        direct: dict[str, Parts] = {}
        if self._pending and not any(c.name in self.summaries for c in self.numerical):
            # all of it still pending (one batch, a small hour): its storage form made straight
            # from the values, never the dense counts (``numeric_parts``); the cost of a batch
            # summarised at ingestion is then what its rows cost, not its columns' edges
            m = self._pending[0] if len(self._pending) == 1 else np.vstack(self._pending)
            self._pending, self._pending_values = [], 0
            edges = [np.asarray(c.edges, dtype=float) for c in self.numerical]
            direct = dict(zip((c.name for c in self.numerical), numeric_parts_of_columns(m, edges), strict=True))
        self._count_pending()
        out = direct | {name: summary_to_parts(s) for name, s in self.summaries.items()}
        return out | {name: s.to_parts() for name, s in self.row_summaries.items()}


def add_chunk(
    chunk: Chunk,
    accumulators: dict[str, GroupSummaries],
    segments: dict[str, tuple[str, str] | None],
    derived: Sequence[Derived],
) -> None:
    """Add a chunk's rows to each group's summaries (``segments``: a group key's segment, None for
    all rows; a key it does not name counts all rows too). The numbers of the same columns, and
    the derived values, are computed once for every group (the derived after the columns: the
    reconstruction reads features the columns have read)."""
    matrices: dict[tuple[str, ...], np.ndarray] = {}
    for acc in accumulators.values():
        names = tuple(c.name for c in acc.numerical)
        if names and names not in matrices:
            matrices[names] = chunk.numbers(acc.numerical)
    derived_values = {d.name: d.rows(chunk) for d in derived}
    for key, acc in accumulators.items():
        segment = segments.get(key)
        rows = None if segment is None else chunk.in_segment(*segment)
        acc.add(chunk, rows, matrices.get(tuple(c.name for c in acc.numerical)), derived_values)
