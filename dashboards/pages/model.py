"""Model page: drift heatmap (a click opens the distributions), prediction drift, quality with
label coverage and concept-drift marks, latency and throughput, data quality — for a time range,
a window length and a segment, all in the URL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from dash import Dash, Input, Output, State, dcc, html, no_update

from alerts.rules import parse_duration
from dashboards import figures
from dashboards.params import LOCATION, MAX_FILTER, RANGES, ModelParams
from monitor.errors import MonitorError
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import dashboard_data


def _model_name(pathname: str) -> str:
    return unquote(pathname.removeprefix("/models/").strip("/"))


def layout(ctx: ServiceContext, name: str, search: str) -> html.Div:
    vrow = registry.primary_version(ctx, name)  # read once: a wide model's schema is a thousand features
    info = dashboard_data.version_info(ctx, vrow)
    p = ModelParams.from_search(search)
    window = p.window if p.window and p.window in info["windows"] else str(info["windows"][0])
    shown = dashboard_data.model_page_points(
        ctx,
        vrow,
        p.start,
        p.end,
        parse_duration(window),
        p.segment,
        p.features,
        p.page,
        figures.HEATMAP_ROWS,
        figures.MAX_LINES,
        dashboard_data.importance_shares_of(info) if p.order == "importance" else None,
    )
    points, ranked = shown.points, shown.ranked
    quality_metric = dashboard_data.main_quality_metric(info["task"])
    n_windows = len({pt["window_end"] for pt in points})
    step_hours = dashboard_data.window_step(p.start, p.end) // 3600
    every = "" if step_hours == 1 else f" (one every {step_hours} hours of this range)"
    graph: dict[str, Any] = {"config": {"displaylogo": False}}

    start = figures.shown_start(points, p.start)  # the heatmap and every chart over the same span

    def span(fig: figures.Figure) -> figures.Figure:
        return figures.with_time_range(fig, start, p.end)

    timeseries = _timeseries(points, shown.features, quality_metric)

    return html.Div(
        [
            *_heading(name, info),
            _scheduler_status(info["scheduler"]),
            _controls(p, info, window),
            html.P(
                f"{n_windows} window{'' if n_windows == 1 else 's'} of {window}{every} ending "
                f"{p.start:%Y-%m-%d %H:%M} to {p.end:%Y-%m-%d %H:%M} UTC"
                + (f", segment {p.segment}" if p.segment else ", all predictions"),
                className="muted",
                id="range-text",
            ),
            _heatmap_controls(p, len(ranked), info["importance"] is not None),
            dcc.Graph(
                id="drift-heatmap",
                figure=span(figures.drift_heatmap(points, p.features, p.page, ranked=ranked)),
                **graph,
            ),
            dcc.Loading(html.Div(id="distribution", children=_distribution_hint(p, points))),
            _chart("importance", figures.importance(info["importance"], points), graph),
            _chart(
                "attribution-drift",
                span(
                    figures.series(
                        points, "attribution_drift.ndcg", "Attribution drift: NDCG of the importance ranking"
                    )
                ),
                graph,
            ),
            *[_chart(gid, span(fig), graph) for gid, fig in timeseries[:4]],
            _fairness(points, span, graph),
            *[_chart(gid, span(fig), graph) for gid, fig in timeseries[4:]],
        ]
    )


def _controls(p: ModelParams, info: dict[str, Any], window: str) -> html.Div:
    """The range, window and segment the page shows."""
    return html.Div(
        [
            html.Label(
                [
                    "range ",
                    dcc.Dropdown(
                        id="range",
                        options=[{"label": f"last {k}", "value": k} for k in RANGES]
                        + (
                            [{"label": f"{p.start:%Y-%m-%d %H:%M} to {p.end:%Y-%m-%d %H:%M}", "value": "custom"}]
                            if p.range_name == "custom"
                            else []
                        ),
                        value=p.range_name,
                        clearable=False,
                        style={"width": "18rem"},
                    ),
                ]
            ),
            html.Label(
                [
                    "window ",
                    dcc.Dropdown(
                        id="window", options=info["windows"], value=window, clearable=False, style={"width": "8rem"}
                    ),
                ]
            ),
            html.Label(
                [
                    "segment ",
                    dcc.Dropdown(
                        id="segment",
                        options=[{"label": "all predictions", "value": ""}]
                        + [{"label": s, "value": s} for s in info["segments"]],
                        value=p.segment,
                        clearable=False,
                        style={"width": "16rem"},
                    ),
                ]
            ),
        ],
        className="controls",
    )


def _timeseries(
    points: list[dict[str, Any]], features: dict[str, int], quality_metric: str
) -> list[tuple[str, figures.Figure]]:
    """The charts under the heatmap, by id: drift, quality, latency, then data quality."""

    def quality_shares(metric: str, title: str) -> figures.Figure:
        """A data-quality share by feature: the highest features' lines, out of how many."""
        return figures.series(points, metric, title, by="feature", percent=True, of=features.get(metric))

    return [
        (
            "dataset-drift",
            figures.series(points, "dataset_drift", "Dataset drift: share of drifted features", percent=True),
        ),
        ("multivariate-drift", figures.multivariate_drift(points)),
        ("prediction-drift", figures.series(points, "prediction_drift", "Prediction drift", by="column")),
        ("quality", figures.quality(points, quality_metric)),
        ("latency", figures.latency(points)),
        ("missing", quality_shares("data_quality.missing_share", "Missing values")),
        (
            "non-finite",
            quality_shares("data_quality.non_finite_share", "Infinite values (±inf)"),
        ),
        (
            "out-of-range",
            quality_shares("data_quality.out_of_range_share", "Outside the reference range"),
        ),
        (
            "new-categories",
            quality_shares("data_quality.new_category_share", "Categories the reference never had"),
        ),
    ]


