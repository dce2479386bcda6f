"""Metric points. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, TextClause, select, text

from monitor.db.registry_repo import VersionRow
from monitor.db.tables import metric_points, model_versions
from monitor.metrics.feature_digest import FeatureDigest, FeaturePeak, feature_digests, range_peaks
from monitor.metrics.points import MetricPoint

_UPSERT = """
INSERT INTO metric_points AS m (model_id, model_version_id, metric, labels, window_start, window_end, value,
                                sample_size, reference_size, threshold, drifted, details)
SELECT :model_id, :version_id, p.*
FROM unnest(
    CAST(:metric AS text[]), CAST(CAST(:labels AS text[]) AS jsonb[]), CAST(:window_start AS timestamptz[]),
    CAST(:window_end AS timestamptz[]), CAST(:value AS float8[]), CAST(:sample_size AS bigint[]),
    CAST(:reference_size AS bigint[]), CAST(:threshold AS float8[]), CAST(:drifted AS boolean[]),
    CAST(CAST(:details AS text[]) AS jsonb[])
) AS p
ON CONFLICT (model_id, model_version_id, metric, labels, window_start, window_end) DO UPDATE
SET value = EXCLUDED.value, sample_size = EXCLUDED.sample_size, reference_size = EXCLUDED.reference_size,
    threshold = EXCLUDED.threshold, drifted = EXCLUDED.drifted, details = EXCLUDED.details,
    computed_at = EXCLUDED.computed_at  -- the default, now(): Citus takes no function in DO UPDATE
"""


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


def upsert_points(
    conn: Connection,
    model_id: int,
    version_id: int,
    points: Sequence[MetricPoint],
    features: list[str] | None = None,
) -> int:
    """Write points; a point for the same (metric, labels, window) replaces the stored one.
    ``features``: the version's feature names in schema order, where the caller has them (the
    digests are laid out by them; read from the version otherwise).

    One column array per field, unnested in Postgres: a multi-row VALUES statement had twelve
    parameters per point to compile and parse (0.8 s of a 1,828-point window job)."""
    if not points:
        return 0
    params: dict[str, Any] = {
        "model_id": model_id,
        "version_id": version_id,
        "metric": [p.metric for p in points],
        "labels": [_json(p.labels) for p in points],
        "window_start": [p.window_start for p in points],
        "window_end": [p.window_end for p in points],
        "value": [p.value for p in points],
        "sample_size": [p.sample_size for p in points],
        "reference_size": [p.reference_size for p in points],
        "threshold": [p.threshold for p in points],
        "drifted": [p.drifted for p in points],
        "details": [_json(p.details) for p in points],
    }
    n = conn.execute(text(_UPSERT), params).rowcount
    if any("feature" in p.labels for p in points):
        names = features if features is not None else version_features(conn, version_id)
        upsert_digests(conn, model_id, version_id, feature_digests(points, names))
    return n


def version_features(conn: Connection, version_id: int) -> list[str]:
    """The version's feature names in schema order."""
    sql = "SELECT jsonb_path_query_array(schema, '$.features[*].name') FROM model_versions WHERE id = :v"
    return list(conn.execute(text(sql), {"v": version_id}).scalar_one())


DIGEST_PEAK = np.dtype(">f4")  # as Postgres' float4send writes them (the migration's backfill)

_UPSERT_DIGEST = """
INSERT INTO feature_digests (model_id, model_version_id, metric, labels, window_start, window_end, peaks, drifted)
VALUES (:model_id, :version_id, :metric, CAST(:labels AS jsonb), :window_start, :window_end,
        :peaks, :drifted)
ON CONFLICT (model_id, model_version_id, metric, labels, window_start, window_end) DO UPDATE
SET peaks = EXCLUDED.peaks, drifted = EXCLUDED.drifted
"""


def upsert_digests(conn: Connection, model_id: int, version_id: int, digests: Sequence[FeatureDigest]) -> None:
    """A window's computation writes every feature of a series at once: its digest replaces the
    stored one whole."""
    if digests:
        conn.execute(
            text(_UPSERT_DIGEST),
            [
                {
                    "model_id": model_id,
                    "version_id": version_id,
                    "metric": d.metric,
                    "labels": _json(d.labels),
                    "window_start": d.window_start,
                    "window_end": d.window_end,
                    "peaks": np.asarray(d.peaks, DIGEST_PEAK).tobytes(),
                    "drifted": np.asarray(d.drifted, np.uint8).tobytes(),
                }
                for d in digests
            ],
        )


