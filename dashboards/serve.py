"""Serving the dashboard: a threaded WSGI server, in the foreground or in a background thread,
over HTTPS where the settings give a certificate (``monitor.tls``)."""

from __future__ import annotations

import ssl
import threading

from dash import Dash
from werkzeug.serving import BaseWSGIServer, make_server


class DashboardServer:
    def __init__(self, app: Dash, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app.server, threaded=True, ssl_context=tls)
        self.url = f"{'https' if tls else 'http'}://{host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