def _heading(name: str, info: dict[str, Any]) -> list[Any]:
    """The model's name, version and task, a link to compare its versions, and what its jobs skipped."""
    return [
        html.H2(
            [
                f"{name} ",
                html.Small(f"v{info['version']} · {info['task']} · "),
                dcc.Link(html.Small("compare versions"), href=f"/compare/{quote(name)}", id="compare-link"),
            ]
        ),
        *[
            html.P(
                f"The {j['job']} job skipped data at {j['last_error_at']:%Y-%m-%d %H:%M} UTC "
                f"({j['failures']} failures so far): {j['last_error']}",
                className="error",
                id="job-errors",
            )
            for j in info["job_errors"]
        ],
    ]


def _chart(gid: str, fig: figures.Figure, graph: dict[str, Any]) -> Any:
    """The chart, or where it has nothing to draw one line saying so: an empty box took the room
    and the drawing time of a chart (a healthy model's infinite values and new categories)."""
    if isinstance(fig, dict) and not fig["data"]:
        layout = fig["layout"]
        why = layout["annotations"][0]["text"] if layout.get("annotations") else "nothing in this range"
        return html.P(f"{layout['title']}: {why}.", id=gid, className="muted")
    return dcc.Graph(id=gid, figure=fig, **graph)


def _fairness(points: list[dict[str, Any]], span: Any, graph: dict[str, Any]) -> Any:
    """The fairness chart, or where no attribute is protected one line saying how to get it (an
    empty chart box said nothing)."""
    if not any(p["metric"].startswith("fairness.") for p in points):
        return html.P(
            "Fairness: no protected attributes are measured (protected_attributes in the monitoring settings).",
            id="fairness",
            className="muted",
        )
    return dcc.Graph(id="fairness", figure=span(figures.fairness(points)), **graph)


def _heatmap_controls(p: ModelParams, n_features: int, has_importance: bool) -> html.Div:
    """A name filter and the heatmap's pages, for models with more features than a page holds,
    and its order where the reference knows each feature's importance."""
    pages = figures.heatmap_pages(n_features)
    order = [
        html.Label(
            [
                "order ",
                dcc.Dropdown(
                    id="feature-order",
                    options=[
                        {"label": "most drifted first", "value": "drift"},
                        {"label": "importance × drift", "value": "importance"},  # noqa: RUF001
                    ],
                    value=p.order,
                    clearable=False,
                    style={"width": "14rem"},
                ),
            ]
        )
    ]
    return html.Div(
        [
            *(order if has_importance else []),
            html.Label(
                [
                    "features ",
                    dcc.Input(
                        id="feature-filter",
                        type="search",
                        value=p.features,
                        placeholder="filter by name",
                        debounce=True,
                        maxLength=MAX_FILTER,
                    ),
                ]
            ),
            html.Label(
                [
                    "page ",
                    dcc.Dropdown(
                        id="feature-page",
                        options=[{"label": f"{i} of {pages}", "value": i} for i in range(1, pages + 1)],
                        value=min(p.page, pages),
                        clearable=False,
                        style={"width": "9rem"},
                    ),
                ]
            ),
        ],
        className="controls",
    )


