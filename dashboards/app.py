"""The Dash app: routing by URL (every view has a link), the login, the pages.

It reads through ``monitor``'s query functions only (``monitor.services.read_models.dashboard_data`` and
the service functions of alerts and reports), never the raw prediction log.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from dash import Dash, Input, Output, dcc, html
from flask import Flask, Response

from dashboards import auth, security
from dashboards.pages import alerts, compare, model, overview, reports
from monitor.errors import MonitorError
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import reports as report_service

log = logging.getLogger(__name__)

CSS = """
body { font-family: system-ui, -apple-system, sans-serif; margin: 0; color: #212121; }
nav { background: #263238; padding: .6rem 1.5rem; display: flex; gap: 1.5rem; align-items: center; }
nav a { color: #eceff1; text-decoration: none; font-weight: 500; }
nav .who { margin-left: auto; color: #90a4ae; font-size: .85rem; }
nav .logout { background: none; border: none; color: #eceff1; font-size: .85rem; cursor: pointer; padding: 0; }
main { padding: 1rem 1.5rem; }
.table { border-collapse: collapse; width: 100%; }
.scroll { overflow-x: auto; max-width: 100%; }
/* a long word (a URL, an id) breaks only where it cannot fit; words are never cut to squeeze a column */
.table td { overflow-wrap: break-word; }
.table th, .table td { border-bottom: 1px solid #e0e0e0; padding: .5rem; text-align: left; vertical-align: top; }
.muted { color: #757575; }
/* an alert group: its heading always in view, its table scrolling in its own box */
.alert-group { margin: .4rem 0; border: 1px solid #eee; padding: .3rem .6rem; }
.alert-group > summary { cursor: pointer; padding: .2rem 0; }
.alerts td.summary { min-width: 18rem; }
.alerts td.since, .alerts td.resolved { white-space: nowrap; }
.error { color: #b71c1c; }
.firing { color: #b71c1c; font-size: .85rem; }
/* marks drawn with CSS, not glyphs: a glyph missing from the reader's fonts renders as a box */
.dot { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; vertical-align: middle; }
.firing .dot { width: .5rem; height: .5rem; background: #b71c1c; margin-right: .3rem; }
.controls { display: flex; gap: 1rem; align-items: end; flex-wrap: wrap; margin: .5rem 0; }
.controls label, .actions label { display: inline-flex; gap: .3rem; align-items: center; margin-right: .8rem; }
.actions { background: #fafafa; padding: .5rem 1rem; border: 1px solid #eee; margin: 1rem 0; }
/* Dash wraps each input in a container that clips it and is 100 % of its parent wide: in a flex
   label that came to a few px, hiding the input. The container gets a width of its own and does
   not shrink; a number (with its two stepper buttons) needs less room than text. */
label .dash-input-container, .actions .dash-input-container { flex: 0 0 auto; width: 14rem; }
.dash-input-container:has(input[type=number]) { width: 11rem; }
"""


def create_dashboard(ctx: ServiceContext, *, open_access: bool = False) -> Dash:
    """The dashboard over ``ctx``. ``open_access`` (no login) is for the demo on loopback."""
    app = Dash(
        __name__,
        title="Model Monitor",
        suppress_callback_exceptions=True,
        update_title=None,  # type: ignore[arg-type]  # None turns the "Updating..." title off (Dash's docs)
        serve_locally=True,
    )
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")
    # Host, Origin and headers first: a foreign request is refused before the login looks at it.
    security.install(app, open_access=open_access, dashboard_url=ctx.settings.dashboard_url)
    auth.install(app.server, ctx, open_access=open_access)
    security.refuse_malformed_callbacks(app)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Nav(
                [
                    dcc.Link("Models", href="/"),
                    dcc.Link("Alerts", href="/alerts"),
                    dcc.Link("Reports", href="/reports"),
                    html.Span(id="who", className="who"),
                    # a POST: a GET that logged out could be sent by any site
                    html.Form(
                        html.Button("log out", type="submit", id="logout", className="logout"),
                        action="/logout",
                        method="POST",
                    )
                    if not open_access
                    else None,
                ]
            ),
            html.Main(id="page"),
            # Dash loads Plotly when the first chart appears: for a deep link, after the page came
            # from the server. A hidden empty chart in the shell has it loaded and compiled while
            # the server builds the page instead (a cold link to a wide model's week: ~0.1 s).
            dcc.Graph(id="chart-library", figure={"data": [], "layout": {}}, style={"display": "none"}),
        ]
    )

    @app.callback(
        Output("page", "children"), Output("who", "children"), Input("url", "pathname"), Input("url", "search")
    )
    def route(pathname: str | None, search: str | None) -> tuple[Any, str]:
        who = auth.principal().name
        path = pathname or "/"
        try:
            if path == "/":
                return overview.layout(ctx), who
            if path.startswith("/compare/"):
                return compare.layout(ctx, unquote(path.removeprefix("/compare/").strip("/")), search or ""), who
            if path.startswith("/models/"):
                return model.layout(ctx, unquote(path.removeprefix("/models/").strip("/")), search or ""), who
            if path == "/alerts":
                return alerts.layout(ctx), who
            if path == "/reports":
                return reports.layout(ctx, search or ""), who
        except MonitorError as exc:
            return html.Div([html.H2("Not available"), html.P(exc.message, className="error")]), who
        return html.Div([html.H2("Not found"), html.P(f"No page at {path}.")]), who

    model.register(app, ctx)
    alerts.register(app, ctx)
    reports.register(app, ctx)

    server: Flask = app.server

    @server.route("/report-html/<name>/<int:report_id>")
    def report_html(name: str, report_id: int) -> Response:
        try:
            report = report_service.get_report(ctx, name, report_id, with_html=True)
        except MonitorError as exc:
            return Response(exc.message, status=exc.status_code, mimetype="text/plain")
        return Response(report["html"], mimetype="text/html")  # sandboxed: see dashboards.security

    return app
