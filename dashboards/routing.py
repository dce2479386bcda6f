"""The dashboard's URLs in Dash Pages' registry: which page each path shows, its title, and what
a path no page has shows.

Dash Pages keeps one registry per process, whatever the number of dashboards in it (the tests
start several, each over its own database): a page finds its dashboard's services through the
Flask app answering the request (``context()``), not through a closure over one of them.

Pages hands a layout the path's variables and the query's parameters merged into one set of
keyword arguments, a query parameter overriding a path variable of the same name (a link to
``/models/a?name=b`` would show model b under a's address). Every page here reads its path and
query from the location itself instead, so what an address shows is what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import dash
from dash import html
from flask import current_app

from dashboards.pages import alerts, compare, model, overview, reports
from dashboards.params import LOCATION
from monitor.errors import MonitorError
from monitor.services.infra.context import ServiceContext

EXTENSION = "model_monitor"  # the key of a dashboard's ServiceContext in its Flask app's extensions
TITLE = "Model Monitor"
MAX_TITLE_NAME = 80  # a model name in the browser's title, bounded

# Dash ships register_page without annotations
_register_page: Callable[..., None] = dash.register_page

# (the service context, the path's variable part (unquoted; '' for a fixed path), the query string)
Render = Callable[[ServiceContext, str, str], Any]


@dataclass(frozen=True)
class Page:
    module: str  # its key in Dash's page registry
    path: str  # a fixed path, or a prefix followed by one variable part (``/models/<name>``)
    title: str
    render: Render

    @property
    def prefix(self) -> str | None:
        """For a path with a variable part, what comes before it; None for a fixed path."""
        return self.path.split("<", 1)[0] if "<" in self.path else None

    def variable(self, pathname: str) -> str:
        prefix = self.prefix
        return "" if prefix is None else unquote(pathname.removeprefix(prefix).strip("/"))


PAGES = (
    Page("pages.overview", "/", "Models", lambda ctx, _name, _search: overview.layout(ctx)),
    Page("pages.model", "/models/<name>", "Model", model.layout),
    Page("pages.compare", "/compare/<name>", "Versions side by side", compare.layout),
    Page("pages.alerts", "/alerts", "Alerts", lambda ctx, _name, _search: alerts.layout(ctx)),
    Page("pages.reports", "/reports", "Reports", lambda ctx, _name, search: reports.layout(ctx, search)),
)


def context() -> ServiceContext:
    """The services of the dashboard answering this request."""
    ctx: ServiceContext = current_app.extensions[EXTENSION]
    return ctx


def location() -> tuple[str, str]:
    """The path and query string the page is being built for (Dash Pages' routing callback's inputs)."""
    given = dash.callback_context.inputs
    return str(given.get(f"{LOCATION}.pathname") or "/"), str(given.get(f"{LOCATION}.search") or "")


def not_available(message: str) -> html.Div:
    return html.Div([html.H2("Not available"), html.P(message, className="error")])


def _layout(page: Page) -> Callable[..., Any]:
    def layout(**_ignored: Any) -> Any:  # the merged variables: see the module's docstring
        pathname, search = location()
        try:
            return page.render(context(), page.variable(pathname), search)
        except MonitorError as exc:
            return not_available(exc.message)

    return layout


def _title(page: Page) -> str | Callable[..., str]:
    if page.prefix is None:
        return f"{page.title} · {TITLE}"

    def title(name: str = "", **_: Any) -> str:
        shown = unquote(name).strip("/")
        if len(shown) > MAX_TITLE_NAME:
            shown = shown[: MAX_TITLE_NAME - 1] + "…"
        return f"{shown} · {page.title} · {TITLE}"

    return title


def _not_found(**_ignored: Any) -> html.Div:
    pathname, _search = location()
    return html.Div([html.H2("Not found"), html.P(f"No page at {pathname}.")])


def register_pages() -> None:
    """Put every page in Dash's registry (after a ``Dash(use_pages=True)`` exists; again is harmless)."""
    for page in PAGES:
        if page.prefix is None:
            _register_page(page.module, path=page.path, title=_title(page), layout=_layout(page))
        else:
            _register_page(page.module, path_template=page.path, title=_title(page), layout=_layout(page))
    # Dash Pages shows the page whose module ends in "not_found_404" for a path no page has
    _register_page("pages.not_found_404", path="/404", title=f"Not found · {TITLE}", layout=_not_found)
