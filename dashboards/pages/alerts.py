"""Alerts page: firing, pending and resolved alerts on a timeline with their evidence; silence
and acknowledge from here (an admin key, or the open demo); the rules; the webhook and
retraining delivery log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html

from alerts.rules import RuleError, parse_rule
from alerts.silences import Matcher, SilenceSpec
from dashboards import auth, figures
from monitor.errors import MonitorError
from monitor.services.alerting import alert_ops
from monitor.services.catalog.keys import Scope
from monitor.services.infra.context import ServiceContext
from monitor.services.read_models import dashboard_data

STATE_COLOURS = {"firing": figures.BAD, "pending": figures.WARN, "resolved": figures.OK, "inactive": "#9e9e9e"}


def _fmt(ts: datetime | None) -> str:
    return "" if ts is None else f"{ts:%Y-%m-%d %H:%M:%S}"


# Height of one row of the alert timeline: every row is labelled only when each has room for its
# tick label (plotly skips every other category label on a crowded axis).
ROW_PX = 22


def _row(h: dict[str, Any]) -> str:
    """The timeline row of a state change: the rule and what it watches (feature, segment or model)."""
    return f"{h['rule']} · {h['labels'].get('feature') or h['labels'].get('segment_value') or h['model']}"


def timeline(history: list[dict[str, Any]]) -> go.Figure:
    if not history:
        return figures._empty("Alert timeline", "no alert has changed state yet")
    fig = go.Figure()
    for state, colour in STATE_COLOURS.items():
        hs = [h for h in history if h["to_state"] == state]
        if not hs:
            continue
        fig.add_trace(
            go.Scatter(
                x=[h["at"] for h in hs],
                y=[_row(h) for h in hs],
                mode="markers",
                name=state,
                marker={"color": colour, "size": 11, "symbol": "diamond"},
                customdata=[[h["value"], h["threshold"], h["evidence"].get("sample_size")] for h in hs],
                hovertemplate=f"→ {state}<br>value %{{customdata[0]:.4g}}, threshold %{{customdata[1]:.4g}}"
                "<br>n = %{customdata[2]:,}<extra></extra>",
            )
        )
    rows = sorted({_row(h) for h in history})
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=rows, dtick=1, automargin=True)
    figures._layout(fig, "Alert timeline (state changes)", height=max(260, ROW_PX * len(rows) + 160))
    # the legend above the plot: below it, it hid the dates under the times
    return fig.update_layout(legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"})


def _alert_rows(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An alert group's rows: what tells its alerts apart and what an engineer acts on (the rule,
    model and severity are the group's; the fingerprint is each row's tooltip)."""
    return [
        {
            "state": a["state"]
            + (" (silenced)" if a.get("silenced_by") else "")
            + (" (inhibited)" if a.get("inhibited_by") else ""),
            "labels": ", ".join(
                f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "model", "severity")
            ),
            "summary": a["annotations"].get("summary", ""),
            "value": a["value"],
            "threshold": a["threshold"],
            "n": a["evidence"].get("sample_size"),
            "since": _fmt(a["fired_at"] or a["active_at"]),
            "resolved": _fmt(a["resolved_at"]),
            "acknowledged": a["acknowledged_by"] or "",
            "link": a["annotations"].get("dashboard", ""),
        }
        for a in alerts
    ]


