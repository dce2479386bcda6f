"""Reports page: build a full Evidently report for a chosen window and view it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from dash import Dash, Input, Output, State, dcc, html
from dash import ctx as dash_ctx

from dashboards import auth
from dashboards.params import RANGES
from monitor.errors import MonitorError
from monitor.services.catalog.registry import list_models
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import reports
from monitor.web_security import REPORT_IFRAME_SANDBOX


def _report_list(ctx: ServiceContext, model: str) -> list[Any]:
    items = []
    for r in reports.list_reports(ctx, model):
        href = f"/report-html/{quote(model)}/{r['id']}"
        items.append(
            html.Li(
                [
                    html.A(f"#{r['id']} {r['kind']}", href=href, target="report-frame"),
                    f" — {r['window_start']:%Y-%m-%d %H:%M} to {r['window_end']:%Y-%m-%d %H:%M}, "
                    f"{r['sample_size']:,} of {r['window_rows']:,} rows "
                    f"(reference sample {r['reference_sample_size']:,})",
                ]
            )
        )
    return items or [html.Li("No reports for this model yet.", className="muted")]


def layout(ctx: ServiceContext, search: str) -> html.Div:
    models = [m["name"] for m in list_models(ctx)]
    chosen = models[0] if models else None
    return html.Div(
        [
            html.H2("Reports"),
            html.P(
                "A full Evidently report (data drift, or classification / regression quality on labelled rows) "
                "from a random sample of the window; the report states the sample size.",
                className="muted",
            ),
            html.Div(
                [
                    html.Label(
                        [
                            "model ",
                            dcc.Dropdown(id="report-model", options=models, value=chosen, style={"width": "16rem"}),
                        ]
                    ),
                    html.Label(
                        [
                            "window ",
                            dcc.Dropdown(
                                id="report-range",
                                options=[{"label": f"last {k}", "value": k} for k in RANGES],
                                value="24h",
                                clearable=False,
                                style={"width": "10rem"},
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "kind ",
                            dcc.Dropdown(
                                id="report-kind",
                                options=["drift", "quality"],
                                value="drift",
                                clearable=False,
                                style={"width": "8rem"},
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "sample ",
                            dcc.Input(
                                id="report-sample",
                                type="number",
                                value=5000,
                                min=100,
                                max=ctx.settings.report_max_sample_size,
                                step=100,
                            ),
                        ]
                    ),
                    html.Button("Build report", id="report-build", n_clicks=0),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="report-result")),
            html.Ul(_report_list(ctx, chosen) if chosen else [], id="report-list"),
            html.Iframe(
                name="report-frame",
                id="report-frame",
                sandbox=REPORT_IFRAME_SANDBOX,  # no same-origin: the report can never act as the dashboard
                style={"width": "100%", "height": "900px", "border": "1px solid #ddd"},
            ),
        ]
    )


def register(app: Dash, ctx: ServiceContext) -> None:
    @app.callback(
        Output("report-result", "children"),
        Output("report-list", "children"),
        Output("report-frame", "src"),
        Input("report-build", "n_clicks"),
        Input("report-model", "value"),
        State("report-range", "value"),
        State("report-kind", "value"),
        State("report-sample", "value"),
        prevent_initial_call=True,
    )
    def build(n: int, model: str | None, range_name: str, kind: str, sample: int | None) -> Any:
        if not model:
            return html.P("Choose a model.", className="error"), [], None
        if dash_ctx.triggered_id == "report-model":
            return None, _report_list(ctx, model), None
        end = datetime.now(UTC)
        try:
            meta = reports.build_report(
                ctx,
                model,
                None,
                end - RANGES[range_name],
                end,
                kind=kind,
                sample_size=int(sample or 5000),
                actor=auth.actor(),
            )
        except MonitorError as exc:
            return html.P(exc.message, className="error"), _report_list(ctx, model), None
        note = html.P(
            f"Report #{meta['id']} built from {meta['sample_size']:,} of {meta['window_rows']:,} rows.",
            id="report-built",
        )
        return note, _report_list(ctx, model), f"/report-html/{quote(model)}/{meta['id']}"
