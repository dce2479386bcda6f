"""Compacted hours read exactly as rows one a row: two models are given the same predictions and
the same labels, one model's hours are compacted into blocks (before its labels, between them
and after a late prediction), the other's never; every read of the log answers the same for both.

The data holds what a block must carry through: ±inf and missing values, optional features,
segments, request ids, data subjects, attributions, labels that came before their prediction, after it, after
its hour was compacted, and labels replaced; a prediction arriving late for a compacted hour.
"""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from alembic import command
from sqlalchemy import text

from monitor.db import log_blocks, log_repo, partitions, record_repo, report_repo
from monitor.db.log_rows import log_rows
from monitor.db.migrate import alembic_config
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import BINARY_SPEC, Api, scratch_engine

COMPACTED, TWIN = "churn", "churn-twin"
HOURS = 3


def _records(start: datetime, n: int, tag: str) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        features: dict[str, Any] = {"tenure": (i * 7) % 50 + 0.25, "plan": ["basic", "pro", "team"][i % 3]}
        if i % 11 == 0:
            features["tenure"] = math.inf if i % 2 else -math.inf
        if i % 5 == 0:
            features["autopay"] = i % 10 == 0
        if i % 13 == 0:
            features["plan"] = None
        rec: dict[str, Any] = {
            "prediction_id": f"{tag}{i}",
            "timestamp": (start + timedelta(seconds=i * HOURS * 3600 / n)).isoformat(),
            "features": features,
            "prediction": "leave" if i % 4 == 0 else "stay",
            "latency_ms": None if i % 6 == 0 else 3.5 + i % 9,
        }
        if i % 9 != 0:
            rec["scores"] = {"leave": round((i % 17) / 17, 4)}
        if i % 3 == 0:
            rec["segments"] = {"country": ["fr", "de"][i % 2]}
        if i % 4 == 1:
            rec["request_id"] = f"req-{i}"
        if i % 10 == 3:
            rec["subject"] = f"person-{i % 20}"
        if i % 2 == 0:  # attributions on some rows, one of them sometimes missing
            rec["attributions"] = {"tenure": (i % 23) / 7 - 1.5, "plan": None if i % 8 == 0 else -0.25}
        out.append(rec)
    return out


def _labels(at: datetime, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [{"prediction_id": pid, "label": label, "timestamp": at.isoformat()} for pid, label in labels.items()]


def _post(api: Api, path: str, model: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"model": model, "records": records})  # ±inf as JSON's Infinity, as Python writes it
    r = api.http.post(path, content=body, headers=api.ingest | {"content-type": "application/json"})
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _both(api: Api, path: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_post(api, path, model, records) for model in (COMPACTED, TWIN)]


def _reads(api: Api, model: str, start: datetime, end: datetime, ids: list[str]) -> dict[str, Any]:
    """Everything the service reads from a model's log, with the model's own ids left out."""
    ctx = api.ctx
    vrow = registry.resolve_cached(ctx, [(model, None)])[(model, None)]
    m, v = vrow.model_id, vrow.version_id
    window = {"start": start.isoformat(), "end": end.isoformat()}
    out: dict[str, Any] = {}
    looked_up = {}
    for pid in ids:
        r = api.http.get(f"/v1/predictions/{pid}", params={"model": model}, headers=api.data)
        assert r.status_code in (200, 404), r.text
        body = r.json() if r.status_code == 200 else {"status": 404}
        body.pop("model", None)
        looked_up[pid] = body
    out["look-ups"] = looked_up
    for fmt in ("csv", "parquet"):
        r = api.http.get(f"/v1/models/{model}/export", params={**window, "format": fmt}, headers=api.data)
        assert r.status_code == 200, r.text
        out[f"export {fmt}"] = r.text if fmt == "csv" else pq.read_table(io.BytesIO(r.content)).to_pandas()
    # resumed after its 40th row
    first = out["export parquet"]
    after = first.iloc[39]
    r = api.http.get(
        f"/v1/models/{model}/export",
        params={"start": after.timestamp.isoformat(), "end": end.isoformat(), "after": after.prediction_id},
        headers=api.data,
    )
    out["export resumed"] = pq.read_table(io.BytesIO(r.content)).to_pandas()
    with ctx.engine.connect() as conn:
        out["window rows"] = report_repo.window_rows(conn, m, v, start, end)
        sample = report_repo.sample_window(conn, m, v, start, end, 10_000, labelled_only=False)
        out["report sample"] = sorted(repr(sorted(r.items())) for r in sample)
        stored = conn.execute(
            text(
                "SELECT p.prediction_id, p.ts FROM (SELECT unnest(prediction_id) prediction_id, unnest(ts) ts "
                "FROM prediction_blocks WHERE model_id = :m UNION ALL "
                "SELECT prediction_id, ts FROM predictions WHERE model_id = :m) p ORDER BY 1"
            ),
            {"m": m},
        ).all()
        found = log_repo.predictions_for_labels(conn, m, [(pid, ts) for pid, ts in stored])
        out["label join"] = sorted((pid, ts, p, s, seg) for pid, _, ts, p, s, seg in found)
        out["pairs"] = record_repo.pairing_rows(conn, m, v, start, end, ("stay", "leave"))
    rollup(ctx, model, None, start, end)
    with ctx.engine.connect() as conn:
        summaries = conn.execute(
            text(
                "SELECT bucket_start, bucket_hours, column_name, segment, n_rows, stats, counts FROM bucket_summaries "
                "WHERE model_id = :m ORDER BY 1, 2, 3, 4"
            ),
            {"m": m},
        ).all()
    out["summaries"] = [tuple(r) for r in summaries]
    return out


