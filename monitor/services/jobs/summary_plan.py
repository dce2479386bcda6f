"""What a version's predictions are summarised into, against its active reference: the columns of
each group (all rows and each tracked segment, on that group's reference edges) and the per-row
values summarised beside them (label-free estimation, reconstruction error).

One plan serves both ways a prediction is summarised: at ingestion, from the batch the API has
decoded (``monitor.services.jobs.summary_deltas``), and by the rollup, from rows read back from the
log (history before a reference existed, a new reference, a backfill). Both read the same values
the same way (``monitor.metrics.log_summary``), so the two give the same summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.db import reference_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Groups, Segment
from monitor.domain.schema import ModelSchema, Task
from monitor.errors import MonitorError
from monitor.metrics.log_summary import AttributionsOfRows, Column, Derived, ReconstructionOfRows, ScoresOfRows
from monitor.metrics.multivariate import RECONSTRUCTION_COLUMN, Reconstruction
from monitor.metrics.profiles import LATENCY_EDGES
from monitor.metrics.quality_summary import RESIDUALS_COLUMN
from monitor.metrics.score_layout import ScoreLayout, reference_layout
from monitor.metrics.window_points import LATENCY
from monitor.services.infra.context import ServiceContext


@dataclass(frozen=True)
class ReferenceView:
    """The reference in use: per segment ('' for all rows) its drift columns' summaries and its
    quality extras (its own quality and residuals, when it has labels)."""

    reference_id: int
    columns: dict[str, dict[str, dict[str, Any]]]
    extras: dict[str, dict[str, dict[str, Any]]]

    @property
    def segments(self) -> list[str]:
        return [s for s in self.columns if s]


def load_reference(ctx: ServiceContext, vrow: VersionRow) -> ReferenceView:
    """The reference the version is measured against: its own, or a challenger's champion's
    (``reference_repo.measured_reference_id``)."""
    with ctx.uow() as uow:
        ref_id = reference_repo.measured_reference_id(uow.conn, vrow.version_id)
    if ref_id is None:
        raise MonitorError(
            f"model {vrow.model_name!r} version {vrow.version!r} has no reference dataset to measure drift against"
        )
    return reference_view(ctx, ref_id)


def reference_view(ctx: ServiceContext, ref_id: int) -> ReferenceView:
    """A reference's summaries, read once per process (a reference never changes)."""
    return ctx.cached_reference(ref_id, lambda: _read_reference(ctx, ref_id))


def _read_reference(ctx: ServiceContext, ref_id: int) -> ReferenceView:
    with ctx.uow() as uow:
        by_segment = reference_repo.all_summaries(uow.conn, ref_id)
    by_segment.setdefault("", {})
    segments = ["", *sorted(s for s in by_segment if s)]
    columns = {seg: {c: v for c, v in by_segment[seg].items() if not c.startswith("_")} for seg in segments}
    extras = {seg: {c: v for c, v in by_segment[seg].items() if c.startswith("_")} for seg in segments}
    return ReferenceView(ref_id, columns, extras)


def parse_segment(key: str, schema: ModelSchema) -> Segment:
    """'region=EU' -> ('region', 'EU'), reading the column by the declared names (a column name
    may itself hold '=')."""
    if not key:
        return None
    for column in sorted(schema.segments, key=len, reverse=True):
        if key.startswith(column + "="):
            return column, key[len(column) + 1 :]
    raise MonitorError(f"segment {key!r} is not one of the model's segment columns")


def column_specs(columns: dict[str, dict[str, Any]]) -> list[Column]:
    """The summarised columns of a group: the reference's drift columns, on its edges, and latency."""
    specs = [
        Column(col, np.asarray(s["edges"], dtype=float) if s["type"] == "numerical" else None)
        for col, s in columns.items()
    ]
    specs.append(Column(LATENCY, LATENCY_EDGES))
    return specs


def derived_summaries(schema: ModelSchema, ref: ReferenceView) -> list[Derived]:
    """What the rollup computes per row besides the columns: a classifier's scores (label-free
    estimation; kept whether or not the reference can calibrate them yet, so that a labelled
    reference uploaded later estimates the hours already summarised), where the reference
    has one, the reconstruction error under its model, and the attributions rows carry."""
    derived: list[Derived] = []
    if schema.task is not Task.regression and schema.classes:
        derived.append(ScoresOfRows(list(schema.classes), score_layout(schema, ref)))
    model = ref.extras[""].get(RECONSTRUCTION_COLUMN)
    if model is not None:
        derived.append(ReconstructionOfRows(Reconstruction.from_json(model)))
    if schema.features:  # summarised where rows carry them, nothing stored where none does
        derived.append(AttributionsOfRows(tuple(f.name for f in schema.features)))
    return derived


@dataclass(frozen=True)
class SummaryPlan:
    """A version's summaries against one reference: each group's columns, the groups, the derived
    per-row summaries."""

    reference_id: int
    columns: dict[str, list[Column]]  # by group key: '' and 'column=value'
    groups: Groups
    derived: tuple[Derived, ...]
    schema: ModelSchema
    residual_edges: dict[str, np.ndarray | None]  # by group key: a regression's residual edges
    score_layout: ScoreLayout  # a classifier's score bins (every group's: the whole reference's)


def score_layout(schema: ModelSchema, ref: ReferenceView) -> ScoreLayout:
    return reference_layout(ref.extras[""], len(schema.classes or []))


def summary_plan(schema: ModelSchema, ref: ReferenceView) -> SummaryPlan:
    residuals = {seg: ref.extras[seg].get(RESIDUALS_COLUMN) for seg in ref.columns}
    return SummaryPlan(
        ref.reference_id,
        {seg: column_specs(cols) for seg, cols in ref.columns.items()},
        Groups({seg: parse_segment(seg, schema) for seg in ref.columns}),
        tuple(derived_summaries(schema, ref)),
        schema,
        {seg: None if r is None else np.asarray(r["edges"], dtype=float) for seg, r in residuals.items()},
        score_layout(schema, ref),
    )
