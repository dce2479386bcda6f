"""One prediction and everything the service recorded and decided about it, for auditors and
for whoever answers "why did the model say that, and what did we do about it"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from monitor.db import audit_repo, record_repo, registry_repo
from monitor.domain.audit import Actor
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import category_key
from monitor.errors import NotFound
from monitor.metrics.attribution import explanation
from monitor.services.catalog import registry
from monitor.services.catalog.registry import model_id_or_404
from monitor.services.infra.context import ServiceContext

# Alerts and retraining requests come after their window ends, within about a day when the
# scheduler runs; a window's look-up reaches that far past the longest window.
DAY = timedelta(days=1)


def _label(row: dict[str, Any]) -> dict[str, Any] | None:
    if row.get("label_ts") is None:
        return None
    return {
        "value": row["label"],
        "timestamp": row["label_ts"],
        "received_at": row.get("label_received_at", row.get("received_at")),
        "first_received_at": row["first_received_at"],
        "revision": row["revision"],
    }


def get_prediction(ctx: ServiceContext, model: str, prediction_id: str, actor: Actor) -> dict[str, Any]:
    """The stored record, its version, its label and the labels that label replaced, the
    windows it counted in (all predictions and its own segments), and the alert transitions and
    retraining requests whose evidence is one of those windows. The look-up is audited."""
    with ctx.uow() as uow:
        model_id = model_id_or_404(uow.conn, model)
        stored_id, row = _find(ctx, uow.conn, model, model_id, prediction_id)
        if row is None:
            waiting = record_repo.waiting_label(uow.conn, model_id, stored_id)
            why = "; a label for it waits for the prediction" if waiting else ""
            raise NotFound(f"model {model!r} has no stored prediction {prediction_id!r}{why}")
        config = MonitoringConfig.model_validate(registry_repo.get_monitoring(uow.conn, model_id))
        longest = max(config.window_lengths())
        segments = {k: v for k, v in ((k, category_key(v)) for k, v in (row["segments"] or {}).items()) if v}
        ts = row["ts"]
        found = {
            "model": model,
            "version": row["version"],
            "prediction_id": prediction_id,  # as asked: a hashed id is stored as its hash
            "timestamp": ts,
            "received_at": row["received_at"],
            "features": row["features"],
            "prediction": row["prediction"],
            "scores": row["scores"],
            "latency_ms": row["latency_ms"],
            "segments": row["segments"],
            "explanation": None if not row["attributions"] else explanation(row["attributions"], row["features"]),
            "label": _label(row),
            "label_revisions": record_repo.label_revisions(uow.conn, model_id, stored_id),
            "windows": record_repo.windows_holding(uow.conn, model_id, row["model_version_id"], ts, longest, segments),
            "alerts": [
                a
                for a in record_repo.alerts_about(uow.conn, model, row["version"], ts, longest + DAY)
                if _in_segment(a["labels"], segments)
            ],
            "retrain_triggers": record_repo.triggers_about(uow.conn, model, row["version"], ts, longest + DAY),
        }
        audit_repo.append(uow.conn, actor, "prediction.viewed", stored_id, model=model)
        uow.commit()
    return found


def _find(
    ctx: ServiceContext, conn: Connection, model: str, model_id: int, prediction_id: str
) -> tuple[str, dict[str, Any] | None]:
    """The id as stored (its hash, for a model that hashes them: under the first secret key, or an
    older one for a prediction stored before a rotation) and the stored prediction, if any."""
    vrow = registry.resolve_cached(ctx, [(model, None)])[(model, None)]
    candidates = ctx.personal_data(vrow.version_id, vrow.schema).stored_ids(prediction_id, ctx.secrets.value_hashes)
    for stored_id in candidates:
        row = record_repo.prediction(conn, model_id, stored_id)
        if row is not None:
            return stored_id, row
    return candidates[0], None


def _in_segment(labels: dict[str, Any], segments: dict[str, str]) -> bool:
    """An alert about all predictions, or about a segment the row is in."""
    column = labels.get("segment")
    return not column or segments.get(column) == labels.get("segment_value")
