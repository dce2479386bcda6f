"""Plotly figures from metric points: pure functions of plain data, tested without a browser.

Every figure shows the sample size its numbers rest on (in the hover text, and in titles where
one number stands for the figure).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, TypeAlias

import numpy as np
import plotly.graph_objects as go

from monitor.metrics.importance import importance_values
from monitor.metrics.points import drift_severity
from monitor.services.read_models.dashboard_data import page_count, page_start, rank_features

Point = dict[str, Any]

OK, WARN, BAD = "#2ca02c", "#ff7f0e", "#d62728"
# Markers are SVG nodes, each drawn on its own: beyond this many points a series is a plain line.
MARKERS_UP_TO = 48


def _mode(n: int) -> str:
    return "lines+markers" if n <= MARKERS_UP_TO else "lines"


def _scatter(**kw: Any) -> dict[str, Any]:
    return {"type": "scatter", **kw}


# plotly ships no type information: go.Figure is Any to the type checker
Figure: TypeAlias = "go.Figure | dict[str, Any]"


def _figure(traces: list[dict[str, Any]], layout: dict[str, Any] | None = None) -> dict[str, Any]:
    """A figure as the plain dict Plotly.js reads: plotly's Figure validates and deep-copies every
    property, which cost a few tenths of a second on a month of windows."""
    return {"data": traces, "layout": layout or {}}


def _threshold_line(y: float) -> tuple[dict[str, Any], dict[str, Any]]:
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y, "line": {"dash": "dot", "color": BAD}}
    note = {
        "text": "threshold",
        "xref": "paper",
        "x": 1,
        "y": y,
        "xanchor": "right",
        "yanchor": "bottom",
        "showarrow": False,
    }
    return shape, note


def _empty(title: str, why: str) -> dict[str, Any]:
    """A chart's box saying why it has nothing to draw (a plain dict: a ``go.Figure`` took 7 ms)."""
    return _figure(
        [],
        {
            "title": title,
            "annotations": [{"text": why, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": 260,
            "margin": {"l": 40, "r": 20, "t": 50, "b": 30},
        },
    )


# Plotly's default for date and linear axes ("hide past div") measures every tick label's box to
# hide those crossing the chart's edge: a fifth of the time a page of ten charts took to draw.
# The margins keep tick labels inside the chart, so none is hidden and none is measured.
TICK_LABELS = {"ticklabeloverflow": "allow"}


def _layout(fig: Figure, title: str, height: int = 300) -> Figure:
    common = {"title": title, "height": height, "margin": {"l": 50, "r": 20, "t": 50, "b": 40}}
    common["legend"] = {"orientation": "h"}
    if isinstance(fig, dict):
        layout = fig["layout"]
        layout.update(common)
        for axis in {"xaxis", "yaxis", *(k for k in layout if k.startswith(("xaxis", "yaxis")))}:
            layout.setdefault(axis, {}).update(TICK_LABELS)
    else:
        fig.update_layout(**common).update_xaxes(**TICK_LABELS).update_yaxes(**TICK_LABELS)
    return fig


# Time axes never tick finer than a minute: one window alone gave ticks like 00:59:59.9996.
TIME_TICKS = {
    "type": "date",
    **TICK_LABELS,
    "tickformatstops": [
        {"dtickrange": [None, 60_000], "value": "%H:%M\n%b %d, %Y"},
        {"dtickrange": [60_000, 86_400_000], "value": "%H:%M\n%b %d"},
    ],
}
MIN_SPAN = timedelta(hours=2)  # the shortest time axis: one window still has hours either side


def time_axis(start: datetime, end: datetime) -> dict[str, Any]:
    """A time axis over [start, end] (at least ``MIN_SPAN``, widened backwards)."""
    start = min(start, end - MIN_SPAN)
    return {**TIME_TICKS, "range": [start.isoformat(), end.isoformat()]}


def with_time_range(fig: Figure, start: datetime, end: datetime) -> Figure:
    """The time axis showing [start, end], however few windows the figure holds."""
    traces = fig["data"] if isinstance(fig, dict) else fig.data
    if not traces:
        return fig
    axis = time_axis(start, end)
    if any(t["type"] == "heatmap" for t in traces):  # its x is naive UTC (clicks hand it back)
        axis["range"] = [datetime.fromisoformat(x).replace(tzinfo=None).isoformat() for x in axis["range"]]
    if isinstance(fig, dict):
        fig["layout"].setdefault("xaxis", {}).update(axis)
        return fig
    return fig.update_xaxes(**axis)


def shown_start(points: list[Point], start: datetime) -> datetime:
    """Where a page's time axes start: the range's start, or the first window in it where the
    data begins later (a week's range over two days of data left 5/7 of every chart empty)."""
    first = min((p["window_start"] for p in points if p.get("window_start") is not None), default=None)
    return max(start, first) if first is not None else start


def _gapped(ps: list[Point]) -> list[Point]:
    """The points in time order, with an empty point wherever windows are missing (more than 1.5
    steps from the one before): a line breaks there instead of being drawn straight across hours
    without data."""
    ps = sorted(ps, key=lambda p: p["window_end"])
    steps = [b["window_end"] - a["window_end"] for a, b in pairwise(ps)]
    positive = [s for s in steps if s > timedelta(0)]
    if not positive:
        return ps
    step = min(positive)
    out = ps[:1]
    for before, p in pairwise(ps):
        if p["window_end"] - before["window_end"] > step * 1.5:
            out.append({"window_end": before["window_end"] + step, "value": None, "sample_size": None, "details": {}})
        out.append(p)
    return out


# Features a heatmap page shows: a wide model's thousand rows would be one unreadable wall.
HEATMAP_ROWS = 40


def ranked_features(points: list[Point], match: str = "") -> list[str]:
    """The features with drift points, most drifted first (``dashboard_data.rank_features``)."""
    worst: dict[str, float] = {}
    drifted: dict[str, int] = {}
    for p in points:
        if p["metric"] != "feature_drift":
            continue
        f = p["labels"]["feature"]
        sev = drift_severity(p)
        worst[f] = max(worst.get(f, 0.0), 0.0 if sev != sev else sev)
        drifted[f] = drifted.get(f, 0) + bool(p["drifted"])
    return rank_features(worst, drifted, match)


# A heatmap cell's colour value: UNDECIDED (grey) for a window too small to decide, [0, 1) for
# "no drift" (greens, darker as the score nears the threshold; a score past it that was not
# significant stays green), [1, 3] for "drifted" (reds, darker as it passes the threshold further).
UNDECIDED = -1.0
DECISION_COLOURS = [
    [0.0, "#cfd8dc"],
    [0.2499, "#cfd8dc"],
    [0.25, "#f1f8e9"],
    [0.4999, "#81c784"],
    [0.5, "#ef9a9a"],
    [1.0, "#b71c1c"],
]


def cell_colour(p: Point) -> float:
    """Where a drift point's cell sits on ``DECISION_COLOURS``: its decision first, its strength
    (``drift_severity``) within it."""
    if p["drifted"] is None:
        return UNDECIDED
    sev = drift_severity(p)
    sev = 0.0 if sev != sev else sev
    return float(min(max(sev, 1.0), 3.0)) if p["drifted"] else float(min(sev, 0.99))


def decision_words(p: Point) -> str:
    """The decision and why, as the point's details give it."""
    d = p.get("details") or {}
    if p["drifted"] is None:
        size = d.get("min_sample_size")
        return "not decided: too few rows" + (f" (fewer than {size:,})" if isinstance(size, int) else "")
    if "significant" not in d:
        return "DRIFTED" if p["drifted"] else "no drift"
    p_value = d.get("p_value")
    said = f"p = {p_value:.2g}" if isinstance(p_value, (int, float)) else "p n/a"
    significance = (
        f"significant ({said})" if d["significant"] else f"not significant ({said}, after correction across features)"
    )
    materiality = "material" if d.get("material") else "not material (effect under its threshold)"
    return f"{'DRIFTED' if p['drifted'] else 'no drift'}: {significance}, {materiality}"


def heatmap_pages(n_features: int, per_page: int = HEATMAP_ROWS) -> int:
    return page_count(n_features, per_page)


def drift_heatmap(
    points: list[Point],
    match: str = "",
    page: int = 1,
    per_page: int = HEATMAP_ROWS,
    ranked: list[str] | None = None,
) -> dict[str, Any]:
    """Features by windows, coloured by the service's decision and its strength (``cell_colour``:
    red only where the feature was decided drifted, green where it was decided not, grey where the
    window was too small to decide), the most drifted at the top, ``per_page`` at a time
    (``match`` filters by name); the hover says the decision and why, with the test, score,
    threshold and both sample sizes; a click's x and y (window end, feature) open the
    distribution. ``ranked``: ``ranked_features(points, match)``, when the caller has it."""
    ranked = ranked_features(points, match) if ranked is None else ranked
    if not ranked:
        why = (
            f"no feature name holds {match!r}"
            if match.strip() and any(p["metric"] == "feature_drift" for p in points)
            else "no drift computed in this range yet"
        )
        return _empty("Feature drift", why)
    first = page_start(len(ranked), page, per_page)
    feats = ranked[first : first + per_page]
    shown = set(feats)
    points = [p for p in points if p["metric"] == "feature_drift" and p["labels"]["feature"] in shown]
    # naive UTC: plotly hands clicked datetimes back without a zone
    ends = sorted({p["window_end"] for p in points})
    col = {e: i for i, e in enumerate(ends)}
    row = {f: i for i, f in enumerate(feats)}
    z = np.full((len(feats), len(ends)), np.nan)
    text = np.full((len(feats), len(ends)), "", dtype=object)
    spans: dict[tuple[datetime, datetime], str] = {}  # a window's words, formatted once for its column
    for p in points:
        i, j = row[p["labels"]["feature"]], col[p["window_end"]]
        z[i, j] = cell_colour(p)
        value = "n/a" if p["value"] is None else f"{p['value']:.4g}"
        threshold = "n/a" if p["threshold"] is None else f"{p['threshold']:.4g}"
        window = (p["window_start"], p["window_end"])
        span = spans.get(window)
        if span is None:
            span = spans[window] = f"{window[0]:%Y-%m-%d %H:%M} to {window[1]:%H:%M}"
        text[i, j] = (
            f"{p['labels']['feature']}<br>{span}<br>"
            f"{p['labels'].get('method', '')}: {value} (threshold {threshold})<br>"
            f"{decision_words(p)}<br>"
            f"n current = {p['sample_size']:,}, n reference = {p['reference_size'] or 0:,}"
        )
    heatmap = {
        "type": "heatmap",
        "z": [[None if v != v else v for v in r] for r in z.tolist()],  # NaN is no JSON: an empty cell
        "x": [e.replace(tzinfo=None) for e in ends],
        "y": feats,
        "text": text.tolist(),
        "hovertemplate": "%{text}<extra></extra>",
        "zmin": UNDECIDED,
        "zmax": 3,
        "colorscale": DECISION_COLOURS,
        "colorbar": {
            "title": "decision",
            "tickvals": [UNDECIDED, 0, 0.5, 1, 2, 3],
            "ticktext": [
                "too few rows",
                "no drift",
                "no drift, half the threshold",
                "drifted, at the threshold",
                "drifted, twice it",
                "drifted, 3 times or more",
            ],
        },
        "xgap": 1,
        "ygap": 1,
    }
    rest = len(ranked) - len(feats)
    which = f"{len(ranked):,} features" + (f" matching {match.strip()!r}" if match.strip() else "")
    title = f"Feature drift — {which}, most drifted first"
    if rest:
        title += f"; {first + 1:,} to {first + len(feats):,} shown, {rest:,} more on other pages"
    fig = _figure([heatmap], {"yaxis": {"autorange": "reversed"}})  # the first (most drifted) at the top
    return _layout(fig, title + " — click a cell for its distributions", height=max(300, 28 * len(feats) + 120))


def distribution(dist: dict[str, Any], point: Point | None, feature: str) -> go.Figure:
    """Reference against current for one feature in one window (shares, so sizes compare)."""
    n_ref, n_cur = dist["n_reference"], dist["n_current"]
    names = (f"reference (n = {n_ref:,})", f"current (n = {n_cur:,})")
    colours = ("#1f77b4", "#ff7f0e")
    if dist["kind"] == "categorical":
        bars = [
            go.Bar(x=dist["labels"], y=dist[side], name=name, marker_color=colour, opacity=0.7)
            for side, name, colour in zip(("reference", "current"), names, colours, strict=True)
        ]
        fig = go.Figure(bars).update_layout(barmode="group")
    else:
        # A histogram on a numeric axis, each bar as wide as its bin: the bins are the reference's
        # quantiles, of very unequal widths, and as categories their labels overlapped.
        b = dist["bins"]
        centres = [(b[i] + b[i + 1]) / 2 for i in range(len(b) - 1)]
        widths = [b[i + 1] - b[i] for i in range(len(b) - 1)]
        spans = [f"{b[i]:.4g} to {b[i + 1]:.4g}" for i in range(len(b) - 1)]
        bars = [
            go.Bar(
                x=centres,
                y=dist[side],
                width=widths,
                name=name,
                marker={"color": colour, "line": {"width": 0}},
                opacity=0.55,
                customdata=spans,
                hovertemplate="%{customdata}: %{y:.1%}<extra>" + side + "</extra>",
            )
            for side, name, colour in zip(("reference", "current"), names, colours, strict=True)
        ]
        fig = go.Figure(bars).update_layout(barmode="overlay", xaxis={"title": feature})
    fig.update_layout(yaxis={"title": "share", "tickformat": ".0%"})
    test = ""
    if point is not None:
        verdict = {True: "DRIFTED", False: "no drift", None: "too few rows to decide"}[point["drifted"]]
        method = point["labels"].get("method", "")
        details = point.get("details") or {}
        p_value = f", p = {details['p_value']:.3g}" if isinstance(details.get("p_value"), float) else ""
        test = f" — {method} {point['value']:.4g}, threshold {point['threshold']:.4g}{p_value}: {verdict}"
    return _layout(fig, f"{feature}{test}", height=340)


# Lines a chart of one line per feature draws: a 1,000-feature model's thousand lines were
# unreadable and slow to draw; the highest are the ones to look at.
MAX_LINES = 12


def series(
    points: list[Point],
    metric: str,
    title: str,
    *,
    by: str | None = None,
    percent: bool = False,
    of: int | None = None,
) -> Figure:
    """One line per label value (``by``), with each point's sample size in the hover; at most
    ``MAX_LINES``, those reaching the highest values, the title saying how many there are in all
    (``of``: when ``points`` hold only the highest already)."""
    chosen = [p for p in points if p["metric"] == metric]
    if not chosen:
        return _empty(title, f"no {metric} in this range")
    lines: dict[str, list[Point]] = defaultdict(list)
    for p in chosen:
        lines[p["labels"].get(by, metric) if by else metric].append(p)
    total = max(of or 0, len(lines))
    if len(lines) > MAX_LINES:

        def peak(name: str) -> float:
            return max((p["value"] for p in lines[name] if p["value"] is not None), default=float("-inf"))

        kept = sorted(lines, key=lambda name: (-peak(name), name))[:MAX_LINES]
        lines = {name: lines[name] for name in kept}
        chosen = [p for ps in lines.values() for p in ps]
    if total > len(lines):
        title = f"{title} — the {len(lines)} highest of {total:,} {by or 'series'}s"
    traces = []
    layout: dict[str, Any] = {}
    for name, ps in sorted(lines.items()):
        traces.append(_line(ps, name, f"{name}: %{{y:.4g}}"))
        thresholds = {p["threshold"] for p in ps if p["threshold"] is not None}
        if len(thresholds) == 1 and len(lines) == 1:
            shape, note = _threshold_line(thresholds.pop())
            layout.update(shapes=[shape], annotations=[note])
    if percent:
        layout["yaxis"] = percent_axis([p["value"] for p in chosen])
    fig = _figure(traces, layout)
    return _layout(fig, title)


def percent_axis(values: list[float | None]) -> dict[str, Any]:
    """A share's axis: from 0 (a share is never negative: autorange drew an all-zero series from
    -100 %) to a little above the largest value, with as many decimals as its ticks need to differ
    (a whole-percent format wrote '0 %' five times over a range below one percent)."""
    top = max((v for v in values if v is not None and v == v), default=0.0)
    # a share never passes 1: an axis to 1.15 (or, autoranged, ~1.9) suggested it might
    return {"tickformat": ".2~%", "range": [0, min(max(top * 1.15, 0.01), 1.02)], "automargin": True}


def _overall(points: list[Point], metric: str) -> list[Point]:
    """The metric's points for the model as a whole (no class, no macro average)."""
    return [p for p in points if p["metric"] == metric and "class" not in p["labels"] and "average" not in p["labels"]]


def _line(ps: list[Point], name: str, hover: str = "%{y:.4g}", **kw: Any) -> dict[str, Any]:
    """The points' values over their window ends, broken where windows are missing, each hover
    with its sample size. ``text`` in ``kw``: one per point of ``ps``."""
    drawn = _gapped(ps)
    if "text" in kw:
        by_end = {p["window_end"]: t for p, t in zip(ps, kw["text"], strict=True)}
        kw["text"] = [by_end.get(p["window_end"], "") for p in drawn]
    return _scatter(
        x=[p["window_end"] for p in drawn],
        y=[p["value"] for p in drawn],
        mode=_mode(len(ps)),
        name=name,
        customdata=[[p["sample_size"]] for p in drawn],
        hovertemplate=f"{hover}<br>n = %{{customdata[0]:,}}<extra></extra>",
        **kw,
    )


def _marks(ps: list[Point], name: str) -> list[dict[str, Any]]:
    """Red markers on the windows ``ps`` (those decided drifted or violated); none when empty."""
    if not ps:
        return []
    x, y = [p["window_end"] for p in ps], [p["value"] for p in ps]
    return [_scatter(x=x, y=y, mode="markers", name=name, marker={"color": BAD, "size": 9}, hoverinfo="skip")]


def _band(ps: list[Point], name: str, color: str, yaxis: str = "y") -> list[dict[str, Any]]:
    """A shaded band from each point's ``details`` lower to upper: two traces, the upper one
    filled down to the lower (broken where windows are missing)."""
    ps = _gapped(ps)
    x = [p["window_end"] for p in ps]
    lower = [(p.get("details") or {}).get("lower") for p in ps]
    upper = [(p.get("details") or {}).get("upper") for p in ps]
    edge = {"width": 0}
    return [
        _scatter(x=x, y=lower, mode="lines", line=edge, yaxis=yaxis, showlegend=False, hoverinfo="skip", name=name),
        _scatter(
            x=x,
            y=upper,
            mode="lines",
            line=edge,
            fill="tonexty",
            fillcolor=color,
            yaxis=yaxis,
            name=name,
            hoverinfo="skip",
        ),
    ]


def quality(points: list[Point], metric: str) -> Figure:
    """The quality metric over time: realized against labels where they have arrived, estimated
    from every prediction's scores (with its 95 % band) before they do; label coverage beside it
    (second axis), and concept-drift detections marked on the time axis."""
    q = _overall(points, metric)
    estimated = _overall(points, "estimated." + metric.removeprefix("quality."))
    cov = [p for p in points if p["metric"] == "quality.label_coverage"]
    if not q and not cov and not estimated:
        return _empty("Quality against labels", "no labelled predictions in this range yet")
    name = metric.removeprefix("quality.")
    traces = []
    if estimated:
        traces += _band(estimated, "95 % band of the estimate", "rgba(31, 119, 180, 0.18)")
        traces.append(
            _line(
                estimated,
                f"{name}, estimated",
                "estimated %{y:.4g} from the scores",
                line={"dash": "dash", "color": "#1f77b4"},
            )
        )
    traces += [
        _line(
            q,
            f"{name}, realized" if estimated else name,
            "%{y:.4g} against the labels",
            line={"color": "#2ca02c"} if estimated else {},
        ),
        _line(
            cov,
            "label coverage",
            "coverage %{y:.0%} of the predictions",
            yaxis="y2",
            line={"dash": "dot", "color": "#7f7f7f"},
        ),
    ]
    marks = concept_detections(points)
    if marks:
        # one trace of markers, not a shape per detection: a month of windows stays cheap to draw
        traces.append(
            _scatter(
                x=[d["at"] for d in marks],
                y=[1.0] * len(marks),
                yaxis="y2",
                mode="markers",
                name="concept drift detected",
                marker={"symbol": "triangle-down", "size": 12, "color": BAD},
                cliponaxis=False,  # at the top of the axis: clipped, half of each marker was cut off
                text=[d["what"] for d in marks],
                hovertemplate="%{text} detected %{x}<extra></extra>",
            )
        )
    fig = _figure(
        traces,
        {
            "yaxis": {"automargin": True},
            # its own margin, the title set off from the ticks: it was drawn over the tick labels
            "yaxis2": {
                "overlaying": "y",
                "side": "right",
                "tickformat": ".0%",
                "range": [0, 1.04],
                "tickvals": [0, 0.25, 0.5, 0.75, 1],
                "title": {"text": "coverage", "standoff": 6},
                "automargin": True,
            },
        },
    )
    title = "Quality against labels, with label coverage and concept-drift detections"
    if estimated:
        title = "Quality: estimated from the scores before labels, realized against them"
    return _layout(fig, title)


def multivariate_drift(points: list[Point]) -> Figure:
    """The reconstruction error over time inside the band the reference's own variability gives;
    windows outside it marked drifted."""
    ps = _overall(points, "multivariate_drift")
    title = "Multivariate drift: reconstruction error of the rows under the reference's components"
    if not ps:
        return _empty(title, "no reconstruction model (fewer than two features, or no reference rows)")
    drifted = [p for p in ps if p["drifted"]]
    traces = [
        *_band(ps, "reference band", "rgba(127, 127, 127, 0.18)"),
        _line(ps, "reconstruction error"),
    ]
    traces += _marks(drifted, "drifted")
    return _layout(_figure(traces, {"yaxis": {"automargin": True}}), title)


# The fairness measures a chart shows per protected attribute (the rest are in the API).
FAIRNESS_SHOWN = {
    "demographic_parity_ratio": ("demographic parity ratio", "rgba(31, 119, 180, 0.15)"),
    "equalized_odds_difference": ("equalized odds difference", "rgba(148, 103, 189, 0.15)"),
}


def fairness(points: list[Point], ratio_threshold: float = 0.8) -> Figure:
    """Per protected attribute, the demographic parity ratio and the equalized odds difference
    over time, each in its interval (90 %: each side the one-sided 5 % a violation is decided at),
    with the four-fifths line; windows decided violating marked."""
    title = (
        "Fairness across protected attributes (Fairlearn's measures, 90 % bands: violated when a band is past the line)"
    )
    series: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for p in points:
        measure = p["metric"].removeprefix("fairness.")
        if measure in FAIRNESS_SHOWN and "attribute" in p["labels"]:
            series[(p["labels"]["attribute"], measure)].append(p)
    if not series:
        return _empty(title, "no protected attributes (protected_attributes in the monitoring settings)")
    traces: list[dict[str, Any]] = []
    for (attribute, measure), ps in sorted(series.items()):
        label, band = FAIRNESS_SHOWN[measure]
        traces += _band(ps, f"{attribute}: {label}, 90 %", band)
        traces.append(_line(ps, f"{attribute}: {label}", "%{y:.3f}"))
        traces += _marks([p for p in ps if p["drifted"]], f"{attribute}: {label} violated")
    shape, note = _threshold_line(ratio_threshold)
    layout = {"yaxis": {"range": [0, 1.05], "automargin": True}, "shapes": [shape], "annotations": [note]}
    return _layout(_figure(traces, layout), title)


def comparison(points: list[Point], champion: str, challenger: str) -> Figure:
    """The challenger's accuracy minus the champion's, window by window, in its 95 % band; the
    zero line; windows where the difference is significant marked."""
    title = f"Accuracy of v{challenger} minus v{champion} (95 % band; paired for a shadow)"
    ps = [p for p in points if p["metric"] == "comparison.accuracy"]
    if not ps:
        return _empty(title, "no labelled predictions of both versions in this range yet")
    traces = [
        *_band(ps, "95 % band", "rgba(31, 119, 180, 0.18)"),
        _line(
            ps,
            "difference",
            "%{y:+.4f}<br>p = %{text}",
            text=[f"{(p.get('details') or {}).get('p_value', float('nan')):.3g}" for p in ps],
        ),
        *_marks([p for p in ps if p["drifted"]], "significant"),
    ]
    zero = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"color": "#7f7f7f"}}
    return _layout(_figure(traces, {"yaxis": {"automargin": True}, "shapes": [zero]}), title)


