"""A report's section on what the model relies on: each feature's share of its importance on
the reference and in the report's sample of the window, the change of its mean absolute
attribution with a 95 % interval, and the NDCG of the ranking (``monitor.metrics.attribution``).
Every name in the HTML is escaped: feature names are data."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN, AttributionSummary, stored_attribution_points
from monitor.metrics.importance import IMPORTANCE_COLUMN, importance_shares, importance_values


def importance_entry(
    features: list[str], extras: dict[str, Any], rows: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The section's numbers: ``extras``, the reference's (its importances and attributions);
    ``rows``, the report's sample of the window (their ``attributions``). None when neither the
    reference nor the sample says anything of importance."""
    importance, logged = extras.get(IMPORTANCE_COLUMN), extras.get(ATTRIBUTIONS_COLUMN)
    window = AttributionSummary.of_records([r.get("attributions") for r in rows], features)
    if importance is None and window is None:
        return None
    ref_shares = importance_shares(importance_values(importance))
    points = [] if window is None else stored_attribution_points(window, logged, importance, start, end, {})
    win_shares = {p.labels["feature"]: p.details["share"] for p in points if p.metric == "attribution.importance"}
    change = {p.labels["feature"]: p for p in points if p.metric == "attribution_drift.change"}
    ndcg = next((p for p in points if p.metric == "attribution_drift.ndcg"), None)
    rows_out = []
    for f in sorted(set(ref_shares) | set(win_shares), key=lambda f: (-ref_shares.get(f, 0.0), f)):
        c = change.get(f)
        rows_out.append(
            {
                "feature": f,
                "reference_share": ref_shares.get(f),
                "reference_range": [estimated_range(importance, f, "low"), estimated_range(importance, f, "high")],
                "window_share": win_shares.get(f),
                "change": None if c is None else c.value,
                "lower": None if c is None else c.details["lower"],
                "upper": None if c is None else c.details["upper"],
                "changed": None if c is None else c.drifted,
            }
        )
    return {
        "reference_importance": None if importance is None else importance["method"],
        "window_rows_with_attributions": 0 if window is None else window.rows,
        "ndcg": None if ndcg is None else ndcg.value,
        "attribution_drift": None if ndcg is None else ndcg.drifted,
        "features": rows_out,
    }


def estimated_range(importance: dict[str, Any] | None, feature: str, bound: str) -> float | None:
    found = (importance or {}).get("features", {}).get(feature)
    return None if found is None else float(found[bound])


def _number(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def importance_html(entry: dict[str, Any] | None) -> str:
    """The section as an HTML table, or nothing."""
    if entry is None:
        return ""
    cells = []
    for r in entry["features"]:
        interval = "n/a" if r["lower"] is None else f"{r['lower']:.4g} to {r['upper']:.4g}"
        verdict = {True: "changed", False: "no change shown", None: "n/a"}[r["changed"]]
        cells.append(
            f"<tr><td>{html.escape(r['feature'])}</td><td>{_number(r['reference_share'], '.1%')}</td>"
            f"<td>{_number(r['window_share'], '.1%')}</td><td>{_number(r['change'], '.4g')}</td>"
            f"<td>{interval}</td><td>{verdict}</td></tr>"
        )
    method = html.escape(entry["reference_importance"] or "none")
    if entry["ndcg"] is None:
        ndcg = "no attributions were logged in the sample: no attribution drift measured"
    else:
        verdict = "attribution drift" if entry["attribution_drift"] else "the ranking holds"
        ndcg = f"NDCG of the window's ranking: {entry['ndcg']:.3f} ({verdict}; drift below 0.90)"
    return (
        '<div style="font-family:sans-serif;padding:12px"><h3>What the model relies on</h3>'
        f"<p>The reference's importances: {method}. {html.escape(ndcg)}, on "
        f"{entry['window_rows_with_attributions']:,} sampled rows with attributions.</p>"
        '<table border="1" cellpadding="4" style="border-collapse:collapse"><tr><th>feature</th>'
        "<th>share of the reference's importance</th><th>share in the window</th>"
        "<th>change of mean |attribution|</th><th>95 % interval</th><th>decision</th></tr>"
        + "".join(cells)
        + "</table></div>"
    )