def query_points(
    conn: Connection,
    model_id: int,
    *,
    metric: str | None = None,
    version_id: int | None = None,
    labels: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Points of a model, oldest window first; ``labels`` must all match (containment)."""
    q = (
        select(
            metric_points.c.metric,
            model_versions.c.version,
            metric_points.c.labels,
            metric_points.c.window_start,
            metric_points.c.window_end,
            metric_points.c.value,
            metric_points.c.sample_size,
            metric_points.c.reference_size,
            metric_points.c.threshold,
            metric_points.c.drifted,
            metric_points.c.details,
            metric_points.c.computed_at,
        )
        .join(model_versions, model_versions.c.id == metric_points.c.model_version_id)
        .where(metric_points.c.model_id == model_id)
    )
    if metric is not None:
        q = q.where(metric_points.c.metric == metric)
    if version_id is not None:
        q = q.where(metric_points.c.model_version_id == version_id)
    if labels:
        q = q.where(metric_points.c.labels.contains(labels))
    if start is not None:
        q = q.where(metric_points.c.window_end > start)
    if end is not None:
        q = q.where(metric_points.c.window_start < end)
    q = q.order_by(metric_points.c.window_start, metric_points.c.metric, metric_points.c.id).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


@dataclass(frozen=True)
class WindowFilter:
    """The points of one version for windows of one length ending in (start, end], for all
    predictions (``segment`` None) or one segment value: windows ending on multiples of
    ``step_seconds`` (an hour, more for a long range, thinned), and the sliding window that ends
    off the hour (one per series: the newest, what alerts were decided on)."""

    model_id: int
    version_id: int
    length_seconds: int
    start: datetime
    end: datetime
    segment: tuple[str, str] | None
    step_seconds: int = 3600

    @classmethod
    def of(
        cls,
        vrow: VersionRow,
        window: timedelta,
        start: datetime,
        end: datetime,
        segment: tuple[str, str] | None,
        step_seconds: int,
    ) -> WindowFilter:
        """The windows of length ``window`` of a version (as ``registry_repo`` reads it)."""
        return cls(vrow.model_id, vrow.version_id, int(window.total_seconds()), start, end, segment, step_seconds)

    def sql(self) -> str:
        seg = (
            "AND NOT labels ? 'segment'"
            if self.segment is None
            else "AND labels ->> 'segment' = :seg_col AND labels ->> 'segment_value' = :seg_val"
        )
        return f"""
            model_id = :m AND model_version_id = :v AND window_end > :start AND window_end <= :end
            AND window_end - window_start = make_interval(secs => :len) {seg}
            AND (CAST(extract(epoch FROM window_end) AS bigint) % :step = 0
                 OR CAST(extract(epoch FROM window_end) AS bigint) % 3600 <> 0)
        """

    def params(self) -> dict[str, Any]:
        return {
            "m": self.model_id,
            "v": self.version_id,
            "start": self.start,
            "end": self.end,
            "len": self.length_seconds,
            "step": self.step_seconds,
            "seg_col": self.segment[0] if self.segment else None,
            "seg_val": self.segment[1] if self.segment else None,
        }


def tuple_rows(conn: Connection, statement: TextClause, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A statement's rows as the driver's plain tuples, in the connection's transaction: building
    SQLAlchemy rows cost more than the driver's reading for a page's ten thousand points."""
    compiled = statement.compile(dialect=conn.dialect)  # :name as the driver's %(name)s, % escaped
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute(str(compiled), params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def window_points(
    conn: Connection,
    where: WindowFilter,
    metric_prefixes: Sequence[str] | None = None,
    features: Mapping[str, Collection[str]] | None = None,
) -> list[dict[str, Any]]:
    """The points of ``where``, oldest first (``metric_prefixes``: of those metrics only;
    ``features``: of the per-feature metrics, those it names and of each the features it lists;
    None: every series)."""
    prefixes = "" if not metric_prefixes else "AND metric LIKE ANY (CAST(:prefixes AS text[]))"
    # The rows are found by index probes whose plan no statistics can change (the rest of the
    # filter is applied to what they return; OFFSET 0 keeps the planner from merging the two):
    # the version's windows in range, or, given features, a probe per feature on the index on
    # (version, feature, window end) and one for the model's own series (feature NULL). Planned
    # as a whole, a never-analysed table's week of a 1,000-feature model was read through the
    # identity index, every point of the version: 424 ms against 42.
    probe = "model_version_id = :v AND window_end > :start AND window_end <= :end"
    source = f"(SELECT * FROM metric_points WHERE {probe} OFFSET 0)"
    chosen = ""
    if features is not None:
        source = f"""(
            SELECT p.* FROM unnest(CAST(:features AS text[])) AS f(name)
            CROSS JOIN LATERAL (
                SELECT * FROM metric_points WHERE {probe} AND labels ->> 'feature' = f.name OFFSET 0
            ) p
            UNION ALL
            (SELECT * FROM metric_points WHERE {probe} AND labels ->> 'feature' IS NULL OFFSET 0)
        )"""
        # each feature's series of the metrics it is drawn for (metric names have no spaces)
        chosen = "AND (labels ->> 'feature' IS NULL OR metric || ' ' || (labels ->> 'feature') = ANY(:series))"
    rows = tuple_rows(
        conn,
        text(
            f"""
            SELECT metric, labels::text, window_start, window_end, value, sample_size, reference_size, threshold,
                   drifted,
                   -- what charts use of the details; the rest (per-point explanations) stays in the table
                   -- (a feature's: its decision and why, which the heatmap's hover says)
                   CASE WHEN metric = 'feature_drift' THEN jsonb_strip_nulls(jsonb_build_object(
                            'kind', details -> 'kind', 'significant', details -> 'significant',
                            'p_value', details -> 'p_value', 'material', details -> 'material',
                            'min_sample_size', details -> 'min_sample_size'))
                        WHEN starts_with(metric, 'concept_drift.') THEN details - 'reference' - 'current'
                        WHEN starts_with(metric, 'comparison.') THEN details
                        WHEN starts_with(metric, 'estimated.') OR metric = 'multivariate_drift'
                             OR starts_with(metric, 'fairness.')
                            THEN jsonb_build_object('lower', details -> 'lower', 'upper', details -> 'upper')
                        ELSE '{{}}'::jsonb END::text AS details
            FROM {source} AS metric_points
            WHERE {where.sql()} {prefixes} {chosen}
            ORDER BY window_end, metric
            """
        ),
        {
            **where.params(),
            "prefixes": [p.replace("_", "\\_") + "%" for p in metric_prefixes or []],
            "features": sorted({f for names in (features or {}).values() for f in names}),
            "series": [f"{m} {f}" for m, names in (features or {}).items() for f in names],  # text[]
        },
    )
    # JSON as text, parsed by orjson: a month of points reads several times faster
    keys: tuple[str, ...] = ("metric", "labels", "window_start", "window_end", "value", "sample_size", "reference_size")
    keys += ("threshold", "drifted", "details")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["labels"] = orjson.loads(d["labels"])
        d["details"] = orjson.loads(d["details"])
        out.append(d)
    return out


def feature_peaks(conn: Connection, where: WindowFilter, features: Sequence[str]) -> list[FeaturePeak]:
    """Each per-feature series' peak over the windows of ``where`` (``features``: the version's, in
    schema order), from the windows' digests: a wide model's page needs the order of its
    features, not its hundreds of thousands of points."""
    rows = conn.execute(
        text(f"SELECT metric, peaks, drifted FROM feature_digests WHERE {where.sql()}"), where.params()
    ).all()
    return range_peaks(((m, np.frombuffer(p, DIGEST_PEAK), np.frombuffer(d, np.uint8)) for m, p, d in rows), features)


def computed_window_ends(
    conn: Connection, model_id: int, version_id: int, length_seconds: int, ends: Sequence[datetime]
) -> set[datetime]:
    """Which of ``ends`` a window of this length was computed for (every window writes at least
    its throughput point): an index probe per end."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT window_end FROM metric_points WHERE model_id = :m AND model_version_id = :v "
            "AND window_end = ANY(CAST(:ends AS timestamptz[])) "
            "AND window_end - window_start = make_interval(secs => :len)"
        ),
        {"m": model_id, "v": version_id, "ends": list(ends), "len": length_seconds},
    ).scalars()
    return {e.astimezone(UTC) for e in rows}


def delete_sliding_points(
    conn: Connection, model_id: int, version_id: int, length: timedelta, since: datetime, until: datetime
) -> int:
    """Drop the points of windows of ``length`` ending in [since, until) off an hour boundary:
    a sliding window's points stand until the next one is computed (windows ending at hour
    boundaries stay, as the series' history)."""
    where = (
        "WHERE model_id = :m AND model_version_id = :v AND window_end >= :since AND window_end < :until "
        "AND window_end - window_start = make_interval(secs => :len) "
        "AND window_end <> date_trunc('hour', window_end, 'UTC')"
    )
    params = {"m": model_id, "v": version_id, "since": since, "until": until, "len": length.total_seconds()}
    # one statement for both tables: a scheduler run of a small model is mostly round trips
    sql = f"WITH digests AS (DELETE FROM feature_digests {where}) DELETE FROM metric_points {where}"
    return conn.execute(text(sql), params).rowcount