def versions_side_by_side(sides: dict[str, list[Point]], metric: str, title: str) -> Figure:
    """One line per version of the same metric."""
    traces = []
    for version, ps in sides.items():
        chosen = [p for p in ps if p["metric"] == metric and not p["labels"]]
        if chosen:
            traces.append(_line(chosen, f"v{version}", f"v{version}: %{{y:.4g}}"))
    if not traces:
        return _empty(title, f"no {metric} of either version in this range")
    return _layout(_figure(traces, {"yaxis": {"automargin": True}}), title)


def concept_detections(points: list[Point]) -> list[dict[str, Any]]:
    """When concept drift was detected: the error-stream detector's changes (each window lists
    those inside it; sliding windows list one again, shown once), and for the other tests the
    first window of each run of drifted windows."""
    out = []
    by_metric: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        if p["metric"].startswith("concept_drift."):
            by_metric[p["metric"]].append(p)
    for metric, ps in sorted(by_metric.items()):
        what = metric.removeprefix("concept_drift.")
        ps.sort(key=lambda p: p["window_end"])
        seen: set[Any] = set()
        before = False
        for p in ps:
            details = p.get("details") or {}
            found = [d.get("at") for d in details.get("detections") or [] if isinstance(d, dict)]
            if not found and details.get("detected_at"):
                found = [details["detected_at"]]
            if p["drifted"] and found:
                for detected in found:
                    at = datetime.fromisoformat(detected) if isinstance(detected, str) else detected
                    if at not in seen:
                        seen.add(at)
                        out.append({"at": at, "what": what, "value": p["value"]})
            elif p["drifted"] and not before:
                out.append({"at": p["window_end"], "what": what, "value": p["value"]})
            before = bool(p["drifted"])
    return sorted(out, key=lambda d: d["at"])


