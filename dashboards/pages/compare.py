"""Versions side by side (``/compare/<model>?challenger=2&range=7d&window=1h``): a challenger
(canary, A/B arm, shadow) against the champion — the newest window's comparison in a table,
both versions' drift against the champion's reference, the accuracy difference over time in
its band, traffic share and agreement, and both versions' accuracy and p95 latency."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from dash import dcc, html

from alerts.rules import parse_duration
from dashboards import figures
from dashboards.params import ModelParams
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import dashboard_data

SHOWN = (  # (metric, what it is) in the table, in this order
    ("comparison.accuracy", "accuracy, challenger minus champion"),
    ("comparison.precision", "precision of the positive class, challenger minus champion"),
    ("comparison.recall", "recall of the positive class, challenger minus champion"),
    ("comparison.f1", "F1 of the positive class, challenger minus champion"),
    ("comparison.roc_auc", "ROC AUC, challenger minus champion"),
    ("comparison.estimated_accuracy", "estimated accuracy (before labels), challenger minus champion"),
    ("comparison.agreement", "same prediction on the same request"),
    ("comparison.traffic_share", "challenger's share of the predictions"),
    ("comparison.latency_p95_ms", "p95 latency, challenger minus champion (ms)"),
)


def _cell(v: Any, fmt: str = "{:.4g}") -> str:
    return "" if v is None else fmt.format(v)


def _table(points: list[dict[str, Any]]) -> html.Table:
    newest: dict[str, dict[str, Any]] = {}
    for p in points:
        newest[p["metric"]] = p  # oldest first: the last is the newest window's
    rows = [html.Tr([html.Th(h) for h in ("measure", "value", "95 % interval", "p-value", "rows", "")])]
    for metric, what in SHOWN:
        if metric not in newest:
            continue
        p = newest[metric]
        d = p.get("details") or {}
        band = f"{_cell(d.get('lower'))} to {_cell(d.get('upper'))}" if d.get("lower") is not None else ""
        verdict = "significant" if p["drifted"] else ""
        rows.append(
            html.Tr(
                [
                    html.Td(what),
                    html.Td(_cell(p["value"]), className="value", id=f"value-{metric.replace('.', '-')}"),
                    html.Td(band),
                    html.Td(_cell(d.get("p_value"), "{:.3g}")),
                    html.Td(f"{p['sample_size']:,}"),
                    html.Td(verdict + (" (paired)" if d.get("paired") else "")),
                ]
            )
        )
    return html.Table(rows, id="comparison-table")


DRIFT = ("comparison.dataset_drift", "comparison.prediction_drift", "comparison.feature_drift")


def _drift_table(points: list[dict[str, Any]]) -> html.Table | html.P:
    """The newest window's drift of both versions against the champion's reference, a row a
    column (names are the data's own: Dash writes them as text)."""
    drift = [p for p in points if p["metric"] in DRIFT]
    if not drift:
        return html.P("No drift against the champion's reference yet.", id="comparison-drift", className="muted")
    newest = max(p["window_end"] for p in drift)
    rows = [html.Tr([html.Th(h) for h in ("column", "challenger", "", "champion", "", "rows", "method")])]
    for p in sorted(
        (p for p in drift if p["window_end"] == newest), key=lambda p: (DRIFT.index(p["metric"]), str(p["labels"]))
    ):
        d, labels = p.get("details") or {}, p["labels"]
        column = labels.get("feature") or labels.get("column") or "share of features drifted"
        rows.append(
            html.Tr(
                [
                    html.Td(column),
                    html.Td(_cell(p["value"])),
                    html.Td("drifted" if p["drifted"] else ""),
                    html.Td(_cell(d.get("champion_value"))),
                    html.Td("drifted" if d.get("champion_drifted") else ""),
                    html.Td(f"{p['sample_size']:,}"),
                    html.Td(labels.get("method", "")),
                ]
            )
        )
    return html.Table(rows, id="comparison-drift")


def paired_accuracy(
    sides: dict[str, list[dict[str, Any]]], comparison: list[dict[str, Any]], champion: str, challenger: str
) -> dict[str, list[dict[str, Any]]]:
    """Both versions' accuracy by window. A shadow's own predictions get no labels (the served
    ones do), so it has no accuracy of its own: both lines then come from the paired comparison,
    on the labelled requests both answered (its chart drew the champion alone)."""
    mine = [p for p in sides.get(challenger, []) if p["metric"] == "quality.accuracy" and not p["labels"]]
    paired = [p for p in comparison if p["metric"] == "comparison.accuracy" and (p.get("details") or {}).get("paired")]
    if mine or not paired:
        return sides

    def line(key: str) -> list[dict[str, Any]]:
        return [
            {**p, "metric": "quality.accuracy", "labels": {}, "value": p["details"][key]}
            for p in paired
            if p["details"].get(key) is not None
        ]

    on_pairs = " (on the requests both answered)"
    return {f"{champion}{on_pairs}": line("champion_value"), f"{challenger}{on_pairs}": line("challenger_value")}


def layout(ctx: ServiceContext, name: str, search: str) -> html.Div:
    p = ModelParams.from_search(search)
    q = {k: v[-1] for k, v in parse_qs(search.lstrip("?")).items()}
    window = p.window or "1h"
    data = dashboard_data.comparison_page(ctx, name, q.get("challenger"), p.start, p.end, parse_duration(window))
    if data["champion"] is None or data["challenger"] is None:
        return html.Div(
            [
                html.H2(f"{name}: versions side by side"),
                html.P(
                    "Nothing to compare: declare a champion and a canary, A/B arm or shadow "
                    "(PUT /v1/models/{name}/versions/{version}/deployment).",
                    id="compare-empty",
                ),
            ]
        )
    champion, challenger = data["champion"], data["challenger"]
    links = [
        dcc.Link(
            f"v{c['version']} ({c['deployment']})", href=f"/compare/{quote(name)}?challenger={quote(c['version'])}"
        )
        for c in data["challengers"]
    ]
    graph: dict[str, Any] = {"config": {"displaylogo": False}}
    shares = [pt for pt in data["comparison"] if pt["metric"] in ("comparison.traffic_share", "comparison.agreement")]
    return html.Div(
        [
            html.H2(f"{name}: v{challenger} ({data['deployment']}) against v{champion} (champion)", id="compare-title"),
            html.P(["challengers: ", *[x for link in links for x in (link, " ")]], className="muted"),
            html.P(
                f"windows of {window} ending {p.start:%Y-%m-%d %H:%M} to {p.end:%Y-%m-%d %H:%M} UTC", className="muted"
            ),
            _table(data["comparison"]),
            *(
                []
                if data["own_reference"]
                else [
                    html.P(
                        f"v{challenger} has no reference of its own: it is measured against the champion's "
                        "(drift, quality baselines, score bins), as the champion is.",
                        id="compare-borrowed-reference",
                        className="muted",
                    )
                ]
            ),
            html.H3("Drift of both against the champion's reference"),
            _drift_table(data["comparison"]),
            dcc.Graph(
                id="comparison-accuracy", figure=figures.comparison(data["comparison"], champion, challenger), **graph
            ),
            dcc.Graph(
                id="comparison-shares",
                figure=figures.series(
                    shares, "comparison.traffic_share", "Traffic share of the challenger", percent=True
                )
                if not any(s["metric"] == "comparison.agreement" for s in shares)
                else figures.series(
                    shares, "comparison.agreement", "Agreement with the champion (same request)", percent=True
                ),
                **graph,
            ),
            dcc.Graph(
                id="versions-accuracy",
                figure=figures.versions_side_by_side(
                    paired_accuracy(data["sides"], data["comparison"], champion, challenger),
                    "quality.accuracy",
                    "Accuracy of each version",
                ),
                **graph,
            ),
            dcc.Graph(
                id="versions-latency",
                figure=figures.versions_side_by_side(data["sides"], "latency.p95", "p95 latency of each version (ms)"),
                **graph,
            ),
        ]
    )
