"""A shadow's predictions paired with its champion's by request id, for their comparison over a
window (``monitor.metrics.comparison``): hourly pair summaries (``monitor.metrics.pairs``) made
from the log where missing or stale, and merged."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime

from monitor.db import record_repo, reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.schema import ModelSchema
from monitor.metrics.comparison import Pairs
from monitor.metrics.pairs import PairingRow, PairSummary
from monitor.metrics.score_layout import SCORE_LAYOUT_COLUMN, ScoreLayout, reference_layout
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import HOUR

RUN_HOURS = 24  # stale pair hours read at once: a day's rows in two queries, not two per hour


def _runs(hours: list[datetime]) -> list[list[datetime]]:
    """Consecutive hours, at most ``RUN_HOURS`` to a run."""
    runs: list[list[datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][-1] == HOUR and len(runs[-1]) < RUN_HOURS:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


def _pair_classes(schema: ModelSchema) -> tuple[str, str] | None:
    """(the other class, the positive one) of a binary model with a positive class: scores kept."""
    classes, positive = schema.classes or [], schema.positive_class
    if positive is None or len(classes) != 2:
        return None
    return next(c for c in classes if c != positive), positive


def _read_pairs(
    ctx: ServiceContext, model_id: int, ids: tuple[int, int], start: datetime, end: datetime, schema: ModelSchema
) -> tuple[datetime, list[PairingRow], list[PairingRow]]:
    """When it read, the champion's rows in [start, end) and the shadow's an hour either side.
    ``ids``: the champion's version id, the shadow's."""
    classes = _pair_classes(schema)
    with ctx.uow() as uow:
        read_at = summary_repo.read_time(uow.conn)
        theirs = record_repo.pairing_rows(uow.conn, model_id, ids[0], start, end, classes)
        mine = record_repo.pairing_rows(uow.conn, model_id, ids[1], start - HOUR, end + HOUR, classes)
    return read_at, theirs, mine


def _pair_layout(ctx: ServiceContext, version_ids: Sequence[int], schema: ModelSchema) -> ScoreLayout:
    """The positive class's score bins of the first of ``version_ids`` whose reference has a
    layout (the shadow's, then its champion's), or the standard ones."""
    classes = list(schema.classes or [])
    if schema.positive_class not in classes:
        return ScoreLayout.standard(1)
    with ctx.uow() as uow:
        for version_id in version_ids:
            ref_id = reference_repo.active_reference_id(uow.conn, version_id)
            doc = None if ref_id is None else reference_repo.one_summary(uow.conn, ref_id, SCORE_LAYOUT_COLUMN)
            if doc is not None:
                extras = {SCORE_LAYOUT_COLUMN: doc}
                return reference_layout(extras, len(classes)).only(classes.index(schema.positive_class))
    return ScoreLayout.standard(1)


def _pair_run(
    ctx: ServiceContext, key: summary_repo.PairKey, run: list[datetime], schema: ModelSchema, layout: ScoreLayout
) -> None:
    """Make and store the pair summaries of a run of hours, from one read of its rows."""
    ids = (key.champion_id, key.shadow_id)
    read_at, theirs, mine = _read_pairs(ctx, key.model_id, ids, run[0], run[-1] + HOUR, schema)
    at_c, at_s = [r[0] for r in theirs], [r[0] for r in mine]
    made = []
    for hour in run:
        c = theirs[bisect_left(at_c, hour) : bisect_left(at_c, hour + HOUR)]
        s = mine[bisect_left(at_s, hour - HOUR) : bisect_left(at_s, hour + 2 * HOUR)]
        made.append((hour, PairSummary.of(c, s, schema.positive_class, layout)))
    with ctx.uow() as uow:
        for hour, summary in made:
            summary_repo.replace_pair_hour(uow.conn, key, hour, summary.counts["pairs"], summary.to_parts(), read_at)
        uow.commit()


def shadow_pairs(
    ctx: ServiceContext, vrow: VersionRow, champion: VersionRow, schema: ModelSchema, start: datetime, end: datetime
) -> Pairs:
    """A shadow's predictions of [start, end) paired with the champion's: the window's pair
    summaries merged, after making those of hours never summarised or stale. A shadow measured
    against no reference (neither its own nor its champion's) has nowhere to keep them: its window
    is paired whole."""
    with ctx.uow() as uow:
        ref_id = reference_repo.measured_reference_id(uow.conn, vrow.version_id)
    layout = _pair_layout(ctx, [vrow.version_id, champion.version_id], schema)
    if ref_id is None:
        _, theirs, mine = _read_pairs(ctx, vrow.model_id, (champion.version_id, vrow.version_id), start, end, schema)
        return PairSummary.of(theirs, mine, schema.positive_class, layout).pairs()
    key = summary_repo.PairKey(vrow.model_id, vrow.version_id, ref_id, champion.version_id)
    with ctx.uow() as uow:
        stale = summary_repo.stale_pair_hours(uow.conn, key, start, end)
    for run in _runs(stale):
        _pair_run(ctx, key, run, schema, layout)
    with ctx.uow() as uow:
        parts = summary_repo.pair_hours(uow.conn, key, start, end)
    return PairSummary.merged([PairSummary.from_parts(*p) for p in parts]).pairs()
