"""A data subject erased on request: the records that named them go from every model (predictions,
keys, labels, replaced labels), on both ingestion paths; the subject as given is stored nowhere,
before or after, not even in the audit entry; look-ups and exports no longer find the records; a
key rotation does not hide records stored under the old key."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from monitor.db.prediction_key import keys_of
from monitor.domain.audit import Actor
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest.erasure import erase_subject
from monitor.services.jobs.compaction import compact_log
from tests.integration.helpers import BINARY_SPEC, Api, prediction

ALICE = "alice@example.com"
BOB = "bob-1977-05-04"


def _clear_value_found(ctx: ServiceContext, value: str) -> list[str]:
    """Every text, jsonb and bytea column of every table (partitions too) holding ``value``."""
    found = []
    with ctx.engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
                "JOIN information_schema.tables t USING (table_schema, table_name) "
                "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
                "AND c.data_type IN ('text', 'jsonb', 'bytea', 'character varying', 'json', 'ARRAY')"
            )
        ).all()
        for table, column, kind in columns:
            probe = (
                f"position(convert_to(:v, 'UTF8') in \"{column}\") > 0"
                if kind == "bytea"
                else f"\"{column}\"::text LIKE '%%' || :v || '%%'"
            )
            if conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{table}" WHERE {probe})'), {"v": value}).scalar():
                found.append(f"{table}.{column}")
    return found


def _count(api: Api, table: str, ids: list[str]) -> int:
    if table == "prediction_keys":  # keyed by the id's digest
        return api.count(
            "SELECT count(*) FROM prediction_keys WHERE key = ANY(CAST(:keys AS uuid[]))", keys=keys_of(ids)
        )
    if table == "predictions":  # the log, one a row or compacted into blocks
        table = (
            "(SELECT prediction_id FROM predictions UNION ALL SELECT unnest(prediction_id) FROM prediction_blocks) p"
        )
    return api.count(f"SELECT count(*) FROM {table} WHERE prediction_id = ANY(:ids)", ids=ids)


def _log(api: Api, model: str, records: list[dict[str, Any]], **params: Any) -> None:
    r = api.http.post("/v1/predictions", params=params, json={"model": model, "records": records}, headers=api.ingest)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("compacted", [False, True], ids=["one a row", "compacted"])
def test_a_subject_is_erased_everywhere_and_never_stored_in_clear(churn: Api, compacted: bool) -> None:
    """Also from blocks (``compacted``): a block holding the subject's rows among others' is
    written again without them."""
    api = churn
    other = {**BINARY_SPEC, "name": "churn-eu"}
    assert api.http.post("/v1/models", json=other, headers=api.admin).status_code in (200, 201)
    # the fast path (a clean batch) and the full path (a batch with a bad record, skipped)
    _log(api, "churn", [prediction(f"a{i}", subject=ALICE) for i in range(3)] + [prediction("b0", subject=BOB)])
    # someone else's prediction with attributions: kept whole when its block is written again
    shap = {"tenure": -0.5, "plan": 0.25}
    _log(api, "churn", [prediction(f"n{i}", **({"attributions": shap} if i == 1 else {})) for i in range(3)])
    _log(api, "churn", [prediction("a3", subject=ALICE), prediction("bad", scores="high")], on_error="skip")
    _log(api, "churn-eu", [prediction("a-eu", subject=ALICE), prediction("n-eu")])
    labels = [{"prediction_id": pid, "label": "stay"} for pid in ("a0", "a1", "b0", "n0")]
    assert (
        api.http.post("/v1/labels", json={"model": "churn", "records": labels}, headers=api.ingest).status_code == 200
    )
    relabel = {"model": "churn", "records": [{"prediction_id": "a0", "label": "leave"}]}
    assert api.http.post("/v1/labels", json=relabel, headers=api.ingest).status_code == 200
    if compacted:
        report = compact_log(api.ctx, now=datetime.now(UTC) + timedelta(days=1))
        assert report.rows == 10 and api.count("SELECT count(*) FROM predictions") == 0
    alice = ["a0", "a1", "a2", "a3", "a-eu"]
    assert _count(api, "predictions", alice) == 5 and _count(api, "label_revisions", ["a0"]) == 1
    assert _clear_value_found(api.ctx, ALICE) == [] and _clear_value_found(api.ctx, BOB) == []

    r = api.http.post("/v1/erasures", json={"subject": ALICE}, headers=api.admin)
    assert r.status_code == 200, r.text
    erased = r.json()
    assert (erased["predictions"], erased["labels"], erased["label_revisions"]) == (5, 2, 1)
    for table in ("predictions", "prediction_keys", "labels", "label_revisions"):
        assert _count(api, table, alice) == 0, table
    # nobody else's records were touched
    assert _count(api, "predictions", ["b0", "n0", "n1", "n2", "n-eu"]) == 5
    assert _count(api, "labels", ["b0", "n0"]) == 2
    # look-ups and exports no longer find them
    assert api.http.get("/v1/predictions/a0", params={"model": "churn"}, headers=api.data).status_code == 404
    kept = api.http.get("/v1/predictions/n1", params={"model": "churn"}, headers=api.data).json()["explanation"]
    assert {c["feature"]: c["attribution"] for c in kept["contributions"]} == shap
    start = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    csv = api.http.get(
        "/v1/models/churn/export", params={"start": start, "end": end, "format": "csv"}, headers=api.data
    )
    exported = set(pd.read_csv(io.BytesIO(csv.content))["prediction_id"])
    assert exported == {"b0", "n0", "n1", "n2"}
    # audited, under the keyed hash only
    entry = api.count(
        "SELECT count(*) FROM audit_log WHERE action = 'subject.erased' AND target = :t",
        t=f"subject {erased['subject_hash']}",
    )
    assert entry == 1
    assert _clear_value_found(api.ctx, ALICE) == []
    # again: nothing left to erase
    assert api.http.post("/v1/erasures", json={"subject": ALICE}, headers=api.admin).json()["predictions"] == 0


def test_records_stored_before_a_key_rotation_are_erased(churn: Api) -> None:
    api = churn
    _log(api, "churn", [prediction("b0", subject=BOB), prediction("n0")])
    old = api.ctx.settings.secret_keys
    assert old is not None
    rotated = api.ctx.settings.model_copy(
        update={"secret_keys": type(old)(f"{Fernet.generate_key().decode()},{old.get_secret_value()}")}
    )
    after_rotation = dataclasses.replace(api.ctx, settings=rotated)
    erased = erase_subject(after_rotation, BOB, Actor("cli", key_name="test"))
    assert erased.predictions == 1
    assert _count(api, "predictions", ["b0"]) == 0 and _count(api, "predictions", ["n0"]) == 1


def test_a_subject_is_bounded_like_an_id(churn: Api) -> None:
    api = churn
    too_long = prediction("x", subject="s" * 300)
    r = api.http.post("/v1/predictions", json={"model": "churn", "records": [too_long]}, headers=api.ingest)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "subject"
    assert api.http.post("/v1/erasures", json={"subject": ""}, headers=api.admin).status_code == 422
