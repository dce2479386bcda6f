"""The ``monitor`` command is composed through its public interface: ``monitor.cli`` alone has
the service's commands; ``dashboards.cli`` adds the dashboard and the demo's dashboard port."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards import cli as full_cli
from monitor import cli as service_cli


def test_the_dashboard_is_added_from_outside_the_service_package(capsys: pytest.CaptureFixture[str]) -> None:
    args = full_cli.build_parser().parse_args(["dashboard", "--port", "9000", "--open"])
    assert (args.port, args.open, args.func) == (9000, True, full_cli.COMMANDS[0].run)
    with pytest.raises(SystemExit):
        service_cli.build_parser().parse_args(["dashboard"])  # monitor alone does not know it
    assert "invalid choice: 'dashboard'" in capsys.readouterr().err


def test_the_demo_takes_the_additions_options_and_starts_their_services() -> None:
    args = full_cli.build_parser().parse_args(["demo", "--dashboard-port", "9100", "--rate", "5"])
    assert (args.dashboard_port, args.rate) == (9100, 5.0)
    service = full_cli.DEMO[0].service(args)
    assert isinstance(service, full_cli.DemoDashboard) and service.port == 9100
    with pytest.raises(SystemExit):
        service_cli.build_parser().parse_args(["demo", "--dashboard-port", "9100"])


def test_every_option_says_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = full_cli.build_parser()
    commands = ["serve", "migrate", "maintain", "check", "scheduler", "backfill", "demo", "dashboard"]
    texts = {}
    for command in [*commands, "keys create", "keys list", "keys revoke", "secrets rotate"]:
        with pytest.raises(SystemExit):
            parser.parse_args([*command.split(), "--help"])
        texts[command] = capsys.readouterr().out
    assert "(default: 20.0)" in texts["demo"] and "(default: 8050)" in texts["demo"]
    assert "(default: 10.0)" in texts["scheduler"] and "(default: cli)" in texts["keys create"]
    assert "default MONITOR_PORT or 8000" in texts["serve"]
    for command, text in texts.items():
        assert "(default: None)" not in text and "(default: False)" not in text, command
        # every option has a help line (argparse prints a bare '--name NAME' otherwise)
        lines = text.splitlines()
        bare = [
            line
            for line, after in zip(lines, [*lines[1:], ""], strict=True)
            if line.startswith("  --") and len(line.split()) <= 2 and not after.startswith(" " * 10)
        ]
        assert not bare, (command, bare)


def test_commands_run_at_a_terminal_log_text() -> None:
    assert {"serve", "scheduler", "dashboard"} == service_cli.SERVICES


def test_every_compose_service_of_ours_runs_a_command_that_exists() -> None:
    """compose.yaml's services built from this repository (the Citus profile's included) run
    commands the ``monitor`` console script parses: a renamed command breaks this, not a deploy."""
    import yaml

    services = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())["services"]
    ours = {name: s["command"] for name, s in services.items() if s.get("build") == "."}
    assert {"migrate", "api", "scheduler", "dashboard", "citus-distribute"} <= set(ours)
    for name, command in ours.items():
        assert command[0] == "monitor", name
        full_cli.build_parser().parse_args(command[1:])  # SystemExit on an unknown command or option
    citus = {name for name, s in services.items() if "citus" in s.get("profiles", [])}
    assert {"citus-coordinator", "citus-worker-1", "citus-worker-2", "citus-setup", "citus-distribute"} <= citus


def test_the_tls_override_adds_only_settings_to_services_compose_has() -> None:
    """compose.tls.yaml, laid over compose.yaml: the services it touches exist there, every
    variable it sets is a setting, and the API and dashboard get a certificate and a key."""
    import yaml

    from monitor.config import Settings

    root = Path(__file__).resolve().parents[2]
    base = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    over = yaml.safe_load((root / "compose.tls.yaml").read_text())["services"]
    settings = {f"MONITOR_{name.upper()}" for name in Settings.model_fields}
    assert set(over) <= set(base)
    for name, service in over.items():
        assert set(service["environment"]) <= settings, name
    for name in ("api", "dashboard"):
        env = over[name]["environment"]
        assert env["MONITOR_TLS_CERT_FILE"].startswith("/run/tls/") and env["MONITOR_TLS_KEY_FILE"].startswith(
            "/run/tls/"
        )
        assert "https://127.0.0.1" in " ".join(over[name]["healthcheck"]["test"])


def test_compose_requires_every_secret_instead_of_falling_back_to_a_known_one() -> None:
    """A secret left unset stops `docker compose up` with a message; a default ('monitor',
    'change-me') would run a database and a login anyone can guess."""
    import re

    text = (Path(__file__).resolve().parents[2] / "compose.yaml").read_text()
    secrets = ("POSTGRES_PASSWORD", "MONITOR_SECRET_KEYS", "MONITOR_DASHBOARD_SECRET_KEY")
    uses = re.findall(r"\$\{(" + "|".join(secrets) + r")(:?[-?=+]?)", text)
    assert {name for name, _ in uses} == set(secrets)
    assert all(op == ":?" for _, op in uses), [u for u in uses if u[1] != ":?"]


def test_the_readme_counts_the_demo_rules_the_demo_installs() -> None:
    import re
    from pathlib import Path

    from monitor import demo_receivers

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    said = re.search(r"`monitor demo` installs (\w+) rules \(([^)]*)\)", readme)
    assert said is not None
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    assert words.index(said.group(1)) == len(demo_receivers.RULES)
    assert len(said.group(2).split(", ")) == len(demo_receivers.RULES)  # one description a rule
