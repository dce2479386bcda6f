"""The dashboard's pure parts: figures from points, URL parameters, display bins."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from dashboards import figures
from dashboards.params import ModelParams
from monitor.metrics.profiles import NumericSummary
from monitor.services.read_models.dashboard_data import _display_bins, window_step

T = datetime(2026, 11, 22, 12, tzinfo=UTC)


def point(metric: str, end: datetime, value: float | None, **kw) -> dict:  # type: ignore[no-untyped-def]
    return {
        "metric": metric,
        "labels": kw.pop("labels", {}),
        "window_start": end - timedelta(hours=1),
        "window_end": end,
        "value": value,
        "sample_size": kw.pop("n", 100),
        "reference_size": kw.pop("ref", 1000),
        "threshold": kw.pop("threshold", None),
        "drifted": kw.pop("drifted", False),
        "details": kw.pop("details", {}),
    }


def test_drift_severity_puts_p_values_and_distances_on_one_scale() -> None:
    at = {"kind": "p_value"}
    assert figures.drift_severity(point("feature_drift", T, 0.05, threshold=0.05, details=at)) == pytest.approx(1)
    assert figures.drift_severity(point("feature_drift", T, 0.0025, threshold=0.05, details=at)) == pytest.approx(2)
    assert figures.drift_severity(point("feature_drift", T, 0.5, threshold=0.05, details=at)) < 1
    assert figures.drift_severity(point("feature_drift", T, 0.2, threshold=0.1)) == pytest.approx(2)
    assert math.isnan(figures.drift_severity(point("feature_drift", T, None, threshold=0.1)))


def test_heatmap_cells_and_hover_carry_the_numbers() -> None:
    pts = [
        point("feature_drift", T, 0.3, threshold=0.1, drifted=True, labels={"feature": "age", "method": "wasserstein"}),
        point("feature_drift", T, 0.05, threshold=0.1, labels={"feature": "income", "method": "wasserstein"}),
        point("feature_drift", T + timedelta(hours=1), 0.01, threshold=0.1, labels={"feature": "age", "method": "w"}),
    ]
    trace = figures.drift_heatmap(pts)["data"][0]
    assert list(trace["y"]) == ["age", "income"] and len(trace["x"]) == 2
    z = np.array(trace["z"], dtype=float)
    assert z[0, 0] == pytest.approx(3.0) and z[1, 0] == pytest.approx(0.5) and math.isnan(z[1, 1])
    assert "n current = 100, n reference = 1,000" in trace["text"][0][0] and "DRIFTED" in trace["text"][0][0]


def _colour_at(z: float) -> str:
    """The colour a heatmap cell of value z is drawn in (plotly reads the scale the same way)."""
    span = 3 - figures.UNDECIDED
    at = (z - figures.UNDECIDED) / span
    stops = figures.DECISION_COLOURS
    for (lo, lo_colour), (hi, hi_colour) in itertools.pairwise(stops):
        if lo <= at <= hi:
            return lo_colour if at - lo <= hi - at else hi_colour
    raise AssertionError(z)


def _is_red(colour: str) -> bool:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return r > g + 40 and r > b + 40


def test_a_cell_is_red_only_where_the_service_decided_drift() -> None:
    """A score at 3x its threshold that was not significant after correction is drawn as "no
    drift" (it was red); a window too small to decide is grey; the hover says why."""
    calibrated = {"kind": "distance", "significant": False, "material": True, "p_value": 0.004}
    material_not_significant = point(
        "feature_drift", T, 0.075, threshold=0.025, drifted=False, details=calibrated, labels={"feature": "a"}
    )
    drifted = point(
        "feature_drift",
        T,
        0.03,
        threshold=0.025,
        drifted=True,
        details={**calibrated, "significant": True, "p_value": 1e-9},
        labels={"feature": "b"},
    )
    small = point(
        "feature_drift",
        T,
        0.2,
        threshold=0.025,
        drifted=None,
        n=40,
        details={**calibrated, "min_sample_size": 100},
        labels={"feature": "c"},
    )
    quiet = point("feature_drift", T, 0.01, threshold=0.025, drifted=False, labels={"feature": "d"})
    colours = {
        p["labels"]["feature"]: figures.cell_colour(p) for p in (material_not_significant, drifted, small, quiet)
    }
    assert colours["a"] < 1 and colours["d"] < colours["a"]  # decided no drift: below the reds, stronger darker
    assert colours["b"] >= 1 and colours["c"] == figures.UNDECIDED
    assert not _is_red(_colour_at(colours["a"])) and not _is_red(_colour_at(colours["d"]))
    assert _is_red(_colour_at(colours["b"])) and _colour_at(colours["c"]) == "#cfd8dc"
    trace = figures.drift_heatmap([material_not_significant, drifted, small, quiet])["data"][0]
    text = {row: trace["text"][i][0] for i, row in enumerate(trace["y"])}
    assert "no drift: not significant (p = 0.004, after correction across features), material" in text["a"]
    assert "DRIFTED: significant (p = 1e-09), material" in text["b"]
    assert "not decided: too few rows (fewer than 100)" in text["c"]


