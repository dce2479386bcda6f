"""Who may see the dashboard: a login with an API key that has the `read` scope. The signed
session cookie holds only a random session id; the session (the key's hash and an expiry) lives
in the database and is checked on every request, with the key behind it (a revoked key stops
working within the API's key cache time). Logging out deletes the session: the cookie, replayed,
opens nothing. Only a dashboard on a loopback address may run open (the demo).
"""

from __future__ import annotations

import html
import ipaddress
import secrets
from urllib.parse import quote, urlparse

from flask import Flask, Response, g, redirect, request, session

from monitor.domain.audit import Actor
from monitor.errors import MonitorError, TooManyRequests, Unauthorized
from monitor.services.catalog import dashboard_sessions as sessions
from monitor.services.catalog.keys import Authenticator, Principal, Scope, hash_key
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest.rate_limit import RateLimiter

OPEN_PRINCIPAL = Principal(0, "open dashboard (loopback demo)", frozenset({Scope.admin.value}), "open")
PUBLIC_PREFIXES = ("/login", "/logout", "/_dash-component-suites/", "/assets/", "/_favicon.ico", "/favicon.ico")

LOGOUT_PAGE = """<!doctype html><html><head><title>Model Monitor — log out</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:6rem auto;color:#222}
button{padding:.5rem 1.2rem}</style></head><body><h2>Model Monitor</h2>
<form method="post" action="/logout"><button type="submit" id="logout">Log out</button></form>
<p><a href="/">Back to the dashboard</a></p></body></html>"""

LOGIN_PAGE = """<!doctype html><html><head><title>Model Monitor — log in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:6rem auto;color:#222}}
input{{width:100%;padding:.5rem;margin:.5rem 0;font-family:monospace}}button{{padding:.5rem 1.2rem}}
.err{{color:#b71c1c}}</style></head><body>
<h2>Model Monitor</h2><p>Log in with an API key that has the <code>read</code> scope
(<code>monitor keys create --scope read</code>).</p>
<form method="post"><input type="hidden" name="next" value="{next}">
<input type="password" name="key" id="key" placeholder="mon_…" autofocus>
<button type="submit" id="login">Log in</button></form><p class="err" id="error">{error}</p></body></html>"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _safe_next(target: str) -> str:
    """Only a path on this site: a login link must not send the user elsewhere."""
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc and target.startswith("/") else "/"


def principal() -> Principal:
    p: Principal = g.principal  # set for every request that got past the check
    return p


def actor() -> Actor:
    """Who acts through this request, for the audit log: the logged-in key, from the browser's address."""
    p = principal()
    return Actor("dashboard", p.key_id, p.name, p.prefix or None, request.remote_addr)


def _session_principal(ctx: ServiceContext, auth: Authenticator) -> Principal | None:
    """Who the login cookie's session is, if it is live and its key may still read; else None."""
    sid = session.get("sid")
    digest = sessions.key_hash_of(ctx, sid) if isinstance(sid, str) else None
    if not digest:
        return None
    try:
        who = auth.authenticate_digest(digest)
    except MonitorError:
        return None
    return who if who.allows(Scope.read) else None


def install(server: Flask, ctx: ServiceContext, *, open_access: bool) -> None:
    given = ctx.settings.dashboard_secret_key
    server.secret_key = given.get_secret_value() if given else secrets.token_hex(32)
    # Secure where the browser reaches the dashboard over HTTPS: served so, or behind a proxy
    # that terminates TLS at the configured https:// address.
    secure = ctx.settings.tls or ctx.settings.dashboard_url.startswith("https://")
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure)
    auth = Authenticator(ctx)
    failures = RateLimiter(
        ctx.settings.auth_failures_per_second,
        ctx.settings.auth_failures_burst,
        what="too many failed logins from this address (at most {rate:g} per second)",
    )

    @server.before_request
    def check() -> Response | None:
        if open_access:
            g.principal = OPEN_PRINCIPAL
            return None
        if request.path.startswith(PUBLIC_PREFIXES):
            return None
        who = _session_principal(ctx, auth)
        if who is not None:
            g.principal = who
            return None
        if session.get("sid") is not None:
            session.clear()
        if request.path.startswith("/_dash-") or request.path.startswith("/report-html/"):
            return Response('{"error": "log in first"}', status=401, mimetype="application/json")
        return redirect("/login?next=" + quote(request.full_path))  # type: ignore[return-value]

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        nxt = _safe_next(request.values.get("next", "/"))
        if request.method == "GET":
            return LOGIN_PAGE.format(next=html.escape(nxt), error="")
        key = request.form.get("key", "").strip()
        address = request.remote_addr or "unknown"
        try:
            failures.check(address)  # a client guessing keys: refused before any lookup
        except TooManyRequests as exc:
            page = LOGIN_PAGE.format(next=html.escape(nxt), error=html.escape(exc.message))
            return Response(page, status=429, headers=exc.headers(), mimetype="text/html")
        try:
            auth.require(f"Bearer {key}", Scope.read)
        except MonitorError as exc:
            if isinstance(exc, Unauthorized):
                failures.charge(address)
            return LOGIN_PAGE.format(next=html.escape(nxt), error=html.escape(exc.message))
        session.clear()
        session["sid"] = sessions.start(ctx, hash_key(key))
        return redirect(nxt)  # type: ignore[return-value]

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Response | str:
        # A GET never logs out: any site could do it with an image or a link. It asks instead;
        # the POST (same origin, as every POST here) ends the session.
        if request.method == "GET":
            return LOGOUT_PAGE
        sid = session.get("sid")
        if isinstance(sid, str):
            sessions.end(ctx, sid)  # server-side: the cookie, replayed, no longer opens anything
        session.clear()
        return redirect("/login")  # type: ignore[return-value]