def _distribution_hint(p: ModelParams, points: list[dict[str, Any]]) -> Any:
    return html.P(
        "Click a heatmap cell to compare that feature's reference and current distributions.", className="muted"
    )


def register(app: Dash, ctx: ServiceContext) -> None:
    @app.callback(
        Output(LOCATION, "search", allow_duplicate=True),
        Input("range", "value"),
        Input("window", "value"),
        Input("segment", "value"),
        State(LOCATION, "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(range_name: str, window: str, segment: str, search: str) -> str:
        p = ModelParams.from_search(search)
        return p.search(range=range_name if range_name != "custom" else None, window=window, segment=segment)

    @app.callback(
        Output(LOCATION, "search", allow_duplicate=True),
        Input("feature-filter", "value"),
        Input("feature-page", "value"),
        State(LOCATION, "search"),
        prevent_initial_call=True,
    )
    def heatmap_to_url(features: str | None, page: int | None, search: str) -> str:
        p = ModelParams.from_search(search)
        features = (features or "")[:MAX_FILTER]
        # a new filter starts on its first page
        page = 1 if features != p.features or not page else int(page)
        return p.search(features=features, page=str(page) if page > 1 else None)

    @app.callback(
        Output(LOCATION, "search", allow_duplicate=True),
        Input("feature-order", "value"),
        State(LOCATION, "search"),
        prevent_initial_call=True,
    )
    def order_to_url(order: str | None, search: str) -> str:
        p = ModelParams.from_search(search)
        return p.search(order="importance" if order == "importance" else None, page=None)

    @app.callback(
        Output("distribution", "children"),
        Input("drift-heatmap", "clickData"),
        State(LOCATION, "pathname"),
        State(LOCATION, "search"),
        prevent_initial_call=True,
    )
    def open_distribution(click: dict[str, Any] | None, pathname: str, search: str) -> Any:
        if not click or not click.get("points"):
            return no_update
        pt = click["points"][0]
        feature = pt["y"]
        end = datetime.fromisoformat(str(pt["x"])).replace(tzinfo=UTC)  # plotly gives UTC wall time
        name = _model_name(pathname)
        p = ModelParams.from_search(search)
        windows = dashboard_data.model_info(ctx, name)["windows"]
        window = p.window if p.window and p.window in windows else str(windows[0])
        start = end - parse_duration(window)
        try:
            dist = dashboard_data.feature_distribution(ctx, name, f"features.{feature}", start, end, p.segment)
        except MonitorError as exc:
            return html.P(exc.message, className="error")
        points = dashboard_data.window_points(
            ctx, name, start.replace(microsecond=0), end, end - start, p.segment, features={"feature_drift": [feature]}
        )
        point = next(
            (
                x
                for x in points
                if x["metric"] == "feature_drift" and x["labels"]["feature"] == feature and x["window_end"] == end
            ),
            None,
        )
        return dcc.Graph(id="distribution-graph", figure=figures.distribution(dist, point, feature))


def _scheduler_status(s: dict[str, Any]) -> html.P:
    """How fresh the windows are: when the scheduler last computed them (and which process), the
    predictions that arrived since and are not in them yet (and since when they wait), and which
    scheduler process holds the model now and when it is next due."""
    if s["last_run_at"] is None:
        text = "Metrics not computed yet: the scheduler has not run for this model."
    else:
        took = f" (took {s['last_duration_s']:.1f} s)" if s["last_duration_s"] is not None else ""
        by = f" by {s['last_run_by']}" if s.get("last_run_by") else ""
        text = f"Metrics last computed {s['last_run_at']:%Y-%m-%d %H:%M:%S} UTC{by}{took}"
        if s["waiting_rows"]:
            text += f"; {s['waiting_rows']:,} predictions since wait to be folded into the windows"
            if s["waiting_since"] is not None:
                text += f", the oldest since {s['waiting_since']:%H:%M:%S} UTC"
        text += "."
    if s.get("owner"):
        text += f" Held by scheduler process {s['owner']}, next run due {s['due_at']:%H:%M:%S} UTC."
    else:
        text += " No live scheduler process holds this model: its metrics are not being computed."
    return html.P(text, className="muted", id="scheduler-status")
