"""The example model server (docs/examples/sklearn_server.py) works against a live monitor: it
registers its model and reference through the light client, serves predictions while logging
them, and reports outcomes later as labels. It imports the client distribution only."""

from __future__ import annotations

import ast
import importlib.util
import json
import random
import sys
import threading
import urllib.request
from pathlib import Path
from types import ModuleType

from monitor.api.app import create_app
from monitor.server import ThreadedServer
from tests.integration.helpers import Api
from tests.servers import free_port
from tests.waiting import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sklearn_server.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sklearn_server_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _post(url: str, doc: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_the_example_imports_the_client_only() -> None:
    tree = ast.parse(EXAMPLE.read_text())
    imported = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "monitor_client" in imported
    assert not imported & {"monitor", "alerts", "dashboards"}, imported
    # every other package it imports, anywhere in it, is in the install line its docstring gives
    # (pandas was missing: the example failed when installed as it said)
    install = next(line for line in EXAMPLE.read_text().splitlines() if "pip install" in line)
    distributions = {"sklearn": "scikit-learn", "monitor_client": "./client"}
    third_party = {m for m in imported if m and m not in sys.stdlib_module_names and m != "__future__"}
    assert third_party, imported
    for module in third_party:
        assert distributions.get(module, module) in install.replace("`", " ").split(), (module, install)


def test_the_example_model_server_logs_predictions_then_labels(api: Api) -> None:
    monitor = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", free_port()).start()
    example = _load()
    server = example.ModelServer(monitor.url, api.admin["Authorization"].split()[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rng = random.Random(1)
        answers = [_post(f"{server.url}/predict", {"features": c}) for c in example.customers(60, rng)]
        assert {a["prediction"] for a in answers} <= {"stay", "leave"}
        for a in answers[:25]:  # the outcomes known so far
            _post(f"{server.url}/outcome", {"prediction_id": a["prediction_id"], "label": "leave"})
        assert server.client.flush(timeout=30)
        stored = wait_until(
            lambda: (
                api.count("SELECT count(*) FROM predictions") == 60
                and api.count("SELECT count(*) FROM labels WHERE prediction_ts IS NOT NULL") == 25
            ),
            30,
            "the example's predictions and labels",
        )
        assert stored
        assert api.count("SELECT count(*) FROM reference_rows") == 2000
        assert server.client.stats.dropped == 0 and server.client.stats.rejected == 0
    finally:
        server.close()
        monitor.stop()
