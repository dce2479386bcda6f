"""The systemd units and environment file the README's production guide ships: every command
is one the CLI accepts, every setting one the service reads, and SIGTERM gives the processes the
time they take to stop cleanly."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from dashboards.cli import build_parser
from monitor.config import Settings

SYSTEMD = Path(__file__).parents[2] / "docs" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(path)
    return parser


def test_there_is_a_unit_for_the_api_the_scheduler_and_the_dashboard() -> None:
    assert [u.name for u in UNITS] == ["monitor-api.service", "monitor-dashboard.service", "monitor-scheduler.service"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_runs_a_command_the_cli_accepts_and_stops_it_with_sigterm(path: Path) -> None:
    service = _unit(path)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/monitor")
    build_parser().parse_args(argv[1:])  # exits (fails the test) on an unknown command or option
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 15
    assert service["EnvironmentFile"] == "/etc/model-monitor/monitor.env"
    assert service["User"] != "root"
    if argv[1] in ("serve", "dashboard"):  # behind the TLS proxy
        assert argv[argv.index("--host") + 1] == "127.0.0.1"


def test_the_environment_file_sets_only_settings_the_service_reads() -> None:
    names = {f"MONITOR_{name.upper()}" for name in Settings.model_fields}
    lines = [ln for ln in (SYSTEMD / "monitor.env").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    keys = [ln.split("=", 1)[0] for ln in lines]
    assert keys and set(keys) <= names, set(keys) - names
    assert {"MONITOR_DATABASE_URL", "MONITOR_SECRET_KEYS", "MONITOR_DASHBOARD_SECRET_KEY"} <= set(keys)
