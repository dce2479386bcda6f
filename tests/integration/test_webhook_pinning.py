"""A webhook goes to the address its URL check approved, never to a second DNS answer (DNS
rebinding), and an https receiver's certificate is still checked against its name. Real
servers on loopback; only the name lookup is staged."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trustme

from monitor.services.alerting.delivery import deliver_due
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api, drift_point

NAME = "hooks.test"


class Hook:
    """A receiver that keeps the Host header and TLS server name of every request."""

    def __init__(self, address: str, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                sni = getattr(self.connection, "sni", None)
                hook.requests.append({"host": self.headers["host"], "sni": sni})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hooks.test`` is 127.0.0.1 to the URL check and 127.0.0.2 to anyone else: what a
    rebinding DNS server answers to a check and then to the connection."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        asker = sys._getframe(1).f_code.co_filename
        address = "127.0.0.1" if asker.endswith("monitor/services/alerting/resolver.py") else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _alert_to(churn: Api, url: str) -> None:
    r = churn.http.put("/v1/receivers/oncall", json={"url": url, "group_wait": "0s"}, headers=churn.admin)
    assert r.status_code == 200, r.text
    rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["oncall"]}
    assert churn.http.post("/v1/rules", json=rule, headers=churn.admin).status_code == 201
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")


@pytest.fixture
def checked_and_internal() -> Iterator[tuple[Hook, Hook]]:
    checked = Hook("127.0.0.1")
    internal = Hook("127.0.0.2", checked.port)  # same port, the address the second answer gives
    yield checked, internal
    checked.close()
    internal.close()


def test_the_webhook_goes_to_the_address_that_was_checked(
    churn: Api, rebinding_dns: None, checked_and_internal: tuple[Hook, Hook]
) -> None:
    checked, internal = checked_and_internal
    _alert_to(churn, f"http://{NAME}:{checked.port}/hook")
    with httpx.Client() as client:
        assert deliver_due(churn.ctx, client) == 1
    assert internal.requests == []
    assert checked.requests == [{"host": f"{NAME}:{checked.port}", "sni": None}]
    (attempt,) = churn.http.get("/v1/deliveries", headers=churn.admin).json()["deliveries"]
    assert attempt["outcome"] == "delivered"


def test_an_https_receiver_is_verified_against_its_name(churn: Api, rebinding_dns: None) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(server_tls)

    def remember_sni(sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        sock.sni = name  # type: ignore[attr-defined]

    server_tls.sni_callback = remember_sni
    hook = Hook("127.0.0.1", tls=server_tls)
    try:
        _alert_to(churn, f"https://{NAME}:{hook.port}/hook")
        client_tls = ssl.create_default_context()
        ca.configure_trust(client_tls)
        with httpx.Client(verify=client_tls) as client:
            assert deliver_due(churn.ctx, client) == 1
        (attempt,) = churn.http.get("/v1/deliveries", headers=churn.admin).json()["deliveries"]
        assert attempt["outcome"] == "delivered", attempt["error"]
        assert hook.requests == [{"host": f"{NAME}:{hook.port}", "sni": NAME}]
    finally:
        hook.close()


def test_an_address_refusing_the_connection_moves_on_to_the_next_checked(
    churn: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with two addresses, the first refusing connections (a host down): the same
    attempt goes to the second, still with the name as Host."""
    hook = Hook("127.0.0.1")
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))) for a in ("127.0.0.3", "127.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        _alert_to(churn, f"http://{NAME}:{hook.port}/hook")
        with httpx.Client() as client:
            assert deliver_due(churn.ctx, client) == 1
        (attempt,) = churn.http.get("/v1/deliveries", headers=churn.admin).json()["deliveries"]
        assert (attempt["attempt"], attempt["outcome"]) == (1, "delivered"), attempt["error"]
        assert hook.requests == [{"host": f"{NAME}:{hook.port}", "sni": None}]
    finally:
        hook.close()
