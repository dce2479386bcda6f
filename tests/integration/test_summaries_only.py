"""A model that keeps summaries only (``personal_data.rows: summaries_only``), end to end: the
same traffic and labels as a twin that keeps its rows give the same summaries, before and after
its label wait ended and its rows were deleted (bar the sample); what it stores of a prediction,
and for how long; the sample reports read; predictions refused before a reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from monitor.db import report_repo
from monitor.db.prediction_key import IN_SAMPLE_SQL, keys_of
from monitor.domain.row_sample import in_sample, sample_threshold
from monitor.domain.tabular import TableFormat
from monitor.metrics.profiles import unpack_counts
from monitor.services.catalog.reference import upload_reference
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import LOG_ROWS, Api

RATE = 0.1
WAIT_HOURS = 6
SPEC: dict[str, Any] = {
    "task": "binary_classification",
    "classes": ["repaid", "default"],
    "features": [
        {"name": "income", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
        {"name": "region", "type": "categorical"},
    ],
    "segments": ["region", "channel"],
}
SUMMARIES_ONLY = {"rows": "summaries_only", "label_wait_hours": WAIT_HOURS, "sample_rate": RATE}
MODELS = {"kept": {}, "summarised": SUMMARIES_ONLY}


def _register(api: Api, name: str, policies: dict[str, Any], reference: bool = True) -> None:
    spec = {**SPEC, "name": name, "personal_data": policies}
    r = api.http.post("/v1/models", json=spec, headers=api.admin)
    assert r.status_code == 201, r.text
    if reference:
        frame = pd.DataFrame(
            {
                "income": [1000.0 + (i * 13) % 400 for i in range(400)],
                "plan": ["basic", "pro", "team", "basic"] * 100,
                "region": ["eu", "us"] * 200,
                "channel": ["web", "web", "app", "app"] * 100,
                "prediction": ["repaid", "default", "repaid", "repaid"] * 100,
            }
        )
        upload_reference(api.ctx, name, frame.to_csv(index=False).encode(), TableFormat.csv)


def _records(start: datetime, n: int, tag: str, shift: float = 0.0) -> list[dict[str, Any]]:
    return [
        {
            "prediction_id": f"{tag}-{i}",
            "timestamp": (start + timedelta(seconds=i * 3600 / n)).isoformat(),
            "features": {
                "income": 1000.0 + (i * 13) % 400 + shift,
                "plan": ["basic", "pro", "team"][i % 3],
                "region": ["eu", "us"][i % 2],
            },
            "prediction": "default" if i % 4 == 1 else "repaid",
            "scores": {"default": (i % 10) / 10},
            "latency_ms": 5.0 + i % 7,
            "segments": {"channel": ["web", "app"][(i // 2) % 2]},
            "attributions": {"income": ((i * 13) % 400 - 200) / 100, "plan": (i % 3 - 1) * 0.5},
        }
        for i in range(n)
    ]


def _post(api: Api, path: str, model: str, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), 500):
        r = api.http.post(path, json={"model": model, "records": records[i : i + 500]}, headers=api.ingest)
        assert r.status_code == 200, r.text


def _close(value: Any) -> Any:
    """A summary's stats with their floats to 10 significant digits: sums made in another order
    (an hour made again from the log) differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _close(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_close(v) for v in value]
    return value


def _summaries(api: Api, model: str) -> list[tuple[Any, ...]]:
    """Every summary the model has (columns, quality; hours, minutes, segments), comparable
    across models (histograms as counts: their bytes may pack either way)."""
    with api.ctx.engine.connect() as conn:
        return [
            (*r[:5], _close(r[5]), None if r[6] is None else tuple(unpack_counts(r[6])))
            for r in conn.execute(
                text(
                    "SELECT b.column_name, b.bucket_start, b.bucket_hours, b.segment, b.n_rows, b.stats, b.counts "
                    "FROM bucket_summaries b JOIN models m ON m.id = b.model_id WHERE m.name = :m "
                    "ORDER BY 1, 2, 3, 4"
                ),
                {"m": model},
            )
        ]


