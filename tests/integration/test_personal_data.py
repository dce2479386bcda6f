"""Features, segments and prediction ids declared personal, end to end: a hashed value is stored
and summarised only as its keyed hash, and drift, segments, look-ups and labels work on it; a
dropped feature is accepted and kept nowhere; the clear values appear in no column of any table,
in the log one a row or compacted, nor in an export; a key rotation keeps labels and look-ups
finding predictions stored before it."""

from __future__ import annotations

import dataclasses
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from monitor.domain.tabular import TableFormat
from monitor.metrics.profiles import unpack_counts
from monitor.services.catalog.reference import upload_reference
from monitor.services.ingest import ingestion
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.monitoring_run import backfill, run_model
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api
from tests.integration.test_erasure import _clear_value_found

MODEL = "loans"
SPEC: dict[str, Any] = {
    "name": MODEL,
    "task": "binary_classification",
    "classes": ["repaid", "default"],
    "features": [
        {"name": "income", "type": "numerical"},
        {"name": "postcode", "type": "categorical", "personal_data": "hash"},
        {"name": "notes", "type": "categorical", "required": False, "personal_data": "drop"},
        {"name": "plan", "type": "categorical"},
    ],
    "segments": ["postcode", "channel"],
    "personal_data": {"prediction_id": "hash", "segments": {"channel": "hash"}},
}
POSTCODES = ["SW1A-1AA", "EC1A-1BB", "W1A-0AX"]
CHANNELS = ["web-alice", "app-bob"]
NOTE = "call-me-on-5550123"


def _records(start: datetime, n: int, shifted: bool = False) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        postcode = POSTCODES[0] if shifted and i % 2 else POSTCODES[i % 3]
        out.append(
            {
                "prediction_id": f"applicant-{i}@example.com" if not shifted else f"later-{i}@example.com",
                "timestamp": (start + timedelta(seconds=i * 3600 / n)).isoformat(),
                "features": {"income": 1000.0 + i % 50, "postcode": postcode, "plan": "basic", "notes": NOTE},
                "prediction": "repaid" if i % 3 else "default",
                "scores": {"default": (i % 10) / 10},
                "segments": {"channel": CHANNELS[i % 2]},
            }
        )
    return out


