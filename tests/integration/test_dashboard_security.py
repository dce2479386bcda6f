"""The dashboard over real HTTP on loopback: which Host it answers to, where state-changing
requests may come from, and the headers every response carries."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from dashboards.app import create_dashboard
from dashboards.serve import DashboardServer
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext

CALLBACK = "/_dash-update-component"


def _serve(ctx: ServiceContext, open_access: bool) -> Iterator[tuple[httpx.Client, str]]:
    server = DashboardServer(create_dashboard(ctx, open_access=open_access), "127.0.0.1", 0).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client, server.url.rsplit(":", 1)[1]
    server.stop()


@pytest.fixture
def open_dashboard(ctx: ServiceContext) -> Iterator[tuple[httpx.Client, str]]:
    yield from _serve(ctx, True)


@pytest.fixture
def login_dashboard(ctx: ServiceContext) -> Iterator[tuple[httpx.Client, str]]:
    yield from _serve(ctx, False)


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("127.0.0.2:{port}", True),
        ("[::1]:{port}", True),
        ("evil.example:{port}", False),  # a name rebound to 127.0.0.1 by a page the user visits
        ("evil.example", False),
        ("127.0.0.1", False),  # no port: not this server's origin
        ("localhost:1", False),
        ("127.0.0.1.evil.example:{port}", False),
    ],
)
def test_an_open_dashboard_answers_only_to_a_loopback_host_with_its_port(
    open_dashboard: tuple[httpx.Client, str], host: str, answered: bool
) -> None:
    client, port = open_dashboard
    for method, path in (("GET", "/"), ("GET", "/_dash-layout"), ("POST", CALLBACK)):
        r = client.request(method, path, headers={"Host": host.format(port=port)}, json={})
        assert (r.status_code != 421) is answered, (method, path, r.status_code)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),  # a sandboxed report frame, a data: URL
        ({"Origin": "http://127.0.0.1:1"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Origin": "http://127.0.0.1:{port}"}, True),
        ({"Origin": "http://127.0.0.1:8050"}, True),  # MONITOR_DASHBOARD_URL, as a proxy in front would present it
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({}, True),  # not a browser, so not a forged request
    ],
)
@pytest.mark.parametrize("mode", ["open", "login"])
def test_state_changes_come_only_from_the_dashboard_itself(
    request: pytest.FixtureRequest, mode: str, headers: dict[str, str], allowed: bool
) -> None:
    client, port = request.getfixturevalue(f"{mode}_dashboard")
    sent = {k: v.format(port=port) for k, v in headers.items()}
    for path in (CALLBACK, "/login"):
        r = client.post(path, headers=sent, json={})
        assert (r.status_code != 403) is allowed, (path, r.status_code, r.text)
        if not allowed:
            assert "cross-origin" in r.text


def test_a_silence_callback_from_another_origin_is_refused_with_an_admin_session(
    login_dashboard: tuple[httpx.Client, str], ctx: ServiceContext
) -> None:
    client, port = login_dashboard
    admin = keys.create_key(ctx, "dash-admin", [keys.Scope.admin])[0]
    own = {"Origin": f"http://127.0.0.1:{port}"}
    assert client.post("/login", data={"key": admin, "next": "/"}, headers=own).status_code == 302
    body = {
        "output": "silence-result.children",
        "outputs": {"id": "silence-result", "property": "children"},
        "inputs": [{"id": "silence-button", "property": "n_clicks", "value": 1}],
        "changedPropIds": ["silence-button.n_clicks"],
        "state": [
            {"id": "silence-model", "property": "value", "value": "m"},
            {"id": "silence-rule", "property": "value", "value": None},
            {"id": "silence-hours", "property": "value", "value": 1},
            {"id": "silence-by", "property": "value", "value": "x"},
            {"id": "silence-comment", "property": "value", "value": "y"},
            {"id": "silence-matchers", "property": "value", "value": ""},
        ],
    }
    r = client.post(CALLBACK, json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post(CALLBACK, json=body, headers=own)  # the same callback from the dashboard's own page
    assert r.status_code == 200 and "Silence" in r.text and "created" in r.text


def test_every_response_carries_security_headers(login_dashboard: tuple[httpx.Client, str]) -> None:
    client, _ = login_dashboard
    for path in ("/login", "/", "/_dash-layout", "/report-html/x/1", "/_dash-component-suites/nothing.js"):
        h = client.get(path).headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "same-origin", path
        csp = h["content-security-policy"]
        if path.startswith("/report-html/"):
            assert csp.startswith("sandbox allow-scripts;") and "connect-src 'none'" in csp
            assert "frame-ancestors 'self'" in csp and h["x-frame-options"] == "SAMEORIGIN"
        else:
            assert "frame-ancestors 'none'" in csp and h["x-frame-options"] == "DENY", path
            scripts = csp.split("script-src")[1].split(";")[0]
            assert scripts.startswith(" 'self' 'sha256-") and "unsafe" not in scripts, path


def test_failed_logins_are_limited_per_address(login_dashboard: tuple[httpx.Client, str], ctx: ServiceContext) -> None:
    client, port = login_dashboard
    own = {"Origin": f"http://127.0.0.1:{port}"}
    burst = int(ctx.settings.auth_failures_burst)
    statuses = [
        client.post("/login", data={"key": f"mon_00000000_wrong{i}"}, headers=own).status_code for i in range(burst + 3)
    ]
    assert statuses[:burst] == [200] * burst and statuses[burst:] == [429] * 3
    refused = client.post("/login", data={"key": "mon_00000000_wrong"}, headers=own)
    assert "too many failed logins" in refused.text and int(refused.headers["retry-after"]) >= 1


def test_a_session_cookie_replayed_after_logout_opens_nothing(
    login_dashboard: tuple[httpx.Client, str], ctx: ServiceContext
) -> None:
    client, port = login_dashboard
    own = {"Origin": f"http://127.0.0.1:{port}"}
    read = keys.create_key(ctx, "dash-read", [keys.Scope.read])[0]
    assert client.post("/login", data={"key": read, "next": "/"}, headers=own).status_code == 302
    cookie = dict(client.cookies)
    assert client.get("/_dash-layout").status_code == 200
    assert read not in str(cookie) and keys.hash_key(read) not in str(cookie)  # the cookie holds a session id
    asked = client.get("/logout")  # a GET only asks: any site could send one
    assert asked.status_code == 200 and 'method="post"' in asked.text
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/logout", headers={"Origin": "http://evil.example"}).status_code in (400, 403)
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/logout", headers=own).status_code == 302
    with httpx.Client(base_url=str(client.base_url), cookies=cookie) as replay:
        assert replay.get("/_dash-layout").status_code == 401
        assert replay.get("/", follow_redirects=False).headers["location"].startswith("/login")


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        "{}",
        '{"output": "nothing.children", "outputs": {"id": "nothing", "property": "children"}, "inputs": []}',
        '{"output": "who.children", "outputs": [], "inputs": [5]}',
        '{"output": "who.children", "outputs": [], "inputs": [{"id": 3}]}',
        '{"output": "who.children", "outputs": 7, "inputs": []}',
    ],
)
def test_a_malformed_callback_request_is_the_clients_error(
    login_dashboard: tuple[httpx.Client, str], ctx: ServiceContext, body: str
) -> None:
    """A logged-in client posting a callback Dash cannot read gets a 400 saying so (a 500 before)."""
    client, port = login_dashboard
    own = {"Origin": f"http://127.0.0.1:{port}"}
    read = keys.create_key(ctx, "dash-read", [keys.Scope.read])[0]
    assert client.post("/login", data={"key": read, "next": "/"}, headers=own).status_code == 302
    r = client.post("/_dash-update-component", content=body, headers={**own, "Content-Type": "application/json"})
    assert r.status_code == 400 and "malformed callback request" in r.json()["error"]


def test_the_styles_are_a_stylesheet_of_the_dashboards_own_origin(open_dashboard: tuple[httpx.Client, str]) -> None:
    """No inline style block: the page links dashboards/assets/dashboard.css, served from here."""
    client, _ = open_dashboard
    page = client.get("/").text
    linked = re.search(r'<link rel="stylesheet" href="(/assets/dashboard\.css[^"]*)"', page)
    assert linked and "<style>" not in page, page[:2000]
    css = client.get(linked.group(1))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".alert-group" in css.text