# How a group ranks: firing first, then pending, then the rest; critical before warning
_STATE_RANK = {"firing": 0, "pending": 1, "resolved": 2}
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def alert_groups(
    alerts: list[dict[str, Any]],
    states: list[str] | None = None,
    severities: list[str] | None = None,
    models: list[str] | None = None,
) -> list[Any]:
    """The alerts that pass the filters (an empty filter passes all), grouped by rule and model:
    each group a collapsible block whose heading counts its alerts by state, open while any of
    them fires or is pending."""
    chosen = [
        a
        for a in alerts
        if (not states or a["state"] in states)
        and (not severities or a["labels"].get("severity", "") in severities)
        and (not models or a["model"] in models)
    ]
    if not chosen:
        return [html.P("no alert matches" if alerts else "none", className="muted")]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in chosen:
        groups.setdefault((a["rule"], a["model"]), []).append(a)

    def rank(key: tuple[str, str]) -> tuple[int, int, str, str]:
        members = groups[key]
        best = min(_STATE_RANK.get(a["state"], 3) for a in members)
        severity = min(_SEVERITY_RANK.get(a["labels"].get("severity", ""), 3) for a in members)
        return best, severity, key[0], key[1]

    out = []
    for rule, model in sorted(groups, key=rank):
        members = sorted(groups[(rule, model)], key=lambda a: (_STATE_RANK.get(a["state"], 3), a["fingerprint"]))
        counts = {s: sum(a["state"] == s for a in members) for s in ("firing", "pending", "resolved")}
        severity = ", ".join(sorted({a["labels"].get("severity", "") for a in members} - {""}))
        heading: list[Any] = [
            html.Strong(f"{rule} · {model}"),
            f" — {len(members)} alert{'s' if len(members) != 1 else ''}: ",
            ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none active",
            f" · {severity}" if severity else "",
        ]
        rows = _alert_rows(members)
        columns = list(rows[0])
        out.append(
            html.Details(
                [
                    html.Summary(heading),
                    html.Div(
                        html.Table(
                            [
                                html.Thead(html.Tr([html.Th(c) for c in columns])),
                                html.Tbody(
                                    [
                                        html.Tr(
                                            [html.Td(_cell(c, r[c]), className=c) for c in columns],
                                            title=f"fingerprint {a['fingerprint']}",
                                        )
                                        for r, a in zip(rows, members, strict=True)
                                    ]
                                ),
                            ],
                            className="table alerts",
                        ),
                        className="scroll",
                    ),
                ],
                open=bool(counts["firing"] or counts["pending"]),
                className="alert-group",
            )
        )
    return out