def _post(api: Api, path: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    r = api.http.post(path, json={"model": MODEL, "records": records}, headers=api.ingest)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_hashed_and_dropped_values_are_kept_nowhere_in_clear_and_still_monitored(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.access")
    assert api.http.post("/v1/models", json=SPEC, headers=api.admin).status_code == 201
    reference = pd.DataFrame(
        {
            "income": [1000.0 + i % 50 for i in range(300)],
            "postcode": [POSTCODES[i % 3] for i in range(300)],
            "plan": ["basic"] * 300,
            "notes": [NOTE] * 300,
            "channel": [CHANNELS[i % 2] for i in range(300)],
            "prediction": ["repaid"] * 300,
        }
    )
    upload_reference(api.ctx, MODEL, reference.to_csv(index=False).encode(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    answer = _post(api, "/v1/predictions", _records(start, 600) + _records(start + timedelta(hours=1), 600, True))
    assert answer["accepted"] == 1_200
    again = _post(api, "/v1/predictions", _records(start, 2))  # a retry: duplicates named as sent
    assert again["duplicate_ids"] == ["applicant-0@example.com", "applicant-1@example.com"]
    labels = [{"prediction_id": f"applicant-{i}@example.com", "label": "repaid"} for i in range(0, 600, 3)]
    assert _post(api, "/v1/labels", labels)["matched"] == 200

    # looked up by the id as sent: the hash stored, the dropped feature gone
    r = api.http.get("/v1/predictions/applicant-3@example.com", params={"model": MODEL}, headers=api.data)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["prediction_id"] == "applicant-3@example.com" and found["label"]["value"] == "repaid"
    hashed = api.ctx.secrets.value_hash
    assert found["features"] == {"income": 1003.0, "postcode": hashed(POSTCODES[0]), "plan": "basic"}
    assert found["segments"] == {"postcode": hashed(POSTCODES[0]), "channel": hashed(CHANNELS[1])}
    # the access log names the route, not the address holding the id
    assert "GET /v1/predictions/{prediction_id} 200" in caplog.text and "applicant-3" not in caplog.text

    # monitored on the hashes: the postcode's drift (the second hour shifted), its segments
    backfill(api.ctx, MODEL, start, start + timedelta(hours=2))
    with api.ctx.engine.connect() as conn:
        drift = conn.execute(
            text(
                "SELECT window_start, drifted FROM metric_points WHERE metric = 'feature_drift' "
                "AND labels->>'feature' = 'postcode' AND NOT labels ? 'segment' AND window_end - window_start = "
                "interval '1 hour' ORDER BY window_start"
            )
        ).all()
        features = set(conn.execute(text("SELECT DISTINCT labels->>'feature' FROM metric_points")).scalars())
        segments = set(conn.execute(text("SELECT DISTINCT labels->>'segment_value' FROM metric_points")).scalars())
    assert [d for _, d in drift] == [False, True], drift
    assert "notes" not in features and "postcode" in features
    assert {hashed(c) for c in CHANNELS} <= segments and not segments & {*CHANNELS, *POSTCODES}

    clear = [*POSTCODES, *CHANNELS, NOTE, "applicant-3@example.com", "example.com"]
    for value in clear:
        assert _clear_value_found(api.ctx, value) == [], value
    compact_log(api.ctx, now=datetime.now(UTC) + timedelta(days=1))
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "format": "csv"}
    csv = api.http.get(f"/v1/models/{MODEL}/export", params=window, headers=api.data).text
    assert len(pd.read_csv(io.StringIO(csv))) == 1_200 and "notes" not in csv
    for value in clear:
        assert value not in csv and _clear_value_found(api.ctx, value) == [], value
    assert api.http.get("/v1/predictions/applicant-3@example.com", params={"model": MODEL}, headers=api.data).json()[
        "features"
    ]["postcode"] == hashed(POSTCODES[0])

    # after a key rotation, new values hash under the new key; a label for a prediction stored
    # before it still joins it, and its look-up still finds it
    old = api.ctx.settings.secret_keys
    assert old is not None
    rotated = api.ctx.settings.model_copy(
        update={"secret_keys": type(old)(f"{Fernet.generate_key().decode()},{old.get_secret_value()}")}
    )
    after = dataclasses.replace(api.ctx, settings=rotated, _secret_box=None)
    late = ingestion.ingest_labels(
        after, [{"prediction_id": "applicant-4@example.com", "label": "default"}], model=MODEL
    )
    assert late.matched == 1 and late.replaced == 0


def test_a_policy_that_cannot_work_is_refused_at_registration(api: Api) -> None:
    def register(**change: Any) -> Any:
        spec = {**SPEC, **change}
        return api.http.post("/v1/models", json=spec, headers=api.admin)

    cases = {
        "a number hashed": {"features": [{"name": "income", "type": "numerical", "personal_data": "hash"}]},
        "a boolean hashed": {"features": [{"name": "vip", "type": "boolean", "personal_data": "hash"}]},
        "a segment dropped": {
            "features": [{"name": "postcode", "type": "categorical", "personal_data": "drop"}],
            "segments": ["postcode"],
            "personal_data": {},
        },
        "ids dropped": {"personal_data": {"prediction_id": "drop"}},
        "a feature's segment given its own policy": {"personal_data": {"segments": {"postcode": "hash"}}},
        "every feature dropped": {
            "features": [{"name": "notes", "type": "categorical", "personal_data": "drop"}],
            "segments": [],
            "personal_data": {},
        },
    }
    for case, change in cases.items():
        r = register(**change)
        assert r.status_code == 422, (case, r.text)
    assert register().status_code == 201
    # a version cannot change how the ids are kept
    r = register(version="2", personal_data={"prediction_id": "keep", "segments": {"channel": "hash"}})
    assert r.status_code == 409, r.text


def test_a_feature_only_summarised_is_monitored_as_if_kept_and_stored_nowhere(api: Api) -> None:
    """Two models, the same traffic: one keeps ``income``, the other only summarises it. Their
    summaries of it are the same at ingestion, after a late prediction and after every hour was
    summarised again from the log (which holds the other's income nowhere)."""
    features = [
        {"name": "income", "type": "numerical"},
        {"name": "age", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
    ]
    for name, policy in (("kept", "keep"), ("summarised", "summarise_only")):
        spec = {**SPEC, "name": name, "features": [{**features[0], "personal_data": policy}, *features[1:]]}
        spec |= {"segments": ["channel"], "personal_data": {}}
        assert api.http.post("/v1/models", json=spec, headers=api.admin).status_code == 201, spec
        reference = pd.DataFrame(
            {
                "income": [1000.0 + i % 40 for i in range(300)],
                "age": [20.0 + (i * 7) % 50 for i in range(300)],
                "plan": ["basic", "pro", "team"] * 100,
                "channel": ["web", "app"] * 150,
                "prediction": ["repaid"] * 300,
            }
        )
        upload_reference(api.ctx, name, reference.to_csv(index=False).encode(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    records = _records(start, 900) + _records(start + timedelta(hours=1), 900, True)
    for r in records:
        i = int(r["prediction_id"].split("-")[1].split("@")[0])
        r["features"] = {
            "income": r["features"]["income"] + (30 if r["prediction_id"].startswith("later") else 0),
            "age": 20.0 + (i * 7) % 50,
            "plan": r["features"]["plan"],
        }
        r["segments"] = {"channel": "web" if r["segments"]["channel"] == CHANNELS[0] else "app"}
    late = {**records[5], "prediction_id": "late-1", "features": {"income": 5.0, "age": 33.0, "plan": "pro"}}

    def income(model: str) -> list[tuple[Any, ...]]:
        """Its summaries of income, and of the reconstruction error computed from every feature."""
        with api.ctx.engine.connect() as conn:  # the histograms as counts (their bytes may pack either way)
            return [
                (*r[:6], None if r[6] is None else tuple(unpack_counts(r[6])))
                for r in conn.execute(
                    text(
                        "SELECT b.column_name, b.bucket_start, b.bucket_hours, b.segment, b.n_rows, b.stats, b.counts "
                        "FROM bucket_summaries b JOIN models m ON m.id = b.model_id WHERE m.name = :m "
                        "AND b.column_name IN ('features.income', '_reconstruction') ORDER BY 1, 2, 3, 4"
                    ),
                    {"m": model},
                )
            ]

    for name in ("kept", "summarised"):
        for i in range(0, len(records), 300):
            r = api.http.post(
                "/v1/predictions", json={"model": name, "records": records[i : i + 300]}, headers=api.ingest
            )
            assert r.status_code == 200, r.text
        run_model(api.ctx, name)  # the deltas folded into the hours
        r = api.http.post("/v1/predictions", json={"model": name, "records": [late]}, headers=api.ingest)
        assert r.status_code == 200, r.text
        run_model(api.ctx, name)
    folded = income("kept")
    assert folded and folded == income("summarised")
    for name in ("kept", "summarised"):  # every hour made again from the log
        rollup(api.ctx, name, None, start, start + timedelta(hours=2))
    remade = income("kept")
    assert len(remade) == len(folded) and remade == income("summarised")
    # and nowhere in the log, a look-up or an export
    with api.ctx.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT count(*) FROM predictions p JOIN models m ON m.id = p.model_id "
                "WHERE m.name = 'summarised' AND p.features ? 'income'"
            )
        ).scalar_one()
    assert stored == 0
    found = api.http.get("/v1/predictions/late-1", params={"model": "summarised"}, headers=api.data).json()
    assert found["features"] == {"age": 33.0, "plan": "pro"}
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "format": "csv"}
    csv = api.http.get("/v1/models/summarised/export", params=window, headers=api.data).text
    assert "income" not in csv.splitlines()[0] and len(csv.splitlines()) == 1_802
