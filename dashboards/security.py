"""The dashboard's browser-facing defences: security headers on every response, which Host it
answers to, and where state-changing requests may come from.

- Every page gets a Content-Security-Policy: scripts only from this origin plus the hashes of
  Dash's own inline scripts, no framing by other sites, no plugins. Report pages get the
  sandboxing policy of ``monitor.web_security`` instead.
- An open dashboard (no login, loopback only) answers only to a loopback Host with its own port:
  a web page the user visits cannot rebind its name to 127.0.0.1 and drive the dashboard.
- A POST (every Dash callback: silence, acknowledge, build a report; the login form) must come
  from this dashboard: its ``Origin`` must be the request's own host or the configured dashboard
  URL. A browser always sends ``Origin`` on such requests; a sandboxed report sends ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from dash import Dash
from flask import Flask, Response, request

from dashboards.auth import is_loopback
from monitor.tls import HSTS
from monitor.web_security import COMMON_HEADERS, REPORT_HEADERS

REPORT_PREFIX = "/report-html/"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _csp(script_hashes: Sequence[str]) -> str:
    scripts = " ".join(["'self'", *script_hashes])  # Dash gives them quoted: 'sha256-…'
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.lower() if parts.scheme in ("http", "https") else ""


def is_loopback_host(host: str, port: str) -> bool:
    """``host`` (a Host header) names a loopback address (or localhost) with exactly ``port``."""
    name, sep, given_port = host.rpartition(":")
    if not sep or given_port != port:
        return False
    return is_loopback(name.lower().removeprefix("[").removesuffix("]"))


def install(app: Dash, *, open_access: bool, dashboard_url: str, tls: bool = False) -> None:
    server: Flask = app.server
    known_origins = {_netloc(dashboard_url)} - {""}
    transport_headers = HSTS if tls else {}
    app_headers: dict[str, str] = {}

    @server.before_request
    def refuse_foreign() -> Response | None:
        host = request.host.lower()
        if open_access and not is_loopback_host(host, str(request.environ.get("SERVER_PORT", ""))):
            return Response("this open dashboard answers on a loopback address only", status=421, mimetype="text/plain")
        if request.method in UNSAFE_METHODS and not _same_origin(host, known_origins):
            return Response("cross-origin request refused", status=403, mimetype="text/plain")
        return None

    @server.after_request
    def headers(response: Response) -> Response:
        if request.path.startswith(REPORT_PREFIX):
            chosen = REPORT_HEADERS
        else:
            if not app_headers:  # Dash knows its inline scripts once every callback is registered
                csp = {"Content-Security-Policy": _csp(app.csp_hashes()), "X-Frame-Options": "DENY"}
                app_headers.update(COMMON_HEADERS | csp | transport_headers)
            chosen = app_headers
        for name, value in chosen.items():
            response.headers.setdefault(name, value)
        return response


def refuse_malformed_callbacks(app: Dash) -> None:
    """A callback request Dash cannot read (not an object, no inputs list, an output no callback
    has) is the client's error: 400, where Dash failed on it with a 500. Installed after the
    login check, so only a logged-in client learns it."""
    server: Flask = app.server

    @server.before_request
    def check_callback() -> Response | None:
        if request.method != "POST" or request.path != "/_dash-update-component":
            return None
        body = request.get_json(silent=True)
        problem = _callback_problem(body, app.callback_map)
        if problem:
            return Response(
                orjson.dumps({"error": f"malformed callback request: {problem}"}),
                status=400,
                mimetype="application/json",
            )
        return None


def _callback_problem(body: Any, callbacks: Mapping[str, Any]) -> str:
    """Why a callback request's body cannot be a call of one of ``callbacks`` ('' if it can)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("output"), str) or body["output"] not in callbacks:
        return "its output is no callback's"
    for part in ("inputs", "state"):
        items = body.get(part, [])
        flat = [j for i in items for j in (i if isinstance(i, list) else [i])] if isinstance(items, list) else None
        if flat is None or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str | dict) and isinstance(i.get("property"), str)
            for i in flat
        ):
            return f"{part} is not a list of components' properties"
    if not isinstance(body.get("outputs"), dict | list):
        return "outputs is not an object or a list"
    if "changedPropIds" in body and not isinstance(body["changedPropIds"], list):
        return "changedPropIds is not a list"
    return ""


def _same_origin(host: str, known: set[str]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers send Origin with every POST; without one, Fetch metadata may still say where
        # it came from. A request with neither is not from a browser, so not a forged one.
        site = request.headers.get("Sec-Fetch-Site")
        return site is None or site in ("same-origin", "none")
    netloc = _netloc(origin)
    return bool(netloc) and (netloc == host or netloc in known)