def test_concept_detections_are_shown_once_per_change() -> None:
    # one change seen by the three 1h-sliding windows that hold it, a second by the last one
    first, second = (T + timedelta(minutes=30)).isoformat(), (T + timedelta(hours=2, minutes=5)).isoformat()
    pts = [
        point(
            "concept_drift.error_stream",
            T + timedelta(hours=h),
            1.0,
            drifted=True,
            details={"detected_at": first, "detections": [{"at": first}] + ([{"at": second}] if h == 2 else [])},
        )
        for h in range(3)
    ]
    drops = [False, True, True, False, True]
    pts += [point("concept_drift.quality_drop", T + timedelta(hours=h), 0.2, drifted=d) for h, d in enumerate(drops)]
    marks = figures.concept_detections(pts)
    assert [(m["what"], m["at"]) for m in marks] == [
        ("error_stream", T + timedelta(minutes=30)),
        ("quality_drop", T + timedelta(hours=1)),
        ("error_stream", T + timedelta(hours=2, minutes=5)),
        ("quality_drop", T + timedelta(hours=4)),
    ]


def test_model_params_round_trip_and_presets() -> None:
    now = datetime(2026, 11, 22, 12, 34, tzinfo=UTC)
    p = ModelParams.from_search("?range=24h&window=1h&segment=region%3DEU", now)
    assert (p.end, p.start, p.segment, p.range_name) == (
        datetime(2026, 11, 22, 13, tzinfo=UTC),
        datetime(2026, 11, 21, 13, tzinfo=UTC),
        "region=EU",
        "24h",
    )
    custom = ModelParams.from_search("?from=2026-11-01T00:00:00%2B00:00&to=2026-11-02T00:00:00Z&window=1d", now)
    assert custom.range_name == "custom" and custom.end - custom.start == timedelta(days=1)
    assert ModelParams.from_search(custom.search(window="1h"), now).start == custom.start
    assert "range=7d" in custom.search(range="7d") and "from=" not in custom.search(range="7d")
    assert ModelParams.from_search("?from=garbage", now).range_name == "7d"


def test_long_ranges_are_thinned_to_at_most_200_windows() -> None:
    assert window_step(T, T + timedelta(days=7)) == 3600
    assert window_step(T, T + timedelta(days=30)) == 4 * 3600
    assert window_step(T, T + timedelta(days=365)) == 44 * 3600


def test_display_bins_keep_every_count_and_share_the_reference_bounds() -> None:
    rng = np.random.default_rng(0)
    ref_values = rng.normal(0, 1, 5000)
    edges = np.unique(np.quantile(ref_values, np.linspace(0, 1, 200)))
    ref = NumericSummary.of(ref_values, edges)
    cur = NumericSummary.of(rng.normal(3, 1, 800), edges)  # much of it beyond the last edge
    bounds, ref_shares = _display_bins(ref)
    same_bounds, cur_shares = _display_bins(cur, bounds)
    assert same_bounds == bounds and len(bounds) <= 31
    assert sum(ref_shares) == pytest.approx(1) and sum(cur_shares) == pytest.approx(1)
    assert cur_shares[-1] > 0.5  # values above the reference's range land in the last bin


def test_silence_matchers_typed_by_hand() -> None:
    from dashboards.pages.alerts import parse_matchers

    got = parse_matchers("feature=age, segment_value=~EU|US ,team!=ml, note!~x.*")
    assert [(m.name, m.op, m.value) for m in got] == [
        ("feature", "=", "age"),
        ("segment_value", "=~", "EU|US"),
        ("team", "!=", "ml"),
        ("note", "!~", "x.*"),
    ]
    assert parse_matchers("  ") == []
    with pytest.raises(ValueError, match="not a matcher"):
        parse_matchers("feature")
    with pytest.raises(ValueError, match="RE2"):
        parse_matchers("feature=~(a)\\1")


