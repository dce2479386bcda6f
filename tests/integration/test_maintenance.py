from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from monitor.db import partitions
from monitor.services.maintenance import run_maintenance
from tests.integration.helpers import Api, prediction


def partition_days(api: Api) -> set:
    with api.ctx.engine.connect() as conn:
        return set(partitions.existing_partitions(conn).values())


def test_partitions_are_created_ahead(api: Api) -> None:
    now = datetime.now(UTC)
    run_maintenance(api.ctx, now)
    days = partition_days(api)
    ahead = api.ctx.settings.partitions_ahead_days
    assert {now.date() + timedelta(days=d) for d in range(-1, ahead + 1)} <= days


def test_retention_drops_old_partitions_keys_and_labels(churn: Api) -> None:
    old = datetime.now(UTC) - timedelta(days=20)
    recent = datetime.now(UTC) - timedelta(hours=1)
    recs = [prediction("old", timestamp=old.isoformat()), prediction("new", timestamp=recent.isoformat())]
    assert (
        churn.http.post("/v1/predictions", json={"model": "churn", "records": recs}, headers=churn.ingest).json()[
            "accepted"
        ]
        == 2
    )
    churn.http.post(
        "/v1/labels",
        json={
            "model": "churn",
            "records": [{"prediction_id": "old", "label": "stay"}, {"prediction_id": "new", "label": "stay"}],
        },
        headers=churn.ingest,
    )
    assert old.date() in partition_days(churn)

    # Once the retention period has passed for the day of "old", that day falls out.
    later = old + timedelta(days=churn.ctx.settings.retention_days + 1)
    report = run_maintenance(churn.ctx, later)
    assert partitions.partition_name(old.date()) in report["partitions_dropped"]
    assert old.date() not in partition_days(churn)
    with churn.ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT prediction_id FROM predictions")).scalars().all() == ["new"]
        assert conn.execute(text("SELECT prediction_id FROM prediction_keys")).scalars().all() == ["new"]
        assert conn.execute(text("SELECT prediction_id FROM labels")).scalars().all() == ["new"]


def test_waiting_labels_are_attached_by_maintenance(churn: Api) -> None:
    """A label and its prediction committed at the same instant can miss each other; maintenance joins them."""
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("race")]}, headers=churn.ingest)
    with churn.ctx.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, "
                "first_received_at) SELECT id, 'race', '\"stay\"', now(), now(), now() FROM models"
            )
        )
    report = run_maintenance(churn.ctx)
    assert report["labels_attached"] == 1
    assert churn.count("SELECT count(*) FROM labels WHERE prediction_ts IS NOT NULL") == 1