def _without_arrival(value: Any) -> Any:
    """A look-up without the times its records arrived (two models' differ by the moment)."""
    if isinstance(value, dict):
        return {k: _without_arrival(v) for k, v in value.items() if not k.endswith(("received_at", "replaced_at"))}
    if isinstance(value, list):
        return [_without_arrival(v) for v in value]
    return value


def _equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    for part in a:
        if isinstance(a[part], pd.DataFrame):
            pd.testing.assert_frame_equal(a[part], b[part], check_exact=True)
        else:
            assert a[part] == b[part], part


def _stored(api: Api, model: str) -> tuple[int, int]:
    """(rows one a row, rows in blocks) of the model."""
    m = _model_id(api, model)
    hot = api.count("SELECT count(*) FROM predictions WHERE model_id = :m", m=m)
    blocks = api.count("SELECT coalesce(sum(n_rows), 0) FROM prediction_blocks WHERE model_id = :m", m=m)
    return hot, blocks


def _register(api: Api, *names: str) -> None:
    for name in names:
        r = api.http.post("/v1/models", json={**BINARY_SPEC, "name": name}, headers=api.admin)
        assert r.status_code == 201, r.text
        reference = pd.DataFrame(
            {
                "tenure": [float(i % 40) for i in range(300)],
                "plan": ["basic", "pro", "team"] * 100,
                "autopay": [True, False, True] * 100,
                "prediction": ["stay", "leave", "stay"] * 100,
            }
        )
        upload_reference(api.ctx, name, reference.to_csv(index=False).encode(), TableFormat.csv)


def _model_id(api: Api, model: str) -> int:
    return registry.resolve_cached(api.ctx, [(model, None)])[(model, None)].model_id


def test_compacted_hours_read_as_they_did_one_a_row(api: Api) -> None:
    _register(api, COMPACTED)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=HOURS + 3)
    end = start + timedelta(hours=HOURS)
    records = _records(start, 3_600, "p")
    # a label before its prediction (it waits), then the predictions, then labels for some
    _post(
        api,
        "/v1/labels",
        COMPACTED,
        [{"prediction_id": "p5", "label": "leave"}, {"prediction_id": "p8", "label": "stay"}],
    )
    for i in range(0, len(records), 500):
        _post(api, "/v1/predictions", COMPACTED, records[i : i + 500])
    labels = [{"prediction_id": f"p{i}", "label": "leave" if i % 3 else "stay"} for i in range(0, 3_600, 4)]
    _post(api, "/v1/labels", COMPACTED, labels)
    _post(api, "/v1/labels", COMPACTED, [{"prediction_id": "p4", "label": "leave"}])  # replaced
    ids = [r["prediction_id"] for r in records[::37]] + ["p5", "p8", "p4", "nope"]

    before = _reads(api, COMPACTED, start, end, ids)
    report = compact_log(api.ctx, now=end + timedelta(days=1))
    # each hour's 1,200 rows: a block of 1,000 and one of 200
    assert (report.done, report.rows, report.blocks, report.hours) == (True, 3_600, 6, 3)
    assert _stored(api, COMPACTED) == (0, 3_600)
    _equal(before, _reads(api, COMPACTED, start, end, ids))
    # the emptied day's partition gave its space back (its B-tree stays full size otherwise)
    days = sorted({(start + timedelta(hours=h)).date() for h in range(HOURS)})
    assert report.emptied == days and not report.pending
    for day in days:  # an empty heap, and each index its metapage
        assert api.count(f"SELECT pg_total_relation_size('{partitions.partition_name(day)}')") <= 3 * 8192


def test_a_day_is_given_back_only_once_no_older_snapshot_may_read_it(api: Api) -> None:
    """TRUNCATE is not MVCC-safe: a transaction that began before the rows moved would find their
    partition empty and the blocks not yet there. The day waits for it."""
    _register(api, COMPACTED)
    start = hour_floor(datetime.now(UTC)) - timedelta(days=2)
    _post(api, "/v1/predictions", COMPACTED, _records(start, 300, "r"))
    m = _model_id(api, COMPACTED)
    with api.ctx.engine.connect() as reader:
        reader = reader.execution_options(isolation_level="REPEATABLE READ")
        reader.execute(text("SELECT count(*) FROM prediction_blocks"))  # its snapshot: before the move
        report = compact_log(api.ctx, now=start + timedelta(days=1))
        assert report.rows == 300 and report.emptied == [] and list(report.pending) == [start.date()]
        count = f"SELECT count(*) FROM {log_rows(':m')} p"
        assert reader.execute(text(count), {"m": m}).scalar_one() == 300  # still every row, one a row
        reader.rollback()
    again = compact_log(api.ctx, now=start + timedelta(days=1), pending=report.pending)
    assert again.rows == 0 and again.emptied == [start.date()] and not again.pending
    assert api.count(f"SELECT pg_total_relation_size('{partitions.partition_name(start.date())}')") <= 3 * 8192
    assert _stored(api, COMPACTED) == (0, 300)


