"""The README's API examples run as written: every ``bash`` block that calls the API is run by
bash, from the repository's root, against a live server with ``ADMIN``, ``INGEST``, ``READ`` and ``DATA``
set; each call must answer 2xx, and where the README shows the answer (a ``# {...}`` line after
the call) the answer must be that."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.api.app import create_app
from monitor.server import ThreadedServer
from tests.integration.helpers import Api
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def api_examples() -> list[str]:
    return [b for b in BLOCK.findall((ROOT / "README.md").read_text()) if "localhost:8000" in b]


@pytest.fixture
def live(api: Api) -> Iterator[str]:
    server = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", free_port()).start()
    yield server.url
    server.stop()


def test_the_readme_has_api_examples() -> None:
    assert len(api_examples()) >= 4


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's examples use curl")
def test_the_readme_examples_run_as_written(api: Api, live: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ADMIN": api.admin["Authorization"].split()[1],
        "INGEST": api.ingest["Authorization"].split()[1],
        "READ": api.read["Authorization"].split()[1],
        "DATA": api.data["Authorization"].split()[1],
    }
    for block in api_examples():
        script = block.replace("localhost:8000", live.removeprefix("http://"))
        # every call fails loudly on a 4xx/5xx and prints its answer on a line of its own
        wrapped = 'curl() { command curl -sS --fail-with-body "$@"; echo; }\nset -e\n' + script
        run = subprocess.run(["bash", "-c", wrapped], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, (block, run.stdout, run.stderr)
        shown = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# {")]
        answers = [line for line in run.stdout.splitlines() if line.startswith("{")]
        for expected in shown:
            assert json.loads(expected) in [json.loads(a) for a in answers], (block, run.stdout)
    assert api.count("SELECT count(*) FROM predictions") == 1
    # both references uploaded (the file as the schema names it, then one with its own names)
    assert api.count("SELECT count(*) FROM reference_rows") == 600
    assert api.count("SELECT count(*) FROM reference_datasets WHERE is_active AND row_count = 300") == 1
