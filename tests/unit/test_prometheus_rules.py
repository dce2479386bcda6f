"""The Prometheus rules shipped for users who alert in Prometheus: promtool (Debian's prometheus
package) checks them and runs their unit tests, and every series they read is one the service
exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
RULES = ROOT / "docs" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI: apt-get install prometheus")
        pytest.skip("no promtool: apt-get install prometheus to run this test")
    return found


@pytest.mark.parametrize(
    "command", [["check", "rules", "monitor-rules.yml"], ["test", "rules", "monitor-rules.test.yml"]]
)
def test_promtool_checks_the_rules_and_runs_their_tests(command: list[str]) -> None:
    done = subprocess.run([_promtool(), *command], cwd=RULES, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_series_the_rules_read_is_one_the_service_exports() -> None:
    exported = set(
        re.findall(
            r'"(monitor_[a-z_]+)"', (ROOT / "monitor" / "services" / "read_models" / "prometheus.py").read_text()
        )
    )
    suffixes = ("_total", "_bucket", "_count", "_sum")
    read = set(re.findall(r"\b(monitor_[a-z_]+)", (RULES / "monitor-rules.yml").read_text()))
    unknown = {
        name for name in read if name not in exported and not any(name.removesuffix(s) in exported for s in suffixes)
    }
    assert read and not unknown, unknown


def test_the_grafana_dashboard_counts_each_database_series_once_whatever_the_replicas() -> None:
    """Every API process exports the database's series: a panel that summed them across
    processes doubled every total with two replicas. Each such panel takes the max across
    processes first; only the per-process request latency is summed."""
    import json

    doc = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    for panel in doc["panels"]:
        expr = panel["targets"][0]["expr"]
        if "monitor_ingest_request_duration_seconds" in expr:
            continue
        assert "max without (instance, pod)" in expr, (panel["title"], expr)
