"""Every API response tells browsers not to sniff, frame or run it."""

from __future__ import annotations

from tests.integration.helpers import Api


def test_api_responses_carry_security_headers(api: Api) -> None:
    for path, headers in (
        ("/healthz", {}),
        ("/v1/models", api.read),
        ("/v1/models", {}),  # an error too
        ("/v1/nothing-here", {}),
        ("/openapi.json", {}),
    ):
        h = api.http.get(path, headers=headers).headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY", path
        assert h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'", path
        assert h["referrer-policy"] == "same-origin", path


def test_the_docs_page_may_load_only_what_swagger_ui_needs(api: Api) -> None:
    h = api.http.get("/docs").headers
    csp = h["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]  # no inline script runs
    assert "http" not in csp  # nothing from another origin: the docs work without internet
    assert "default-src 'none'" in csp and h["x-content-type-options"] == "nosniff"
