"""The Dash app: routing by URL (every view has a link), the login, the pages.

It reads through ``monitor``'s query functions only (``monitor.services.read_models.dashboard_data`` and
the service functions of alerts and reports), never the raw prediction log.
"""

from __future__ import annotations

import logging
from pathlib import Path
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


def create_dashboard(ctx: ServiceContext, *, open_access: bool = False) -> Dash:
    """The dashboard over ``ctx``. ``open_access`` (no login) is for the demo on loopback."""
    app = Dash(
        __name__,
        title="Model Monitor",
        suppress_callback_exceptions=True,
        update_title=None,  # type: ignore[arg-type]  # None turns the "Updating..." title off (Dash's docs)
        serve_locally=True,
        # dashboards/assets/: the styles (dashboard.css), served by Dash from the package itself
        assets_folder=str(Path(__file__).parent / "assets"),
    )
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
