"""The Dash app: the login, the shell around the pages (Dash Pages routes each URL to one,
see ``dashboards.routing``), and the report pages.

It reads through ``monitor``'s query functions only (``monitor.services.read_models.dashboard_data`` and
the service functions of alerts and reports), never the raw prediction log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
from dash import Dash, Input, Output, dcc, html
from flask import Flask, Response

from dashboards import auth, routing, security
from dashboards.pages import alerts, model, reports
from dashboards.params import LOCATION
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
        use_pages=True,
        pages_folder="",  # the pages are registered by dashboards.routing, not imported from a folder
        include_pages_meta=False,  # no social-card <meta> tags: an internal tool, and they echo the URL
    )
    app.server.extensions[routing.EXTENSION] = ctx
    routing.register_pages()
    # Host, Origin and headers first: a foreign request is refused before the login looks at it.
    security.install(app, open_access=open_access, dashboard_url=ctx.settings.dashboard_url, tls=ctx.settings.tls)
    auth.install(app.server, ctx, open_access=open_access)
    security.refuse_malformed_callbacks(app)
    app.layout = html.Div(
        [
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
            html.Main(dash.page_container, id="page"),
            # Dash loads Plotly when the first chart appears: for a deep link, after the page came
            # from the server. A hidden empty chart in the shell has it loaded and compiled while
            # the server builds the page instead (a cold link to a wide model's week: ~0.1 s).
            dcc.Graph(id="chart-library", figure={"data": [], "layout": {}}, style={"display": "none"}),
        ]
    )

    @app.callback(Output("who", "children"), Input(LOCATION, "pathname"))
    def who(_pathname: str | None) -> str:
        return auth.principal().name

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