def test_labels_and_late_predictions_after_compaction(api: Api) -> None:
    _register(api, COMPACTED, TWIN)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=HOURS + 3)
    end = start + timedelta(hours=HOURS)
    records = _records(start, 1_500, "q")
    _both(api, "/v1/predictions", records)
    _both(api, "/v1/labels", _labels(end, {"q3": "leave"}))
    compact_log(api.ctx, now=end + timedelta(days=1), models=[_model_id(api, COMPACTED)])
    assert _stored(api, COMPACTED) == (0, 1_500) and _stored(api, TWIN) == (1_500, 0)

    # labels for compacted predictions find them; a label replaced; a late prediction for a
    # compacted hour is stored one a row beside its hour's blocks
    labels = _labels(end + timedelta(hours=1), {f"q{i}": "leave" if i % 2 else "stay" for i in range(0, 1_500, 3)})
    results = _both(api, "/v1/labels", labels)
    assert results[0] == results[1] and results[0]["matched"] == len(labels), results
    relabel = _labels(end + timedelta(hours=2), {"q3": "stay", "q6": "leave"})
    assert _both(api, "/v1/labels", relabel)[0]["replaced"] == 2
    late = _records(start, 1, "late")
    late[0]["timestamp"] = (start + timedelta(minutes=30, microseconds=1)).isoformat()
    _both(api, "/v1/predictions", late)
    assert _stored(api, COMPACTED) == (1, 1_500)
    ids = ["q0", "q3", "q6", "q7", "q1499", "late0"]
    twin, compacted = _reads(api, TWIN, start, end, ids), _reads(api, COMPACTED, start, end, ids)
    for reads in (twin, compacted):
        reads["look-ups"] = _without_arrival(reads["look-ups"])

    _equal(twin, compacted)


def test_the_migration_down_puts_compacted_rows_back_as_they_were(database_url: str) -> None:
    """Down from the blocks' migration, every compacted row is one a row again, each column as
    it was stored (features with ±inf and nested values, nulls, subjects); up again, empty blocks."""
    ts = datetime(2026, 12, 5, 10, tzinfo=UTC)
    columns = (
        "model_id, model_version_id, prediction_id, ts, received_at, features::text, prediction::text, scores::text, "
        "latency_ms, segments::text, request_id, subject_hash"
    )
    with scratch_engine(database_url, "blocksdown") as engine, engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        partitions.create_partitions(conn, [ts.date()])
        for i in range(1_250):
            conn.execute(
                text(
                    "INSERT INTO predictions (model_id, model_version_id, prediction_id, ts, received_at, features, "
                    "prediction, scores, latency_ms, segments, request_id, subject_hash) VALUES (7, :v, :p, :t, :r, "
                    "CAST(:f AS jsonb), CAST(:y AS jsonb), CAST(:s AS jsonb), :l, CAST(:g AS jsonb), :q, :h)"
                ),
                {
                    "v": 1 + i % 2,
                    "p": f"id-{i}-é\\\t",
                    "t": ts + timedelta(seconds=i),
                    "r": ts + timedelta(hours=1),
                    "f": json.dumps({"a": i / 7, "b": "Infinity" if i % 5 else None, "c": "x\ny", "n": {"k": [i]}}),
                    "y": json.dumps(i % 3),
                    "s": None if i % 4 else json.dumps({"p": 0.5}),
                    "l": None if i % 6 else i / 3,
                    "g": None if i % 2 else json.dumps({"seg": "v"}),
                    "q": None if i % 3 else f"r{i}",
                    "h": None if i % 7 else bytes([i % 256]) * 32,
                },
            )
        stored = conn.execute(text(f"SELECT {columns} FROM predictions ORDER BY prediction_id")).all()
        moved, after = 0, None
        while (done := log_blocks.compact_rows(conn, 7, ts, after=after)).rows:
            moved, after = moved + done.rows, done.last
        assert moved == 1_250 and conn.execute(text("SELECT count(*) FROM predictions")).scalar_one() == 0
        # in time order, a block a version: 500 + 500, then 125 + 125
        assert conn.execute(text("SELECT count(*) FROM prediction_blocks")).scalar_one() == 4
        command.downgrade(cfg, "0029")
        assert conn.execute(text(f"SELECT {columns} FROM predictions ORDER BY prediction_id")).all() == stored
        command.upgrade(cfg, "head")
        assert conn.execute(text("SELECT count(*) FROM prediction_blocks")).scalar_one() == 0