def latency(points: list[Point]) -> Figure:
    names = ["latency.p50", "latency.p90", "latency.p95", "latency.p99"]
    if not any(p["metric"] in names for p in points):
        return _empty("Latency", "no latency recorded in this range")
    traces = []
    for name in names:
        ps = [p for p in points if p["metric"] == name]
        if ps:
            traces.append(_line(ps, name.removeprefix("latency."), "%{y:.1f} ms"))
    tp = [p for p in points if p["metric"] == "throughput.per_minute"]
    if tp:
        traces.append(
            _line(tp, "predictions / min", "%{y:.1f} / min", yaxis="y2", line={"dash": "dot", "color": "#7f7f7f"})
        )
    # each axis title set off from its ticks, with room made for it: it was drawn over them
    fig = _figure(
        traces,
        {
            "yaxis": {"title": {"text": "ms", "standoff": 6}, "automargin": True, "rangemode": "tozero"},
            "yaxis2": {
                "overlaying": "y",
                "side": "right",
                "title": {"text": "predictions / min", "standoff": 6},
                "automargin": True,
                "rangemode": "tozero",
            },
        },
    )
    return _layout(fig, "Latency percentiles and throughput")


def volume(hours: list[tuple[datetime, int]]) -> go.Figure:
    """Predictions an hour, as a sparkline with its scale said: the busiest hour's count above it
    (without a scale one prediction drew as tall a bar as a million)."""
    peak = max((n for _, n in hours), default=0)
    fig = go.Figure(
        go.Bar(
            x=[h for h, _ in hours],
            y=[n for _, n in hours],
            marker_color="#1f77b4",
            hovertemplate="%{x|%b %d %H:%M}: %{y:,} predictions<extra></extra>",
        )
    )
    fig.update_layout(
        height=90,
        margin={"l": 10, "r": 10, "t": 18, "b": 20},
        xaxis={"visible": False},
        yaxis={"visible": False, "range": [0, max(peak, 1)]},
        annotations=[
            {
                "text": f"busiest hour {peak:,} predictions",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1,
                "yanchor": "bottom",
                "xanchor": "left",
                "showarrow": False,
                "font": {"size": 10, "color": "#757575"},
            }
        ],
    )
    return fig


