"""Report pages: the JSON Evidently embeds in a script can hold no markup."""

from __future__ import annotations

import json

import pytest

from monitor.web_security import ReportHTMLError, escape_embedded_json, script_safe_json

ID = "metric_" + "0" * 31 + "a"
HOSTILE = "</script><script>alert(1)</script><!-- & \u2028"


def _page(value: str) -> str:
    data = json.dumps({"widgets": [{"title": value}]})
    return (
        f"<html><head><script>\n    var {ID} = {data};\n    var additional_graphs_{ID} = {json.dumps({'g': value})};\n"
        f"</script></head><body><script>window.drawDashboard({ID});</script></body></html>"
    )


def test_embedded_json_holds_no_markup_and_means_the_same() -> None:
    page = escape_embedded_json(_page(HOSTILE))
    data_lines = [line for line in page.split("\n") if line.strip().startswith("var ")]
    assert len(data_lines) == 2
    for line in data_lines:
        assert "<" not in line and ">" not in line and "&" not in line
        value = json.loads(line.split(" = ", 1)[1].rstrip(";"))  # \\u003c reads back as <
        assert HOSTILE in json.dumps(value, ensure_ascii=False)
    assert page.count("</script>") == 2  # Evidently's own two, no more


def test_a_page_without_evidently_data_lines_is_refused() -> None:
    with pytest.raises(ReportHTMLError):
        escape_embedded_json("<html><script>var x = 1;</script></html>")


def test_script_safe_json_round_trips() -> None:
    doc = {"a": "<b>&</b>", "c": ["\u2028", "\u2029"]}
    assert json.loads(script_safe_json(json.dumps(doc, ensure_ascii=False))) == doc