def test_a_rule_is_shown_as_the_engine_reads_it() -> None:
    """The rules table reads a stored rule through ``alerts.rules``: its defaults are the engine's
    (not re-derived here), its condition in words; one that no longer parses is shown as stored."""
    from dashboards.pages.alerts import _rule_row

    bare = _rule_row({"name": "d", "source": "api", "definition": {"metric": "m", "condition": {"drifted": True}}})
    assert bare == {
        "name": "d",
        "source": "api",
        "metric": "m",
        "model": "*",
        "condition": "drifted",
        "for": "0s",
        "severity": "warning",
        "receivers": "",
        "retrain": "",
    }
    full = _rule_row(
        {
            "name": "a",
            "source": "file",
            "definition": {
                "metric": "feature_drift",
                "model": "credit*",
                "condition": {"op": ">", "threshold": 0.3},
                "for": "2h",
                "severity": "critical",
                "receivers": ["oncall", "chat"],
                "retrain": {"receiver": "trainer"},
            },
        }
    )
    assert (full["condition"], full["for"], full["severity"], full["receivers"], full["retrain"]) == (
        "value > 0.3",
        "2h",
        "critical",
        "oncall, chat",
        "trainer",
    )
    old = _rule_row({"name": "o", "source": "api", "definition": {"metric": "m", "condition": {"bogus": 1}}})
    assert old == {"name": "o", "source": "api", "metric": "m", "condition": "{'bogus': 1}"}


def test_share_axes_start_at_zero_and_ticks_differ() -> None:
    from datetime import UTC, datetime, timedelta

    from dashboards import figures

    end = datetime(2026, 11, 30, tzinfo=UTC)
    points = [
        {
            "metric": "data_quality.missing_share",
            "labels": {"feature": "age"},
            "window_start": end - timedelta(hours=i + 1),
            "window_end": end - timedelta(hours=i),
            "value": 0.0,
            "sample_size": 100,
            "threshold": None,
        }
        for i in range(5)
    ]
    fig = figures.series(points, "data_quality.missing_share", "Missing values", by="feature", percent=True)
    axis = fig["layout"]["yaxis"]
    assert axis["range"][0] == 0 and axis["range"][1] > 0  # all zero: not drawn from -100 %
    assert axis["tickformat"] == ".2~%"
    assert figures.percent_axis([0.002, 0.004])["range"][1] == pytest.approx(0.01)
    assert figures.percent_axis([0.3, None])["range"][1] == pytest.approx(0.345)
    q = figures.quality([{**p, "metric": "quality.label_coverage", "labels": {}} for p in points], "quality.accuracy")
    y2 = q["layout"]["yaxis2"]
    assert y2["automargin"] is True and y2["title"]["standoff"] == 6


def test_the_alert_timeline_has_room_for_every_row() -> None:
    """Each rule · feature pair is a row with its own tick label: the height counts rows, not
    rules (two rules over twelve features once left every other row unlabelled)."""
    from dashboards.pages.alerts import ROW_PX, timeline

    history = [
        {
            "at": T + timedelta(minutes=i),
            "to_state": "firing",
            "rule": rule,
            "model": "churn",
            "labels": {"feature": f"f{i:02d}"},
            "value": 0.3,
            "threshold": 0.1,
            "evidence": {"sample_size": 500},
        }
        for rule in ("feature-drift", "feature-psi")
        for i in range(12)
    ]
    fig = timeline(history)
    rows = sorted({f"{h['rule']} · {h['labels']['feature']}" for h in history})
    assert list(fig.layout.yaxis.categoryarray) == rows
    assert fig.layout.yaxis.dtick == 1  # a label on every row, none skipped
    assert fig.layout.height >= ROW_PX * len(rows)


def test_quality_draws_the_estimate_in_its_band_before_labels_and_the_realized_line_after() -> None:
    ends = [T + timedelta(hours=h) for h in range(4)]
    band = {"lower": 0.7, "upper": 0.8}
    points = [point("estimated.accuracy", e, 0.75, details=band) for e in ends]
    points += [point("quality.accuracy", e, 0.74) for e in ends[:2]]  # labels only for the first two
    fig = figures.quality(points, "quality.accuracy")
    traces = {t.get("name"): t for t in fig["data"]}
    assert traces["95 % band of the estimate"]["y"] == [0.8] * 4 and traces["95 % band of the estimate"]["fill"]
    assert [t["y"] for t in fig["data"] if t.get("fill") is None and t["y"] == [0.7] * 4]  # the band's lower edge
    assert traces["accuracy, estimated"]["x"] == ends and traces["accuracy, realized"]["x"] == ends[:2]
    assert "estimated from the scores" in fig["layout"]["title"]
    # before any label at all: the estimate alone, not "no labelled predictions"
    alone = figures.quality(points[:4], "quality.accuracy")
    assert "accuracy, estimated" in [t.get("name") for t in alone["data"]]


