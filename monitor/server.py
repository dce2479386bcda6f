"""Running the API under uvicorn: in the foreground (``monitor serve``) or in a thread (the demo, tests)."""

from __future__ import annotations

import os
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from monitor.config import Settings
from monitor.db.engine import database_url


def pin_database_url(settings: Settings) -> Settings:
    """Resolve the database once (starting the embedded server here, in the parent) and hand the URL
    to worker processes through the environment, so that they all join the same server."""
    url = database_url(settings)
    os.environ["MONITOR_DATABASE_URL"] = url
    return settings.model_copy(update={"database_url": url})


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class ThreadedServer:
    """uvicorn serving ``app`` from a background thread; ``stop()`` shuts it down gracefully."""

    def __init__(self, app: FastAPI, host: str, port: int, settings: Settings | None = None) -> None:
        from monitor.api.connections import server_options
        from monitor.config import get_settings
        from monitor.tls import scheme

        settings = settings or get_settings()
        self.host, self.port, self.scheme = host, port, scheme(settings)
        options = server_options(settings)
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", **options)
        )
        self._thread = threading.Thread(target=self._server.run, name="monitor-api", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > end:
                raise RuntimeError(f"the API did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)
