"""What the API and the dashboard tell browsers about their responses, and how report HTML is
made inert.

Report HTML holds monitored data (feature names, category values) inside Evidently's page. Two
layers keep it from ever acting as the dashboard or the API:
- the JSON Evidently embeds in a ``<script>`` is written so that no ``<`` is left in it: a value
  holding ``</script><script>…`` cannot close the data block (``escape_embedded_json``);
- the page is served with a CSP ``sandbox`` (scripts run, but in an opaque origin: no cookies, no
  same-origin requests, no access to the parent page) and no network access at all. Reports
  stored before the escaping are served the same way.
"""

from __future__ import annotations

import re

# Every response: no MIME sniffing, no referrer leaking URLs to other sites (they name models and
# windows). Not no-referrer: under it a browser sends "Origin: null" even with a same-origin form
# post, which the dashboard's origin check would then refuse.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# JSON answers of the API: nothing in them is ever to be run, framed or loaded from.
API_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}

# /docs: Swagger UI from this origin only (monitor.api.docs), its start-up script a file too; it
# sets style attributes, and draws some icons as data: images.
API_DOCS_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}

# A stored report: its own scripts and inline styles, fonts and images as data URLs, nothing
# fetched, and a sandbox without allow-same-origin, so that even a script that got in has no
# origin to act as. Evidently's bundle (React, Plotly) needs eval; in an opaque origin with no
# network that reaches nothing.
REPORT_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": "sandbox allow-scripts; default-src 'none'; "
    "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}
# The iframe the dashboard shows a report in: the same sandbox, said by the embedding page too.
REPORT_IFRAME_SANDBOX = "allow-scripts"

# Evidently writes its data as two lines: ``var metric_<hex> = {json};`` and
# ``var additional_graphs_metric_<hex> = {json};`` (json.dumps: one line, newlines escaped).
_DATA_LINE = re.compile(r"^(\s*var (?:additional_graphs_)?metric_[0-9a-f]{32} = )(.*);\s*$")
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class ReportHTMLError(ValueError):
    pass


def script_safe_json(text: str) -> str:
    """JSON text that can stand inside ``<script>``: ``<``, ``>`` and ``&`` occur in JSON only
    inside strings, where ``\\u003c`` and friends mean the same character."""
    for char, escaped in _SCRIPT_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


def escape_embedded_json(page: str) -> str:
    """Evidently's page with its embedded JSON made script-safe; ``ReportHTMLError`` when the data
    lines are not where Evidently writes them (a format this code does not know is not stored)."""
    lines = page.split("\n")
    found = 0
    for i, line in enumerate(lines):
        m = _DATA_LINE.match(line)
        if m:
            lines[i] = f"{m.group(1)}{script_safe_json(m.group(2))};"
            found += 1
    if found != 2:
        raise ReportHTMLError(f"expected Evidently's two data lines in the report page, found {found}")
    return "\n".join(lines)