def test_multivariate_drift_marks_the_windows_outside_the_reference_band() -> None:
    band = {"lower": 1.1, "upper": 1.3}
    points = [
        point("multivariate_drift", T, 1.2, details=band, drifted=False),
        point("multivariate_drift", T + timedelta(hours=1), 1.6, details=band, drifted=True),
    ]
    fig = figures.multivariate_drift(points)
    traces = {t.get("name"): t for t in fig["data"]}
    assert traces["reconstruction error"]["y"] == [1.2, 1.6]
    assert traces["drifted"]["x"] == [T + timedelta(hours=1)]
    assert traces["reference band"]["y"] == [1.3, 1.3]
    assert "no reconstruction model" in figures.multivariate_drift([])["layout"]["annotations"][0]["text"]


def test_fairness_draws_each_attributes_parity_ratio_and_odds_gap_in_their_bands() -> None:
    sex = {"attribute": "sex"}
    points = [
        point("fairness.demographic_parity_ratio", T, 0.9, labels=sex, details={"lower": 0.85, "upper": 0.95}),
        point(
            "fairness.demographic_parity_ratio",
            T + timedelta(hours=1),
            0.6,
            labels=sex,
            details={"lower": 0.55, "upper": 0.66},
            drifted=True,
        ),
        point("fairness.equalized_odds_difference", T, 0.05, labels=sex, details={"lower": 0.0, "upper": 0.1}),
        point("fairness.selection_rate", T, 0.3, labels={**sex, "group": "F"}),  # groups are not drawn here
    ]
    fig = figures.fairness(points)
    traces = {t.get("name"): t for t in fig["data"]}
    assert traces["sex: demographic parity ratio"]["y"] == [0.9, 0.6]
    assert traces["sex: demographic parity ratio, 90 %"]["y"] == [0.95, 0.66]
    assert traces["sex: demographic parity ratio violated"]["x"] == [T + timedelta(hours=1)]
    assert traces["sex: equalized odds difference"]["y"] == [0.05]
    assert len(fig["data"]) == 7  # two bands of two traces, two lines, one set of marks
    assert fig["layout"]["shapes"][0]["y0"] == 0.8
    assert "no protected attributes" in figures.fairness([])["layout"]["annotations"][0]["text"]


def test_a_line_breaks_where_windows_are_missing_instead_of_crossing_the_gap() -> None:
    """Hourly windows, then six hours without any, then more: the realized accuracy was drawn
    straight across the six hours as if measured there."""
    ends = [T, T + timedelta(hours=1), T + timedelta(hours=8), T + timedelta(hours=9)]
    fig = figures.quality([point("quality.accuracy", e, 0.9) for e in ends], "quality.accuracy")
    realized = next(t for t in fig["data"] if t["name"] == "accuracy")
    assert realized["y"] == [0.9, 0.9, None, 0.9, 0.9]
    assert realized["x"][2] == T + timedelta(hours=2)
    # every line of every chart: the latency percentiles, bands
    lat = figures.latency([point("latency.p95", e, 10.0) for e in ends])
    assert lat["data"][0]["y"] == [10.0, 10.0, None, 10.0, 10.0]
    regular = figures.series(
        [point("dataset_drift", T + timedelta(hours=h), 0.1) for h in range(4)], "dataset_drift", "d"
    )
    assert None not in regular["data"][0]["y"]


def test_one_window_gets_a_readable_time_axis() -> None:
    """A range holding one window: the axis spans at least two hours and never ticks below a
    minute (ticks read 00:59:59.9996)."""
    fig = figures.with_time_range(figures.series([point("dataset_drift", T, 0.1)], "dataset_drift", "d"), T, T)
    axis = fig["layout"]["xaxis"]
    start, end = (datetime.fromisoformat(x) for x in axis["range"])
    assert end - start >= timedelta(hours=2) and end == T
    assert axis["type"] == "date" and all(
        "%L" not in s["value"] and "%S" not in s["value"] for s in axis["tickformatstops"]
    )
    assert axis["tickformatstops"][0]["dtickrange"][0] is None  # the finest ticks are covered