# Features the importance chart shows: the most important of the reference and of the window.
IMPORTANCE_ROWS = 20


def _latest(points: list[Point], metric: str) -> list[Point]:
    """The points of ``metric`` in its newest window (all predictions: no segment label)."""
    chosen = [p for p in points if p["metric"] == metric and "segment" not in p["labels"]]
    if not chosen:
        return []
    end = max(p["window_end"] for p in chosen)
    return [p for p in chosen if p["window_end"] == end]


def importance(reference: dict[str, Any] | None, points: list[Point]) -> Figure:
    """Each feature's share of the model's importance on the reference (its mean absolute
    attribution, or the estimate made at its upload, with the estimate's range) beside its share
    in the newest window (mean absolute attribution logged with the predictions), the most
    important first; the title gives that window's NDCG (attribution drift below 0.90)."""
    title = "Feature importance"
    ref = importance_values(reference)
    window = {
        p["labels"]["feature"]: float(p["value"]) for p in _latest(points, "attribution.importance") if p["value"]
    }
    if not ref and not window:
        return _empty(
            title,
            "the reference has no importances (attributions, or an estimate from 1,000 rows of a regression "
            "or binary model) and no window has attributions",
        )
    ref_total, win_total = sum(max(v, 0.0) for v in ref.values()), sum(window.values())
    ranked = sorted(
        set(ref) | set(window),
        key=lambda f: (
            -max(
                ref.get(f, 0.0) / ref_total if ref_total else 0.0, window.get(f, 0.0) / win_total if win_total else 0.0
            ),
            f,
        ),
    )[:IMPORTANCE_ROWS]
    traces: list[dict[str, Any]] = []
    if ref_total > 0:
        method = (reference or {}).get("method", "")
        share = [max(ref.get(f, 0.0), 0.0) / ref_total for f in ranked]
        bar: dict[str, Any] = {
            "type": "bar",
            "orientation": "h",
            "name": f"reference ({method})",
            "y": ranked,
            "x": share,
            "hovertemplate": "%{y}: %{x:.1%} of the reference's importance<extra></extra>",
        }
        ranges = (reference or {}).get("features", {})
        if all("low" in ranges.get(f, {}) for f in ranked if f in ref):
            high = [
                max(ranges[f]["high"], 0.0) / ref_total - s if f in ranges else 0.0
                for f, s in zip(ranked, share, strict=True)
            ]
            low = [
                s - max(ranges[f]["low"], 0.0) / ref_total if f in ranges else 0.0
                for f, s in zip(ranked, share, strict=True)
            ]
            bar["error_x"] = {
                "type": "data",
                "array": [max(h, 0.0) for h in high],
                "arrayminus": [max(v, 0.0) for v in low],
            }
        traces.append(bar)
    if win_total > 0:
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": "newest window (logged attributions)",
                "y": ranked,
                "x": [window.get(f, 0.0) / win_total for f in ranked],
                "hovertemplate": "%{y}: %{x:.1%} of the window's importance<extra></extra>",
            }
        )
    ndcg = _latest(points, "attribution_drift.ndcg")
    if ndcg and ndcg[0]["value"] is not None:
        verdict = "below 0.90: attribution drift" if ndcg[0]["drifted"] else "0.90 or more: the ranking holds"
        title += f" — NDCG {ndcg[0]['value']:.3f} in the window to {ndcg[0]['window_end']:%H:%M} ({verdict})"
    layout = {
        "barmode": "group",
        "xaxis": {"tickformat": ".0%", "title": "share of the model's importance", "automargin": True},
        "yaxis": {"autorange": "reversed", "automargin": True},
    }
    return _layout(_figure(traces, layout), title, height=max(300, 24 * len(ranked) + 140))