def _cell(column: str, value: Any) -> Any:
    if column == "link" and value:
        return html.A("evidence", href=value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _table(id_: str, rows: list[dict[str, Any]], limit: int = 200) -> html.Div:
    """A plain table (newest first, at most ``limit`` rows shown, and how many there are)."""
    if not rows:
        return html.Div(html.P("none", className="muted"), id=id_)
    columns = list(rows[0])
    return html.Div(
        [
            html.Table(
                [
                    html.Thead(html.Tr([html.Th(c) for c in columns])),
                    html.Tbody([html.Tr([html.Td(_cell(c, r[c])) for c in columns]) for r in rows[:limit]]),
                ],
                className="table",
            ),
            html.P(f"{len(rows)} rows, the first {limit} shown", className="muted") if len(rows) > limit else None,
        ],
        id=id_,
        className="scroll",  # a wide table scrolls in its box instead of widening the page
    )


def _rule_row(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored rule as the table shows it: its fields as the rules engine reads them, defaults
    included (``alerts.rules.Rule``), its condition in words ('value > 0.3', 'drifted'). One
    stored by an older version that no longer parses is shown as stored."""
    row = {"name": stored["name"], "source": stored["source"]}
    try:
        rule = parse_rule({**stored["definition"], "name": stored["name"]})
    except RuleError:
        definition = stored["definition"]
        return row | {"metric": definition.get("metric"), "condition": str(definition.get("condition"))}
    return row | {
        "metric": rule.metric,
        "model": rule.model,
        "condition": rule.condition.describe(),
        "for": rule.for_,
        "severity": rule.severity.value,
        "receivers": ", ".join(rule.receivers),
        "retrain": rule.retrain.receiver if rule.retrain else "",
    }


def _filter(id_: str, options: list[str]) -> dcc.Dropdown:
    """A filter of the alert groups: several values may be chosen, none shows all."""
    return dcc.Dropdown(id=id_, options=options, value=[], multi=True, placeholder="all", style={"width": "14rem"})


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matchers(text: str) -> list[Matcher]:
    """'feature=age, segment_value=~EU|US' as matchers (=, !=, =~, !~); ValueError naming the
    part it cannot read."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _MATCHER.match(part)
        if m is None:
            raise ValueError(f"{part!r} is not a matcher like name=value, name!=value, name=~regex or name!~regex")
        out.append(Matcher(name=m.group(1), op=m.group(2), value=m.group(3)))
    return out


def layout(ctx: ServiceContext) -> html.Div:
    data = dashboard_data.alerts_page(ctx)
    alerts = data["alerts"]
    firing = [a for a in alerts if a["state"] == "firing"]
    # any registered model: a silence may be made before its alerts exist (a planned deployment)
    models = sorted(set(data["models"]) | {a["model"] for a in alerts})
    rules = [_rule_row(r) for r in data["rules"]["rules"]]
    return html.Div(
        [
            html.H2(f"Alerts — {len(firing)} firing, {sum(a['state'] == 'pending' for a in alerts)} pending"),
            dcc.Graph(id="alert-timeline", figure=timeline(data["history"])),
            _alert_filters(alerts, models),
            html.Div(alert_groups(alerts), id="alerts-table"),
            html.Div(
                [*_silence_form(firing, models, rules), *_acknowledge_form(firing)],
                className="actions",
            ),
            *_records(data, rules),
        ]
    )


def _alert_filters(alerts: list[dict[str, Any]], models: list[str]) -> html.Div:
    severities = sorted({a["labels"].get("severity", "") for a in alerts} - {""})
    return html.Div(
        [
            html.Label(["state ", _filter("alert-state", ["firing", "pending", "resolved"])]),
            html.Label(["severity ", _filter("alert-severity", severities)]),
            html.Label(["model ", _filter("alert-model", models)]),
        ],
        className="controls",
    )


def _silence_form(firing: list[dict[str, Any]], models: list[str], rules: list[dict[str, Any]]) -> list[Any]:
    """A silence of a model's alerts (of one rule, more matchers optional) for some hours; the
    model of the first firing alert chosen."""
    default_model = firing[0]["model"] if firing else (models[0] if models else None)
    return [
        html.H3("Silence"),
        html.Label(
            ["model ", dcc.Dropdown(id="silence-model", options=models, value=default_model, style={"width": "16rem"})]
        ),
        html.Label(
            [
                "rule (optional) ",
                dcc.Dropdown(id="silence-rule", options=sorted(r["name"] for r in rules), style={"width": "16rem"}),
            ]
        ),
        html.Label(
            # min and step agree, so that the default is a value the input itself accepts
            ["for hours ", dcc.Input(id="silence-hours", type="number", value=2, min=0.5, step=0.5)]
        ),
        html.Label(
            [
                "more matchers (optional) ",
                dcc.Input(
                    id="silence-matchers",
                    type="text",
                    value="",
                    placeholder="feature=age, segment_value=~EU|US",
                    style={"width": "20rem"},
                ),
            ]
        ),
        html.Label(["by ", dcc.Input(id="silence-by", type="text", value="", placeholder="your name")]),
        html.Label(["comment ", dcc.Input(id="silence-comment", type="text", value="", placeholder="why")]),
        html.Button("Silence", id="silence-button", n_clicks=0),
        html.Div(id="silence-result"),
    ]


def _acknowledge_form(firing: list[dict[str, Any]]) -> list[Any]:
    options = [
        {"label": f"{a['rule']} · {a['model']} · {a['labels'].get('feature', '')}", "value": a["fingerprint"]}
        for a in firing
    ]
    return [
        html.H3("Acknowledge"),
        dcc.Dropdown(id="ack-alert", options=options, style={"width": "30rem"}),
        html.Label(["by ", dcc.Input(id="ack-by", type="text", placeholder="your name")]),
        html.Button("Acknowledge", id="ack-button", n_clicks=0),
        html.Div(id="ack-result"),
    ]


def _records(data: dict[str, Any], rules: list[dict[str, Any]]) -> list[Any]:
    """The silences, the rules (and the rules file's errors), the retraining requests and the
    webhook deliveries, as tables."""
    deliveries = [{k: (_fmt(v) if isinstance(v, datetime) else v) for k, v in d.items()} for d in data["deliveries"]]
    triggers = [
        {
            "at": _fmt(t["created_at"]),
            "model": t["model"],
            "version": t["version"],
            "rule": t["rule"],
            "reason": t["reason"],
            "delivery": t["delivery_status"],
            "attempts": t["attempts"],
            "message_id": t["message_id"],
        }
        for t in data["triggers"]
    ]
    silences = [
        {
            "id": s["id"],
            "matchers": ", ".join(f"{m['name']}{m['op']}{m['value']}" for m in s["matchers"]),
            "starts": _fmt(s["starts_at"]),
            "ends": _fmt(s["ends_at"]),
            "by": s["created_by"],
            "comment": s["comment"],
        }
        for s in data["silences"]
    ]
    file_errors = [f"rules file: {e}" for f in data["rules"]["file_errors"] for e in f["errors"]]
    return [
        html.H3("Silences"),
        _table("silences-table", silences),
        html.H3("Rules"),
        html.Div([html.P(e, className="error") for e in file_errors]),
        _table("rules-table", rules),
        html.H3("Retraining triggers"),
        _table("triggers-table", triggers),
        html.H3("Webhook deliveries"),
        _table("deliveries-table", deliveries),
    ]


def register(app: Dash, ctx: ServiceContext) -> None:
    @app.callback(
        Output("alerts-table", "children"),
        Input("alert-state", "value"),
        Input("alert-severity", "value"),
        Input("alert-model", "value"),
        prevent_initial_call=True,
    )
    def filter_alerts(states: list[str] | None, severities: list[str] | None, models: list[str] | None) -> Any:
        found: list[dict[str, Any]] = [dict(a) for a in alert_ops.list_alerts(ctx, None, None)]
        return alert_groups(found, states, severities, models)

    @app.callback(
        Output("silence-result", "children"),
        Input("silence-button", "n_clicks"),
        State("silence-model", "value"),
        State("silence-rule", "value"),
        State("silence-hours", "value"),
        State("silence-by", "value"),
        State("silence-comment", "value"),
        State("silence-matchers", "value"),
        prevent_initial_call=True,
    )
    def silence(
        _: int, model: str | None, rule: str | None, hours: float | None, by: str, comment: str, more: str | None
    ) -> Any:
        if not auth.principal().allows(Scope.admin):
            return html.P("Silencing needs a key with the admin scope.", className="error")
        if not model or not by or not comment or not hours:
            return html.P("Give the model, how long, your name and a comment.", className="error")
        matchers = [Matcher(name="model", value=model)] + ([Matcher(name="alertname", value=rule)] if rule else [])
        try:
            matchers += parse_matchers(more or "")
            spec = SilenceSpec(
                matchers=matchers,
                ends_at=datetime.now(UTC) + timedelta(hours=float(hours)),
                created_by=by,
                comment=comment,
            )
            made = alert_ops.create_silence(ctx, spec, auth.actor())
        except (MonitorError, ValueError) as exc:
            return html.P(str(exc), className="error")
        return html.P(f"Silence {made['id']} created until {made['ends_at']:%Y-%m-%d %H:%M} UTC.", id="silence-created")

    @app.callback(
        Output("ack-result", "children"),
        Input("ack-button", "n_clicks"),
        State("ack-alert", "value"),
        State("ack-by", "value"),
        prevent_initial_call=True,
    )
    def acknowledge(_: int, fingerprint: str | None, by: str | None) -> Any:
        if not auth.principal().allows(Scope.admin):
            return html.P("Acknowledging needs a key with the admin scope.", className="error")
        if not fingerprint or not by:
            return html.P("Choose an alert and give your name.", className="error")
        try:
            alert_ops.acknowledge(ctx, fingerprint, by, "", auth.actor())
        except MonitorError as exc:
            return html.P(exc.message, className="error")
        return html.P("Acknowledged.", id="ack-done")
