"""Each feature's importance to a model, as its reference knows it: from the attributions its rows
carry, or estimated at its upload (``monitor.services.catalog.reference.importance``)."""

from __future__ import annotations

from typing import Any

from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN
from monitor.metrics.importance import IMPORTANCE_COLUMN, importance_shares, importance_values
from monitor.services.catalog.registry import resolve_version
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.summary_plan import load_reference


def reference_importance(ctx: ServiceContext, model: str, version: str | None = None) -> dict[str, Any]:
    """The version's reference importances, the most important first, each with its range (the
    95 % interval of a mean absolute attribution, or the least and most lost over the estimate's
    shuffles) and its share of them all; ``method`` None where the reference has none."""
    vrow = resolve_version(ctx, model, version)
    ref = load_reference(ctx, vrow)
    found = ref.extras[""].get(IMPORTANCE_COLUMN) or {}
    values = importance_values(found)
    shares = importance_shares(values)
    ranked = sorted(values, key=lambda f: (-values[f], f))
    return {
        "model": model,
        "version": vrow.version,
        "reference_id": ref.reference_id,
        "method": found.get("method"),
        "output": found.get("output"),
        "attributions": ATTRIBUTIONS_COLUMN in ref.extras[""],
        "features": [
            {
                "feature": f,
                "value": values[f],
                "low": float(found["features"][f]["low"]),
                "high": float(found["features"][f]["high"]),
                "share": shares[f],
            }
            for f in ranked
        ],
    }
