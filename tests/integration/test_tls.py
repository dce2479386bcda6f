"""HTTPS end to end, with a throwaway CA (trustme): the API and the dashboard serve only HTTPS
from the certificate in the settings, tell browsers so (HSTS), and mark the login cookie Secure;
the SDK verifies the certificate, trusting a private CA only when given its bundle."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from dashboards.app import create_dashboard
from dashboards.serve import DashboardServer
from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.server import ThreadedServer
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from monitor.tls import server_context
from tests.integration.helpers import BINARY_SPEC
from tests.servers import free_port


@dataclasses.dataclass
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pki = Pki(where / "ca.pem", where / "cert.pem", where / "key.pem")
    ca.cert_pem.write_to_path(pki.ca_file)
    cert.private_key_pem.write_to_path(pki.key_file)
    with pki.cert_file.open("wb") as chain:  # the certificate, then its chain
        for blob in cert.cert_chain_pems:
            chain.write(blob.bytes())
    return pki


@pytest.fixture
def tls_ctx(ctx: ServiceContext, pki: Pki) -> ServiceContext:
    """The test database, with a certificate in the settings."""
    settings = ctx.settings.model_copy(update={"tls_cert_file": pki.cert_file, "tls_key_file": pki.key_file})
    return dataclasses.replace(ctx, settings=settings)


@pytest.fixture
def https_api(tls_ctx: ServiceContext) -> Iterator[str]:
    server = ThreadedServer(create_app(tls_ctx.settings, tls_ctx), "127.0.0.1", free_port(), tls_ctx.settings)
    server.start()
    yield server.url
    server.stop()


def test_the_api_serves_https_only_and_says_so(https_api: str, pki: Pki) -> None:
    assert https_api.startswith("https://")
    trusting = ssl.create_default_context(cafile=str(pki.ca_file))
    r = httpx.get(f"{https_api}/healthz", verify=trusting)
    assert r.status_code == 200
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    # no plain HTTP on the same port
    with pytest.raises(httpx.HTTPError):
        httpx.get(https_api.replace("https://", "http://") + "/healthz", timeout=5)


def test_the_sdk_talks_to_it_given_the_ca_and_refuses_it_otherwise(
    https_api: str, pki: Pki, tls_ctx: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    admin = keys.create_key(tls_ctx, "admin", [keys.Scope.admin])[0]
    with_ca = MonitorClient(https_api, admin, ca_bundle=pki.ca_file, model=BINARY_SPEC["name"])
    assert with_ca.register_model(BINARY_SPEC)["name"] == BINARY_SPEC["name"]
    with_ca.close()

    untrusting = MonitorClient(https_api, admin, model=BINARY_SPEC["name"], backoff_base=0.01, backoff_max=0.05)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get_model(BINARY_SPEC["name"])
    # the background sender says why nothing arrives, once, and never sends past the check
    with caplog.at_level(logging.ERROR, logger="monitor.client"):
        untrusting.log_prediction({"x": 1.0}, "1")
        untrusting.close(timeout=1.0)
    told = [r.getMessage() for r in caplog.records if "not trusted" in r.getMessage()]
    assert len(told) == 1 and "CERTIFICATE_VERIFY_FAILED" in told[0]
    assert untrusting.stats.sent == 0


def test_the_dashboard_serves_https_with_a_secure_login_cookie(tls_ctx: ServiceContext, pki: Pki) -> None:
    tls = server_context(tls_ctx.settings)
    server = DashboardServer(create_dashboard(tls_ctx), "127.0.0.1", 0, tls).start()
    try:
        assert server.url.startswith("https://")
        read = keys.create_key(tls_ctx, "reader", [keys.Scope.read])[0]
        trusting = ssl.create_default_context(cafile=str(pki.ca_file))
        with httpx.Client(base_url=server.url, verify=trusting, timeout=10) as client:
            page = client.get("/login")
            assert page.status_code == 200
            assert page.headers["strict-transport-security"] == "max-age=31536000"
            r = client.post("/login", data={"key": read, "next": "/"}, headers={"Origin": server.url})
            assert r.status_code == 302
            cookie = r.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/login")  # the system's authorities do not know this CA
    finally:
        server.stop()


def test_plain_http_sets_no_hsts_and_no_secure_cookie(ctx: ServiceContext) -> None:
    """Without a certificate (loopback, or a proxy that terminates TLS) neither is claimed."""
    server = DashboardServer(create_dashboard(ctx), "127.0.0.1", 0).start()
    try:
        read = keys.create_key(ctx, "reader", [keys.Scope.read])[0]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert "strict-transport-security" not in client.get("/login").headers
            r = client.post("/login", data={"key": read, "next": "/"}, headers={"Origin": server.url})
            assert r.status_code == 302 and "Secure" not in r.headers["set-cookie"]
    finally:
        server.stop()


def test_behind_an_https_proxy_the_login_cookie_is_secure(ctx: ServiceContext) -> None:
    settings = ctx.settings.model_copy(update={"dashboard_url": "https://monitor.example.com"})
    proxied = dataclasses.replace(ctx, settings=settings)
    server = DashboardServer(create_dashboard(proxied), "127.0.0.1", 0).start()
    try:
        read = keys.create_key(ctx, "reader", [keys.Scope.read])[0]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            r = client.post("/login", data={"key": read, "next": "/"}, headers={"Origin": server.url})
            assert r.status_code == 302 and "Secure" in r.headers["set-cookie"]
    finally:
        server.stop()