def _ids(api: Api, model: str, table: str) -> set[str]:
    """The ids (of ``prediction_keys``: the keys, as ``key_of`` spells them) a table holds of the model."""
    source = LOG_ROWS if table == "log" else table
    column = "replace(CAST(t.key AS text), '-', '')" if table == "prediction_keys" else "t.prediction_id"
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {column} FROM {source} t JOIN models m ON m.id = t.model_id WHERE m.name = :m"),
            {"m": model},
        )
        return {r[0] for r in rows}


def _label(api: Api, model: str, ids: list[str]) -> None:
    labels = [
        {"prediction_id": pid, "label": "default" if int(pid.rsplit("-", 1)[1]) % 5 == 1 else "repaid"} for pid in ids
    ]
    _post(api, "/v1/labels", model, labels)


def test_summaries_only_monitors_as_its_twin_and_keeps_only_the_sample_after_the_label_wait(api: Api) -> None:
    for name, policies in MODELS.items():
        _register(api, name, policies)
    now = datetime.now(UTC)
    old = hour_floor(now) - timedelta(hours=WAIT_HOURS + 4)  # its label wait is over
    recent = hour_floor(now) - timedelta(hours=3)  # compacted after 2 hours if kept; still waiting if not
    records = _records(old, 1200, "old") + _records(old + timedelta(hours=1), 1200, "drift", shift=150.0)
    records += _records(recent, 600, "new")
    for name in MODELS:
        _post(api, "/v1/predictions", name, records)
        _label(api, name, [r["prediction_id"] for r in records if int(r["prediction_id"].rsplit("-", 1)[1]) % 3])
        run_model(api.ctx, name)
    made = _summaries(api, "kept")
    assert made and made == _summaries(api, "summarised")
    assert any(r[0] == "_quality" for r in made)

    # what is stored of each prediction: its features only in the sample
    threshold = sample_threshold(RATE)
    sample = {r["prediction_id"] for r in records if in_sample(r["prediction_id"], threshold)}
    assert 0.05 * len(records) < len(sample) < 0.15 * len(records)
    with api.ctx.engine.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT p.prediction_id, p.features FROM predictions p JOIN models m ON m.id = p.model_id "
                "WHERE m.name = 'summarised'"
            )
        ).all()
    assert len(kept) == len(records)
    assert {pid for pid, features in kept if features} == sample
    assert all(set(features) == {"income", "plan", "region"} for pid, features in kept if pid in sample)

    # the label wait over for the old hours: their rows go, bar the sample, with keys and labels
    report = compact_log(api.ctx)
    old_ids = {r["prediction_id"] for r in records if not r["prediction_id"].startswith("new")}
    assert report.dropped == len(old_ids - sample)
    everything = {r["prediction_id"] for r in records}
    assert _ids(api, "summarised", "log") == sample | (everything - old_ids)
    assert _ids(api, "summarised", "prediction_keys") == set(keys_of(sample | (everything - old_ids)))
    assert _ids(api, "summarised", "labels") <= sample | (everything - old_ids)
    assert _ids(api, "kept", "log") == everything
    assert _summaries(api, "summarised") == made

    # their summaries are final: made again from the log, the twin's are the same as before,
    # and so are its (its rows are gone)
    for name in MODELS:
        rollup(api.ctx, name, None, old, hour_floor(now) + timedelta(hours=1))
    assert _summaries(api, "kept") == made and _summaries(api, "summarised") == made

    # a label for a recent prediction (still waiting) joins; one for a deleted prediction finds nothing
    late = ["new-2", "old-2"]
    for name in MODELS:
        _post(api, "/v1/labels", name, [{"prediction_id": pid, "label": "default"} for pid in late])
        run_model(api.ctx, name)
    joined = _summaries(api, "summarised")
    assert joined != made  # the recent one joined
    twin = _summaries(api, "kept")
    assert [r for r in joined if r[1] >= recent] == [r for r in twin if r[1] >= recent]
    assert [r for r in joined if r[1] < recent] == [r for r in made if r[1] < recent]

    # reports read the sample, its rows whole
    vid = (
        api.ctx.engine.connect()
        .execute(
            text("SELECT v.id FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = 'summarised'")
        )
        .scalar_one()
    )
    mid = api.ctx.engine.connect().execute(text("SELECT id FROM models WHERE name = 'summarised'")).scalar_one()
    with api.ctx.engine.connect() as conn:
        window = (conn, mid, vid, old, hour_floor(now) + timedelta(hours=1))
        assert report_repo.window_rows(*window, threshold) == len(sample)
        rows = report_repo.sample_window(*window, 10_000, False, threshold)
    assert len(rows) == len(sample) and all(set(r["features"]) == {"income", "plan", "region"} for r in rows)


