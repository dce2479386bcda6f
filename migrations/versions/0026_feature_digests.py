"""Per-feature series a wide model's page can rank without reading their points.

- ``feature_digests``: per version, per-feature metric, segment (the point's labels less
  ``feature`` and ``method``) and window, one value per feature of the version's schema, in
  schema order: a drift point's severity (1 at its threshold), any other point's value, 0 for a
  point without one, NaN where the window has no point for the feature (``peaks``: big-endian
  4-byte floats, as ``float4send`` writes them); and whether each feature's point was decided
  drifted (``drifted``: a byte each, 1 or 0). Packed rather than ``real[]``: numpy reads them as
  they come, where unpacking a week of arrays element by element cost Postgres 31 ms. Ranking a
  1,000-feature model's features over a week of hourly windows reads 504 such rows instead of
  half a million points. Written with the points, in the same transaction, and deleted with
  them. Distributed with the points on Citus.
- ``metric_points_feature``: the points of given features (and, through NULL, the model's own
  series) by an index probe each, where the page read every point of the range and kept those.

Existing points are carried over.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE feature_digests (
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            metric           text NOT NULL,
            labels           jsonb NOT NULL,
            window_start     timestamptz NOT NULL,
            window_end       timestamptz NOT NULL,
            peaks            bytea NOT NULL,
            drifted          bytea NOT NULL,
            PRIMARY KEY (model_id, model_version_id, metric, labels, window_start, window_end),
            CHECK (length(peaks) = 4 * length(drifted))
        );
        CREATE INDEX feature_digests_version_end ON feature_digests (model_version_id, window_end);

        CREATE INDEX metric_points_feature ON metric_points (model_version_id, (labels ->> 'feature'), window_end);

        WITH points AS (  -- one per feature and window (a feature's drift has one method a window)
            SELECT DISTINCT ON (model_version_id, metric, labels - 'feature' - 'method', window_start, window_end,
                                labels ->> 'feature')
                   model_id, model_version_id, metric, labels - 'feature' - 'method' AS labels, window_start,
                   window_end, labels ->> 'feature' AS feature, coalesce(drifted, false) AS drifted,
                   -- monitor.metrics.points.drift_severity; 0 for a point without a score
                   CAST(CASE WHEN metric <> 'feature_drift' THEN coalesce(value, 0)
                             WHEN value IS NULL OR threshold IS NULL OR threshold = 0 THEN 0
                             WHEN details ->> 'kind' = 'p_value' THEN
                                  CASE WHEN threshold > 0 AND threshold < 1
                                       THEN ln(greatest(value, 1e-300)) / ln(threshold) ELSE 0 END
                             ELSE value / threshold END AS real) AS peak
            FROM metric_points WHERE labels ? 'feature'
            ORDER BY model_version_id, metric, labels - 'feature' - 'method', window_start, window_end,
                     labels ->> 'feature', computed_at DESC
        ),
        windows AS (
            SELECT DISTINCT model_id, model_version_id, metric, labels, window_start, window_end FROM points
        )
        INSERT INTO feature_digests
        SELECT w.model_id, w.model_version_id, w.metric, w.labels, w.window_start, w.window_end,
               string_agg(float4send(coalesce(p.peak, 'NaN')), ''::bytea ORDER BY f.position),
               string_agg(CASE WHEN p.drifted THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea
                          ORDER BY f.position)
        FROM windows w
        JOIN model_versions v ON v.id = w.model_version_id
        CROSS JOIN LATERAL jsonb_array_elements(v.schema -> 'features') WITH ORDINALITY AS f(spec, position)
        LEFT JOIN points p
            ON p.model_version_id = w.model_version_id AND p.metric = w.metric AND p.labels = w.labels
           AND p.window_start = w.window_start AND p.window_end = w.window_end AND p.feature = f.spec ->> 'name'
        GROUP BY w.model_id, w.model_version_id, w.metric, w.labels, w.window_start, w.window_end
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX metric_points_feature; DROP TABLE feature_digests")