def test_the_charts_start_where_the_data_starts_within_the_range() -> None:
    pts = [point("dataset_drift", T + timedelta(hours=h), 0.1) for h in range(48)]
    assert figures.shown_start(pts, T - timedelta(days=5)) == T - timedelta(hours=1)
    assert figures.shown_start(pts, T + timedelta(hours=5)) == T + timedelta(hours=5)
    assert figures.shown_start([], T) == T
    heatmap = figures.with_time_range(
        figures.drift_heatmap([point("feature_drift", T, 0.2, threshold=0.1, labels={"feature": "age"})]),
        T - timedelta(hours=3),
        T,
    )
    assert heatmap["layout"]["xaxis"]["range"][0] == (T - timedelta(hours=3)).replace(tzinfo=None).isoformat()


def test_concept_markers_are_not_cut_and_shares_stay_within_one() -> None:
    detection = point("concept_drift.error_stream", T, 1.0, drifted=True, details={"detections": [{"at": T}]})
    fig = figures.quality([point("quality.accuracy", T, 0.9), detection], "quality.accuracy")
    marks = next(t for t in fig["data"] if t["name"] == "concept drift detected")
    assert marks["cliponaxis"] is False and fig["layout"]["yaxis2"]["range"][1] > 1
    agreement = figures.series([point("comparison.agreement", T, 1.0)], "comparison.agreement", "a", percent=True)
    assert agreement["layout"]["yaxis"]["range"][1] <= 1.02


def test_the_latency_axis_titles_keep_off_the_ticks() -> None:
    fig = figures.latency([point("latency.p95", T, 10.0), point("throughput.per_minute", T, 50.0)])
    for axis in ("yaxis", "yaxis2"):
        assert fig["layout"][axis]["automargin"] is True and fig["layout"][axis]["title"]["standoff"] > 0
    assert fig["layout"]["yaxis2"]["title"]["text"] == "predictions / min"


def test_the_volume_sparkline_says_its_scale() -> None:
    fig = figures.volume([(T, 1)])
    assert fig.layout.annotations[0].text == "busiest hour 1 predictions"
    assert list(fig.layout.yaxis.range) == [0, 1]


def test_a_shadows_accuracy_comes_from_the_pairs_when_it_has_none_of_its_own() -> None:
    from dashboards.pages.compare import paired_accuracy

    comparison = [
        point("comparison.accuracy", T, 0.02, details={"paired": True, "champion_value": 0.8, "challenger_value": 0.82})
    ]
    sides = {"1": [point("quality.accuracy", T, 0.79)], "2": []}
    lines = paired_accuracy(sides, comparison, "1", "2")
    assert {k: [p["value"] for p in v] for k, v in lines.items()} == {
        "1 (on the requests both answered)": [0.8],
        "2 (on the requests both answered)": [0.82],
    }
    fig = figures.versions_side_by_side(lines, "quality.accuracy", "Accuracy of each version")
    assert len(fig["data"]) == 2
    own = {"1": sides["1"], "2": [point("quality.accuracy", T, 0.81)]}
    assert paired_accuracy(own, comparison, "1", "2") is own  # a canary has labels of its own


def test_a_chart_of_a_thousand_features_draws_the_highest_and_says_so() -> None:
    pts = [point("data_quality.missing_share", T, i / 1000, labels={"feature": f"f{i:04d}"}) for i in range(1000)]
    fig = figures.series(pts, "data_quality.missing_share", "Missing values", by="feature", percent=True)
    assert len(fig["data"]) == figures.MAX_LINES
    assert {t["name"] for t in fig["data"]} == {f"f{i:04d}" for i in range(1000 - figures.MAX_LINES, 1000)}
    assert fig["layout"]["title"] == f"Missing values — the {figures.MAX_LINES} highest of 1,000 features"


def test_the_pages_location_is_the_one_dash_pages_routes_by() -> None:
    """The model page writes its controls into ``LOCATION``: it must be the dcc.Location inside
    Dash's page container, or an address written would not rebuild the page."""
    import dash

    from dashboards.params import LOCATION

    locations = [c.id for c in dash.page_container.children if type(c).__name__ == "Location"]
    assert locations == [LOCATION]
