"""The ``monitor`` command: the service's commands (``monitor.cli``) plus ``monitor dashboard``,
and ``monitor demo`` with the dashboard beside the API. It lives here because dependencies
point one way: ``dashboards`` imports ``monitor``, never the reverse."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from monitor import cli as monitor_cli
from monitor.config import get_settings
from monitor.services.infra.context import ServiceContext

if TYPE_CHECKING:
    from dashboards.serve import DashboardServer


class DemoDashboard:
    """The dashboard inside ``monitor demo``: open (no login), on loopback only."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url: str | None = f"http://127.0.0.1:{port}"
        self._server: DashboardServer | None = None

    def start(self, ctx: ServiceContext) -> str:
        from dashboards.app import create_dashboard
        from dashboards.serve import DashboardServer

        server = DashboardServer(create_dashboard(ctx, open_access=True), "127.0.0.1", self.port).start()
        self._server = server
        return f"dashboard      {server.url}/          (open: the demo listens on loopback only)"

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def _dashboard(args: argparse.Namespace) -> int:
    from dashboards.app import create_dashboard
    from dashboards.auth import is_loopback
    from dashboards.serve import DashboardServer
    from monitor.services.bootstrap import open_for_reading
    from monitor.tls import TLSConfigError, server_context

    settings = get_settings()
    try:
        tls = server_context(settings)
    except TLSConfigError as exc:
        print(exc)
        return 2
    host = args.host or settings.dashboard_host
    port = args.port or settings.dashboard_port
    if args.open and not is_loopback(host):
        print(f"--open (no login) is allowed on a loopback address only, not {host}")
        return 2
    ctx = open_for_reading(settings)
    server = DashboardServer(create_dashboard(ctx, open_access=args.open), host, port, tls)
    print(f"dashboard on {server.url}/ ({'open' if args.open else 'log in with an API key with the read scope'})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        ctx.close()
    return 0


def _dashboard_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("--host", help="default MONITOR_DASHBOARD_HOST or 127.0.0.1")
    d.add_argument("--port", type=int, help="default MONITOR_DASHBOARD_PORT or 8050")
    d.add_argument("--open", action="store_true", help="no login (loopback addresses only)")


COMMANDS = [
    monitor_cli.Command(
        "dashboard", "serve the Dash dashboard (login with an API key)", _dashboard, _dashboard_arguments
    )
]


def _demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--dashboard-port", type=int, default=8050, help="port of the demo's dashboard")


DEMO = [monitor_cli.DemoAddition(_demo_arguments, lambda args: DemoDashboard(args.dashboard_port))]


def build_parser() -> argparse.ArgumentParser:
    return monitor_cli.build_parser(COMMANDS, DEMO)


def main(argv: list[str] | None = None) -> int:
    return monitor_cli.main(argv, COMMANDS, DEMO)


if __name__ == "__main__":
    raise SystemExit(main())