@pytest.mark.parametrize("full_path", [False, True])
def test_predictions_of_a_model_keeping_summaries_only_wait_for_its_reference(api: Api, full_path: bool) -> None:
    """On the one-pass path (a clean batch) and the full one (a batch with a record to skip)."""
    _register(api, "early", SUMMARIES_ONLY, reference=False)
    records = _records(datetime.now(UTC), 3, "a") + ([{"prediction_id": "bad"}] if full_path else [])
    r = api.http.post(
        "/v1/predictions", json={"model": "early", "records": records}, params={"on_error": "skip"}, headers=api.ingest
    )
    assert r.status_code == 409 and "upload the reference first" in r.json()["error"]["message"], r.text
    assert api.count("SELECT count(*) FROM predictions") == 0 and api.count("SELECT count(*) FROM prediction_keys") == 0


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_the_sample_is_chosen_alike_in_python_and_sql(api: Api, rate: float) -> None:
    ids = [f"id-{i}" for i in range(2000)] + ["a\\b", "é\u00a0ü", "x'y", '"q"', "\\\\", "日本語", " "]
    threshold = sample_threshold(rate)
    expected = sorted(pid for pid in ids if in_sample(pid, threshold))
    with api.ctx.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT id FROM unnest(CAST(:ids AS text[])) AS t(id) WHERE "
                + (IN_SAMPLE_SQL.format("t.id", ":s") if threshold is not None else "true")
                + ' ORDER BY id COLLATE "C"'
            ),
            {"ids": ids, "s": threshold},
        ).scalars()
        assert list(found) == sorted(expected, key=lambda s: s.encode())
    assert len(expected) == {0.0: 0, 1.0: len(ids)}.get(rate, len(expected))
    if rate == 0.3:
        assert 0.27 * len(ids) < len(expected) < 0.33 * len(ids)


def test_after_a_new_reference_hours_made_from_the_log_count_no_feature_as_missing(api: Api) -> None:
    """The rows of a model keeping summaries only hold no features: an hour summarised again from
    them (on a reference uploaded after it) has no summary of a feature, where it had one
    counting every row's value as missing (and a data-quality alert with it)."""
    _register(api, "renewed", SUMMARIES_ONLY)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    _post(api, "/v1/predictions", "renewed", _records(start, 600, "r"))
    run_model(api.ctx, "renewed")
    again = pd.DataFrame(
        {
            "income": [900.0, 1500.0] * 50,
            "plan": ["basic", "pro"] * 50,
            "region": ["eu", "us"] * 50,
            "channel": ["web", "app"] * 50,
            "prediction": ["repaid", "default"] * 50,
        }
    )
    upload_reference(api.ctx, "renewed", again.to_csv(index=False).encode(), TableFormat.csv)
    run_model(api.ctx, "renewed")
    with api.ctx.engine.connect() as conn:
        newest = conn.execute(
            text(
                "SELECT max(r.id) FROM reference_datasets r JOIN models m ON m.id = r.model_id WHERE m.name = 'renewed'"
            )
        ).scalar_one()
        columns = {
            c
            for (c,) in conn.execute(
                text("SELECT DISTINCT column_name FROM bucket_summaries WHERE reference_id = :r"), {"r": newest}
            )
        }
    assert "prediction" in columns or any(c.startswith("scores.") for c in columns), columns
    assert not {c for c in columns if c.startswith("features.") or c == "_reconstruction"}, columns
