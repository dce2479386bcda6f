"""Overview: every model with its health, drift, quality, latency, volume and firing alerts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import dcc, html

from dashboards import figures
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import dashboard_data
from monitor.services.read_models.scheduler_status import SchedulerView, scheduler_view

HEALTH_COLOURS = {"ok": figures.OK, "warning": figures.WARN, "firing": figures.BAD}


def _number(p: dict[str, Any] | None, fmt: str, unit: str = "") -> html.Span:
    if p is None or p["value"] is None:
        return html.Span("—", className="muted")
    return html.Span([f"{p['value']:{fmt}}{unit} ", html.Small(f"n = {p['sample_size']:,}", className="muted")])


def layout(ctx: ServiceContext) -> html.Div:
    rows = dashboard_data.overview(ctx)
    if not rows:
        return html.Div([html.H2("Models"), html.P("No models registered yet.")])
    body = []
    for m in rows:
        drift = m["drift"]
        cov = m["label_coverage"]
        est = m["estimated_quality"]
        body.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.Span(className="dot", style={"background": HEALTH_COLOURS[m["health"]]}),
                            " ",
                            html.Span(m["health"], className=f"health health-{m['health']}"),
                        ]
                    ),
                    html.Td(
                        [
                            dcc.Link(m["model"], href=f"/models/{quote(m['model'])}"),
                            html.Br(),
                            html.Small(f"v{m['version']}"),
                        ]
                    ),
                    html.Td(
                        [
                            _number(drift, ".0%"),
                            html.Br(),
                            html.Small(f"{m['window']} window, {'drifted' if drift and drift['drifted'] else 'ok'}")
                            if drift
                            else "",
                        ]
                    ),
                    html.Td(
                        [
                            html.Small(m["quality_metric"].removeprefix("quality.") + " "),
                            _number(m["quality"], ".3f"),
                            html.Br(),
                            html.Small(
                                f"label coverage {cov['value']:.0%}" if cov and cov["value"] is not None else ""
                            ),
                            html.Br(),
                            html.Small(f"estimated {est['value']:.3f}" if est and est["value"] is not None else ""),
                        ]
                    ),
                    html.Td(_number(m["latency_p95"], ".1f", " ms")),
                    html.Td(
                        dcc.Graph(
                            figure=figures.volume(m["volume"]),
                            config={"displayModeBar": False},
                            style={"width": "220px", "height": "90px"},
                            id={"type": "volume", "model": m["model"]},
                        )
                    ),
                    html.Td(
                        [
                            html.Div([html.Span(className="dot"), f"{a['rule']}: {a['summary']}"], className="firing")
                            for a in m["firing"]
                        ]
                        + ([html.Small(f"{m['pending']} pending")] if m["pending"] else [])
                        or [html.Span("none", className="muted")]
                    ),
                ],
                className="model-row",
                id=f"model-row-{m['model']}",
            )
        )
    head = html.Tr(
        [
            html.Th(h)
            for h in ("health", "model", "dataset drift", "quality", "latency p95", "predictions (7 days)", "alerts")
        ]
    )
    return html.Div(
        [
            html.H2("Models"),
            html.Table([html.Thead(head), html.Tbody(body)], className="table", id="models"),
            _scheduler(scheduler_view(ctx)),
        ]
    )


def _scheduler(view: SchedulerView) -> html.Div:
    """The scheduler processes sharing the models: each one's models, lag and heartbeat, and the
    models no live process holds (nobody computes their metrics)."""
    head = html.Tr([html.Th(h) for h in ("process", "state", "models held", "lag", "runs", "heartbeat")])
    rows = [
        html.Tr(
            [
                html.Td(p.process_id),
                html.Td(("live" if p.live else "dead") + (", leader" if p.leader else "")),
                html.Td(f"{p.models_held:,}"),
                html.Td(f"{p.lag_seconds:.1f} s"),
                html.Td(f"{p.runs:,}"),
                html.Td(f"{p.heartbeat_age_seconds:.0f} s ago"),
            ],
            className="process-row" + ("" if p.live else " dead"),
        )
        for p in view.processes
    ]
    unheld = [lease.model for lease in view.unheld]
    note = (
        html.P(
            f"{len(unheld)} models held by no live scheduler process: "
            + ", ".join(unheld[:20])
            + (" ..." if len(unheld) > 20 else ""),
            className="error",
            id="models-unheld",
        )
        if unheld
        else html.P(f"Every model is held by a live scheduler process ({len(view.leases):,}).", className="muted")
    )
    if not view.processes:
        return html.Div(
            [html.H3("Scheduler"), html.P("No scheduler process is running.", className="error", id="scheduler-none")],
            id="scheduler",
        )
    return html.Div(
        [html.H3("Scheduler"), html.Table([html.Thead(head), html.Tbody(rows)], className="table"), note],
        id="scheduler",
    )
